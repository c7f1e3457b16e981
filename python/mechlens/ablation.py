"""Ablations and self-repair (mechlens/analysis/ablation.h; the CLI's `mechlens ablate`).

Targets are strings: "L.H" (a head's z), "neuron:L.N" (a neuron's hook_post value),
"attn:L" / "mlp:L" (a layer's attn_out / mlp_out). Modes: zero, mean, resample (the mean
and the resampled rows come from `reference` tokens, default the input itself)."""
from typing import List, Optional, Sequence, Union

import torch

from . import _mechlens as _C
from .utils import token_ids


def _targets(targets: Union[str, Sequence[str]]) -> List[str]:
    return [targets] if isinstance(targets, str) else list(targets)


def ablate(model, tokens, targets: Union[str, Sequence[str]], mode: str = "zero",
           reference: Optional[torch.Tensor] = None, seed: int = 0) -> torch.Tensor:
    """The logits of `tokens` with the targets ablated."""
    return _C.ablate(model._m, model._as_tokens(tokens), _targets(targets), mode, reference, seed)


def self_repair(model, tokens, answer, wrong, head: str, mode: str = "zero",
                reference: Optional[torch.Tensor] = None, seed: int = 0) -> dict:
    """Every head's direct effect on logit[answer] - logit[wrong] at the last position,
    before and after ablating `head` ("L.H"): direct_before / direct_after [L, H],
    mlp_before / mlp_after [L], logit_diff_clean / _ablated, the ablated head's direct
    effect and the self-repair (how much of it the rest of the model made up)."""
    return _C.self_repair(model._m, model._as_tokens(tokens), token_ids(answer, "answer"),
                          token_ids(wrong, "wrong"), head, mode, reference, seed)
