"""TransformerLens's utils that scripts reach for: get_act_name and friends."""
from typing import Optional

import torch

from . import _mechlens as _C


def get_act_name(name: str, layer: Optional[int] = None, layer_type: Optional[str] = None) -> str:
    """TL's utils.get_act_name: ("resid_pre", 3) -> "blocks.3.hook_resid_pre"."""
    if layer is not None and layer < 0:
        raise ValueError(f"get_act_name: layer {layer} is negative (index from the model's n_layers first)")
    return _C.act_name(name, -1 if layer is None else int(layer), layer_type or "")


def lm_cross_entropy_loss(logits: torch.Tensor, tokens: torch.Tensor, per_token: bool = False) -> torch.Tensor:
    """Next-token cross-entropy of logits [batch, pos, vocab] against tokens [batch, pos]."""
    tokens = tokens.long()
    if per_token:
        return _C.per_token_loss(logits, tokens)
    return _C.loss(logits, tokens)


def to_numpy(t):
    """A tensor (or nested list of them) as a numpy array."""
    if isinstance(t, torch.Tensor):
        return t.detach().cpu().numpy()
    import numpy as np

    return np.array(t)


def token_ids(tokens, what: str = "tokens") -> list:
    """An int, a list of ints or a 0/1-d integer tensor as a list of ids."""
    if isinstance(tokens, torch.Tensor):
        if tokens.is_floating_point() or tokens.dim() > 1:
            raise ValueError(f"{what}: expected an integer id or a [batch] tensor of ids, got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        return [int(x) for x in tokens.reshape(-1).tolist()]
    if isinstance(tokens, int):
        return [tokens]
    if isinstance(tokens, (list, tuple)) and all(isinstance(x, int) for x in tokens):
        return [int(x) for x in tokens]
    raise TypeError(f"{what}: expected an int, a list of ints or an integer tensor, not {type(tokens).__name__}")
