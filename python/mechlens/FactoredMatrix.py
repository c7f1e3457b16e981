"""transformer_lens.FactoredMatrix's import path: `from mechlens.FactoredMatrix import FactoredMatrix` works as
`from transformer_lens.FactoredMatrix import FactoredMatrix` does."""
from .factored_matrix import FactoredMatrix  # noqa: F401
