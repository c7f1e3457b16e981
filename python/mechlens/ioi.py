"""The indirect-object-identification task (Wang et al. 2022; the CLI's `mechlens ioi`):
ABBA / BABA prompts with their ABC-corrupted counterparts, and the mean logit difference
logit(IO) - logit(S) at the final position."""
from typing import List, Optional

from . import _mechlens as _C

IOIPrompt = _C.IOIPrompt
TEMPLATES = _C.ioi_templates()


def make_ioi_dataset(model, n: int = 50, seed: int = 0, prepend_bos: Optional[bool] = None) -> List[IOIPrompt]:
    """n prompts (half ABBA, half BABA) tokenized by the model's tokenizer; names are
    those that are one token with a leading space."""
    return _C.make_ioi_dataset(model._tok(), n, seed, model._bos(prepend_bos))


def evaluate(model, prompts: List[IOIPrompt]) -> dict:
    """logit_diffs and corrupted_logit_diffs per prompt, their means, and the accuracy
    (share with logit(IO) > logit(S)). Prompts of equal length run as one batch."""
    return _C.evaluate_ioi(model._m, list(prompts))
