"""TransformerLens's hook_points module: HookPoint (name, layer()) as hook functions see it,
and HookedRootModule (the base class of HookedTransformer, for isinstance checks)."""
from ._mechlens import HookPoint


class HookedRootModule:
    """The base class of mechlens.HookedTransformer (TL's HookedRootModule holds the hook
    machinery; here the C++ model does)."""


__all__ = ["HookPoint", "HookedRootModule"]
