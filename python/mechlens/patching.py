"""Activation patching with TransformerLens's patching module's names and grids.

    clean_logits, clean_cache = model.run_with_cache(clean_tokens)
    grid = mechlens.patching.get_act_patch_resid_pre(model, corrupted_tokens, clean_cache, metric)

`metric` is either a mechlens.metrics named metric (logit_diff / loss / prob), which runs
the sweep's fast path in C++ (only the metric's position and columns are unembedded),
or any callable of the patched logits [batch, pos, vocab] to a scalar tensor, exactly as
TL's patching_metric. Each function returns the grid as a torch.Tensor in TL's index
order. The sweep is batched (patches run together, sharing the unpatched prefix); pass
batched=False for one full forward per patch, as TL does. progress: a callable of
(done, total), or True for a bar on stderr.
"""
import itertools
import sys
from functools import partial
from typing import Callable, Optional, Sequence, Union

import torch

from . import _mechlens as _C
from .metrics import NamedMetric
from .utils import get_act_name

Metric = Union[NamedMetric, Callable[[torch.Tensor], torch.Tensor]]


def _bar(done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\rpatching [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def patch(model, corrupted_tokens, clean_cache, metric: Metric, site: str, mode: str = "by_pos",
          batched: bool = True, progress: Union[None, bool, Callable[[int, int], None]] = None) -> dict:
    """The sweep itself: site is resid_pre | resid_mid | resid_post | attn_out | mlp_out |
    z | q | k | v | pattern | block_every | head_all_pos_every | head_by_pos_every; mode is
    by_pos | all_pos | dest_src, or attribution:<mode> (the gradient approximation).
    Returns a dict: grid, axes, labels, clean_metric, corrupted_metric, patches, skipped."""
    tokens = model._as_tokens(corrupted_tokens, None) if isinstance(corrupted_tokens, (str, list)) else corrupted_tokens
    if not isinstance(tokens, torch.Tensor):
        raise TypeError(f"corrupted_tokens: a [batch, pos] tensor of token ids, not {type(tokens).__name__}")
    if tokens.dim() == 1:
        tokens = tokens.unsqueeze(0)
    cache = getattr(clean_cache, "_c", None)
    if cache is None:
        raise TypeError("clean_cache: the ActivationCache of model.run_with_cache(clean_tokens)")
    if getattr(clean_cache, "has_batch_dim", True) is False:
        raise ValueError("clean_cache: a cache with its batch axis (run_with_cache without remove_batch_dim)")
    if progress is True:
        progress = _bar
    elif progress is False:
        progress = None
    if not isinstance(metric, NamedMetric) and not callable(metric):
        raise TypeError(f"patching_metric: a mechlens.metrics metric or a callable of logits, not "
                        f"{type(metric).__name__}")
    # The sweep's forwards need no graph (the parameters require grad, as TL's); attribution
    # patching makes its own.
    grad = torch.enable_grad() if mode.startswith("attribution") else torch.no_grad()
    with grad:
        if isinstance(metric, NamedMetric):
            return _C.act_patch(model._m, tokens, cache, site, mode, None, metric.kind, metric.answer,
                                metric.wrong, metric.position, batched, progress)
        return _C.act_patch(model._m, tokens, cache, site, mode, metric, "custom", [], [], -1, batched, progress)


# The index axes of each sweep's grid, as TL's index_axis_names (for return_index_df).
_AXES = {("resid_pre", "by_pos"): ("layer", "pos"), ("resid_mid", "by_pos"): ("layer", "pos"),
         ("attn_out", "by_pos"): ("layer", "pos"), ("mlp_out", "by_pos"): ("layer", "pos"),
         ("pattern", "by_pos"): ("layer", "head_index", "dest_pos"),
         ("pattern", "dest_src"): ("layer", "head_index", "dest_pos", "src_pos"),
         ("pattern", "all_pos"): ("layer", "head_index")}


def _grid(site: str, mode: str):
    def f(model, corrupted_tokens, clean_cache, patching_metric: Metric, batched: bool = True,
          progress=None, return_index_df: bool = False):
        grid = patch(model, corrupted_tokens, clean_cache, patching_metric, site, mode, batched, progress)["grid"]
        if not return_index_df:
            return grid
        axes = _AXES.get((site, mode)) or (("layer", "pos", "head") if mode == "by_pos" else ("layer", "head"))
        return grid, make_df_from_ranges(list(grid.shape[-len(axes):]), axes)
    return f


def _doc(f, text: str):
    f.__doc__ = text
    return f


get_act_patch_resid_pre = _doc(_grid("resid_pre", "by_pos"), "Patch resid_pre per layer and position: [layer, pos].")
get_act_patch_resid_mid = _doc(_grid("resid_mid", "by_pos"), "Patch resid_mid per layer and position: [layer, pos].")
get_act_patch_attn_out = _doc(_grid("attn_out", "by_pos"), "Patch attn_out per layer and position: [layer, pos].")
get_act_patch_mlp_out = _doc(_grid("mlp_out", "by_pos"), "Patch mlp_out per layer and position: [layer, pos].")

get_act_patch_attn_head_out_by_pos = _doc(_grid("z", "by_pos"), "Patch each head's z per position: [layer, pos, head].")
get_act_patch_attn_head_q_by_pos = _doc(_grid("q", "by_pos"), "Patch each head's q per position: [layer, pos, head].")
get_act_patch_attn_head_k_by_pos = _doc(_grid("k", "by_pos"), "Patch each head's k per position: [layer, pos, head].")
get_act_patch_attn_head_v_by_pos = _doc(_grid("v", "by_pos"), "Patch each head's v per position: [layer, pos, head].")
get_act_patch_attn_head_pattern_by_pos = _doc(
    _grid("pattern", "by_pos"), "Patch each head's pattern row per destination: [layer, head, dest_pos].")
get_act_patch_attn_head_pattern_dest_src_pos = _doc(
    _grid("pattern", "dest_src"), "Patch each pattern entry: [layer, head, dest_pos, src_pos].")

get_act_patch_attn_head_out_all_pos = _doc(_grid("z", "all_pos"), "Patch each head's z at all positions: [layer, head].")
get_act_patch_attn_head_q_all_pos = _doc(_grid("q", "all_pos"), "Patch each head's q at all positions: [layer, head].")
get_act_patch_attn_head_k_all_pos = _doc(_grid("k", "all_pos"), "Patch each head's k at all positions: [layer, head].")
get_act_patch_attn_head_v_all_pos = _doc(_grid("v", "all_pos"), "Patch each head's v at all positions: [layer, head].")
get_act_patch_attn_head_pattern_all_pos = _doc(
    _grid("pattern", "all_pos"), "Patch each head's whole pattern: [layer, head].")

get_act_patch_block_every = _doc(
    _grid("block_every", "by_pos"), "resid_pre, attn_out and mlp_out per layer and position: [3, layer, pos].")
get_act_patch_attn_head_all_pos_every = _doc(
    _grid("head_all_pos_every", "all_pos"), "z, q, k, v and pattern per head at all positions: [5, layer, head].")
get_act_patch_attn_head_by_pos_every = _doc(
    _grid("head_by_pos_every", "by_pos"), "z, q, k, v and pattern per head and position: [5, layer, pos, head].")


def attribution_patch(model, corrupted_tokens, clean_cache, patching_metric: Metric, site: str = "resid_pre",
                      mode: str = "by_pos") -> torch.Tensor:
    """Attribution patching (Nanda 2023): the first-order estimate of run(site, mode) from
    one forward and one backward on the corrupted run; same grid layout."""
    return patch(model, corrupted_tokens, clean_cache, patching_metric, site,
                 "attribution:" + mode)["grid"]


# ---- TL's generic patching: any activation, any patch setter, one forward per patch
def make_df_from_ranges(column_max_ranges: Sequence[int], column_names: Sequence[str]):
    """A pandas DataFrame of every index tuple (the last column varying fastest)."""
    import pandas as pd

    rows = list(itertools.product(*[range(axis_max_range) for axis_max_range in column_max_ranges]))
    return pd.DataFrame(rows, columns=column_names)


def generic_activation_patch(model, corrupted_tokens: torch.Tensor, clean_cache, patching_metric: Callable,
                             patch_setter: Callable, activation_name: str, index_axis_names: Optional[Sequence[str]] = None,
                             index_df=None, return_index_df: bool = False):
    """TL's generic_activation_patch: for every index (layer first), run the corrupted
    tokens with patch_setter(corrupted_activation, index, clean_activation) on
    get_act_name(activation_name, layer) and record patching_metric(logits).item()."""
    if index_df is None:
        assert index_axis_names is not None
        max_axis_range = {"layer": model.cfg.n_layers, "pos": corrupted_tokens.shape[-1],
                          "head_index": model.cfg.n_heads}
        max_axis_range["src_pos"] = max_axis_range["pos"]
        max_axis_range["dest_pos"] = max_axis_range["pos"]
        max_axis_range["head"] = max_axis_range["head_index"]
        index_axis_max_range = [max_axis_range[axis_name] for axis_name in index_axis_names]
        index_df = make_df_from_ranges(index_axis_max_range, index_axis_names)
        flattened_output = False
    else:
        assert index_axis_names is None
        index_axis_max_range = index_df.max().to_list()
        flattened_output = True
    if flattened_output:
        patched_metric_output = torch.zeros(len(index_df))
    else:
        patched_metric_output = torch.zeros(index_axis_max_range)

    def patching_hook(corrupted_activation, hook, index, clean_activation):
        return patch_setter(corrupted_activation, index, clean_activation)

    for c, index_row in enumerate(list(index_df.iterrows())):
        index = index_row[1].to_list()
        current_activation_name = get_act_name(activation_name, layer=index[0])
        current_hook = partial(patching_hook, index=index, clean_activation=clean_cache[current_activation_name])
        patched_logits = model.run_with_hooks(corrupted_tokens, fwd_hooks=[(current_activation_name, current_hook)])
        if flattened_output:
            patched_metric_output[c] = patching_metric(patched_logits).item()
        else:
            patched_metric_output[tuple(index)] = patching_metric(patched_logits).item()
    if return_index_df:
        return patched_metric_output, index_df
    return patched_metric_output


def layer_pos_patch_setter(corrupted_activation, index, clean_activation):
    """index = [layer, pos]; activations [batch, pos, ...]."""
    assert len(index) == 2
    layer, pos = index
    corrupted_activation[:, pos, ...] = clean_activation[:, pos, ...]
    return corrupted_activation


def layer_pos_head_vector_patch_setter(corrupted_activation, index, clean_activation):
    """index = [layer, pos, head_index]; activations [batch, pos, head_index, ...]."""
    assert len(index) == 3
    layer, pos, head_index = index
    corrupted_activation[:, pos, head_index] = clean_activation[:, pos, head_index]
    return corrupted_activation


def layer_head_vector_patch_setter(corrupted_activation, index, clean_activation):
    """index = [layer, head_index]; activations [batch, pos, head_index, ...]."""
    assert len(index) == 2
    layer, head_index = index
    corrupted_activation[:, :, head_index] = clean_activation[:, :, head_index]
    return corrupted_activation


def layer_head_pattern_patch_setter(corrupted_activation, index, clean_activation):
    """index = [layer, head_index]; patterns [batch, head_index, dest_pos, src_pos]."""
    assert len(index) == 2
    layer, head_index = index
    corrupted_activation[:, head_index, :, :] = clean_activation[:, head_index, :, :]
    return corrupted_activation


def layer_head_pos_pattern_patch_setter(corrupted_activation, index, clean_activation):
    """index = [layer, head_index, dest_pos]; patterns [batch, head_index, dest_pos, src_pos]."""
    assert len(index) == 3
    layer, head_index, dest_pos = index
    corrupted_activation[:, head_index, dest_pos, :] = clean_activation[:, head_index, dest_pos, :]
    return corrupted_activation


def layer_head_dest_src_pos_pattern_patch_setter(corrupted_activation, index, clean_activation):
    """index = [layer, head_index, dest_pos, src_pos]; patterns [batch, head_index, dest_pos, src_pos]."""
    assert len(index) == 4
    layer, head_index, dest_pos, src_pos = index
    corrupted_activation[:, head_index, dest_pos, src_pos] = clean_activation[:, head_index, dest_pos, src_pos]
    return corrupted_activation
