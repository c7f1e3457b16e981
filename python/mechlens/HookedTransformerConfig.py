"""transformer_lens.HookedTransformerConfig's import path: `from mechlens.HookedTransformerConfig import HookedTransformerConfig` works as
`from transformer_lens.HookedTransformerConfig import HookedTransformerConfig` does."""
from .hooked_transformer import HookedTransformerConfig  # noqa: F401
