"""mechlens from Python: TransformerLens's API on mechlens's C++ engine.

    import mechlens
    model = mechlens.HookedTransformer.from_pretrained("path/to/model-folder")
    logits, cache = model.run_with_cache("The cat sat on the mat")
    cache["resid_pre", 0]            # a torch.Tensor, sharing memory with the C++ cache

Tensors go in and out as torch.Tensor without copies (Debian's python3-torch is the
Python side of the libtorch that libmechlens links). Errors the user can fix raise
ValueError / FileNotFoundError / TypeError with the CLI's one-line message.
"""
import torch  # noqa: F401  (first: _mechlens links torch's Python bindings)

from . import _mechlens as _C
# TL's module paths first (transformer_lens.ActivationCache, .FactoredMatrix, .HookedTransformer,
# .HookedTransformerConfig are modules there too): the class names below then replace the
# package attributes, exactly as in transformer_lens/__init__.py.
from . import ActivationCache, FactoredMatrix, HookedTransformer, HookedTransformerConfig  # noqa: F401
from . import ablation, head_detector, hook_points, ioi, metrics, patching, tokenizer, train, utils
from .activation_cache import ActivationCache  # noqa: F811
from .factored_matrix import FactoredMatrix  # noqa: F811
from .hook_points import HookedRootModule, HookPoint
from .hooked_transformer import HookedTransformer, HookedTransformerConfig  # noqa: F811

__all__ = [
    "HookedTransformer",
    "HookedTransformerConfig",
    "ActivationCache",
    "FactoredMatrix",
    "HookPoint",
    "HookedRootModule",
    "ablation",
    "head_detector",
    "ioi",
    "metrics",
    "patching",
    "tokenizer",
    "train",
    "utils",
]
