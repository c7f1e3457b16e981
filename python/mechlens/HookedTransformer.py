"""transformer_lens.HookedTransformer's import path: `from mechlens.HookedTransformer import HookedTransformer` works as
`from transformer_lens.HookedTransformer import HookedTransformer` does."""
from .hooked_transformer import HookedTransformer, HookedTransformerConfig, Output  # noqa: F401
