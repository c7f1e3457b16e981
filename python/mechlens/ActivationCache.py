"""transformer_lens.ActivationCache's import path: `from mechlens.ActivationCache import ActivationCache` works as
`from transformer_lens.ActivationCache import ActivationCache` does."""
from .activation_cache import ActivationCache  # noqa: F401
