"""TransformerLens's hook_points module: HookPoint (name, layer()) as hook functions see it."""
from ._mechlens import HookPoint

__all__ = ["HookPoint"]
