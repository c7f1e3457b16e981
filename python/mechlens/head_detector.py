"""TransformerLens's head_detector: score every head's attention on a sequence against a
detection pattern ("previous_token_head", "duplicate_token_head", "induction_head", or
your own [pos, pos] tensor). Scoring runs in libmechlens (mechlens/analysis/head_detect.h)."""
from typing import Dict, List, Optional, Tuple, Union

import torch

from . import _mechlens as _C

HEAD_NAMES = ("previous_token_head", "duplicate_token_head", "induction_head")


def get_previous_token_head_detection_pattern(tokens: torch.Tensor) -> torch.Tensor:
    return _C.detection_pattern("previous_token_head", tokens.reshape(-1))


def get_duplicate_token_head_detection_pattern(tokens: torch.Tensor) -> torch.Tensor:
    return _C.detection_pattern("duplicate_token_head", tokens.reshape(-1))


def get_induction_head_detection_pattern(tokens: torch.Tensor) -> torch.Tensor:
    return _C.detection_pattern("induction_head", tokens.reshape(-1))


def get_supported_heads() -> None:
    """Prints the supported head names."""
    print(f"Supported heads: {HEAD_NAMES}")


def _selected(heads, n_layers: int, n_heads: int) -> Optional[torch.Tensor]:
    if heads is None:
        return None
    keep = torch.zeros(n_layers, n_heads, dtype=torch.bool)
    pairs = heads.items() if isinstance(heads, dict) else [(l, [h]) for l, h in heads]
    for layer, hs in pairs:
        for h in hs:
            if not (0 <= layer < n_layers and 0 <= h < n_heads):
                raise ValueError(f"heads: ({layer}, {h}) is outside this model's {n_layers} layers x {n_heads} heads")
            keep[layer, h] = True
    return keep


def detect_head(model, seq: Union[str, List[str]], detection_pattern: Union[str, torch.Tensor],
                heads: Optional[Union[List[Tuple[int, int]], Dict[int, List[int]]]] = None, cache=None, *,
                exclude_bos: bool = False, exclude_current_token: bool = False,
                error_measure: str = "mul") -> torch.Tensor:
    """[n_layers, n_heads] scores. seq: a string, a list of strings, or token ids. With `heads`, the heads not listed are -1. A list of
    sequences gives the mean over them. `cache` is accepted for TL's signature; the
    attention is recomputed (the same numbers)."""
    if error_measure not in ("mul", "abs"):
        raise ValueError(f"error_measure: 'mul' or 'abs', not {error_measure!r}")
    if isinstance(seq, torch.Tensor):  # token ids: [pos] or [batch, pos], one sequence per row
        seqs = list(seq.reshape(-1, seq.shape[-1]))
    else:
        seqs = [seq] if isinstance(seq, str) else list(seq)
    if isinstance(detection_pattern, torch.Tensor) and len(seqs) > 1:
        raise ValueError("a custom detection pattern scores one sequence; pass a single string")
    if isinstance(detection_pattern, str) and detection_pattern not in HEAD_NAMES:
        raise ValueError(f"detection_pattern: one of {', '.join(HEAD_NAMES)} or a [pos, pos] tensor, "
                         f"not {detection_pattern!r}")
    if isinstance(detection_pattern, str) and isinstance(seq, list):
        # TL scores a list of sequences one by one with the defaults only (its recursion does
        # not pass heads / exclude_bos / exclude_current_token / error_measure on)
        return torch.stack([detect_head(model, s, detection_pattern) for s in seqs]).mean(0)
    scores = []
    for s in seqs:
        tokens = s if isinstance(s, torch.Tensor) else model.to_tokens(s)[0]
        if isinstance(detection_pattern, str):
            pattern = _C.detection_pattern(detection_pattern, tokens)
        else:
            pattern = detection_pattern
            n = tokens.shape[0]
            if pattern.shape != (n, n):
                raise ValueError(f"detection_pattern: [{n}, {n}] for this sequence of {n} tokens, "
                                 f"got {list(pattern.shape)}")
        with torch.no_grad():
            scores.append(_C.detect_head(model._m, tokens, pattern.float(), exclude_bos, exclude_current_token,
                                         error_measure))
    out = torch.stack(scores).mean(0)
    keep = _selected(heads, out.shape[0], out.shape[1])
    if keep is not None:
        out = torch.where(keep, out, torch.full_like(out, -1.0))
    return out
