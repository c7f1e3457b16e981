"""Named patching metrics. Each is a plain callable on logits [batch, pos, vocab] (so it
works anywhere TL expects a metric) and, passed to mechlens.patching, runs the sweep's
fast path in C++ (only the metric's position and vocabulary columns are unembedded)."""
from typing import Union

import torch

from .utils import token_ids


class NamedMetric:
    def __init__(self, kind: str, answer, wrong=None, position: int = -1):
        self.kind = kind
        self.answer = token_ids(answer, "answer")
        self.wrong = [] if wrong is None else token_ids(wrong, "wrong")
        self.position = int(position)

    def _col(self, ids, logits):
        t = torch.tensor(ids, dtype=torch.long)
        return t.expand(logits.shape[0]) if len(ids) == 1 else t

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        if logits.dim() != 3:
            raise ValueError(f"a metric reads logits [batch, pos, vocab], got {tuple(logits.shape)}")
        at = logits[:, self.position].float()
        rows = torch.arange(at.shape[0])
        a = self._col(self.answer, at)
        if self.kind == "logit_diff":
            return (at[rows, a] - at[rows, self._col(self.wrong, at)]).mean()
        lp = at.log_softmax(-1)[rows, a]
        return (-lp if self.kind == "loss" else lp.exp()).mean()

    def __repr__(self) -> str:
        return f"mechlens.metrics.{self.kind}(answer={self.answer}, wrong={self.wrong}, position={self.position})"


def logit_diff(answer, wrong, position: int = -1) -> NamedMetric:
    """logits[:, position, answer] - logits[:, position, wrong], averaged over the batch.
    answer / wrong: one id, or one per batch row."""
    return NamedMetric("logit_diff", answer, wrong, position)


def loss(answer, position: int = -1) -> NamedMetric:
    """-log p(answer) at `position`, averaged over the batch."""
    return NamedMetric("loss", answer, None, position)


def prob(answer, position: int = -1) -> NamedMetric:
    """p(answer) at `position`, averaged over the batch."""
    return NamedMetric("prob", answer, None, position)
