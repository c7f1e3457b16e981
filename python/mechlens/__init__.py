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
from . import ablation, head_detector, hook_points, ioi, metrics, patching, train, utils
from .activation_cache import ActivationCache
from .factored_matrix import FactoredMatrix
from .hooked_transformer import HookedTransformer, HookedTransformerConfig

HookPoint = _C.HookPoint

__all__ = [
    "HookedTransformer",
    "HookedTransformerConfig",
    "ActivationCache",
    "FactoredMatrix",
    "HookPoint",
    "ablation",
    "head_detector",
    "ioi",
    "metrics",
    "patching",
    "train",
    "utils",
]
