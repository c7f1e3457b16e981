"""The training lab from Python: the same recipes, trainer and run folders as
`mechlens train RECIPE` (checkpoints over time, metrics.sqlite, summary.json,
report.html, resume after a kill).

    summary = mechlens.train.grokking("runs/grok", p=53, epochs=3000)
    steps = mechlens.train.checkpoints("runs/grok")
    model = mechlens.train.load_checkpoint("runs/grok", steps[-1])

Settings are the recipe's config.json fields (mechlens.train.defaults("grokking") lists
them with their defaults); an unknown one is a ValueError. The progress bar goes to
stderr; the call holds no GIL while it trains.
"""
import json
import os
from typing import List, Optional

from . import _mechlens as _C

RECIPES = ("grokking", "induction", "superposition", "addition", "lm")


def defaults(recipe: str) -> dict:
    return json.loads(_C.recipe_defaults(recipe))


def _run(recipe: str, run_dir: str, resume: bool, settings: dict) -> dict:
    if resume and settings:
        raise ValueError(f"train.{recipe}: a resumed run keeps its own config.json; pass no settings")
    fn = getattr(_C, f"train_{recipe}")
    return json.loads(fn(json.dumps(settings), os.fspath(run_dir), bool(resume)))


def grokking(run_dir: str, resume: bool = False, **settings) -> dict:
    """Modular addition (Nanda et al. 2023): grokking and its Fourier algorithm."""
    return _run("grokking", run_dir, resume, settings)


def induction(run_dir: str, resume: bool = False, **settings) -> dict:
    """An attention-only model on repeated random tokens: induction heads and their phase change."""
    return _run("induction", run_dir, resume, settings)


def superposition(run_dir: str, resume: bool = False, **settings) -> dict:
    """Toy models of superposition (Elhage et al. 2022)."""
    return _run("superposition", run_dir, resume, settings)


def addition(run_dir: str, resume: bool = False, **settings) -> dict:
    """5-digit addition: a phase change per answer digit."""
    return _run("addition", run_dir, resume, settings)


def lm(run_dir: str, resume: bool = False, **settings) -> dict:
    """A toy language model on an embedded corpus."""
    return _run("lm", run_dir, resume, settings)


def checkpoints(run_dir: str) -> List[int]:
    """The steps of the checkpoints in a run folder, sorted."""
    return list(_C.list_checkpoints(os.fspath(run_dir)))


def load_checkpoint(run_dir: str, step: Optional[int] = None):
    """The model of one checkpoint (the last one by default) as a HookedTransformer."""
    from .hooked_transformer import HookedTransformer

    steps = checkpoints(run_dir)
    if not steps:
        raise FileNotFoundError(f"{run_dir}: no checkpoints")
    if step is None:
        step = steps[-1]
    if step not in steps:
        raise ValueError(f"{run_dir}: no checkpoint at step {step} (there are {steps[0]}..{steps[-1]})")
    return HookedTransformer.from_pretrained_no_processing(_C.checkpoint_dir(os.fspath(run_dir), step))
