"""ActivationCache: TransformerLens's cache over the C++ one.

Indexing returns the cached torch.Tensor itself (no copy). The residual-stream methods
(accumulated_resid, decompose_resid, stack_head_results, stack_neuron_results,
apply_ln_to_stack, logit_attrs, get_full_resid_decomposition) run in C++ with TL's
arguments, shapes and labels.
"""
from typing import Optional, Union

import torch

from . import _mechlens as _C
from .utils import get_act_name, token_ids


def _split_pos(pos_slice):
    """TL's pos_slice as (what C++ takes: None or an int, what to index afterwards)."""
    if pos_slice is None:
        return None, None
    if isinstance(pos_slice, bool):
        raise TypeError("pos_slice: expected None, an int, a slice or a list of positions")
    if isinstance(pos_slice, int):
        return int(pos_slice), None
    if isinstance(pos_slice, torch.Tensor) and pos_slice.dim() == 0:
        return int(pos_slice), None
    if isinstance(pos_slice, (slice, list, tuple, torch.Tensor)):
        return None, pos_slice
    raise TypeError(f"pos_slice: expected None, an int, a slice or a list of positions, not {type(pos_slice).__name__}")


def _index_pos(t: torch.Tensor, index, dim: int) -> torch.Tensor:
    if index is None:
        return t
    if isinstance(index, slice):
        return t[(slice(None),) * dim + (index,)]
    idx = torch.as_tensor(list(index) if isinstance(index, tuple) else index, dtype=torch.long)
    return t.index_select(dim, idx)


class ActivationCache:
    def __init__(self, cache: "_C.Cache", model, has_batch_dim: bool = True):
        self._c = cache
        self.model = model
        self.has_batch_dim = has_batch_dim

    # ---- dictionary access
    def _key(self, key) -> str:
        if isinstance(key, str):
            return key if key in self._c else get_act_name(key)
        if isinstance(key, tuple) and 2 <= len(key) <= 3:
            name, layer = key[0], key[1]
            if layer is not None and layer < 0:
                layer = self.model.cfg.n_layers + layer
            return get_act_name(name, layer, key[2] if len(key) == 3 else None)
        raise TypeError(f"cache keys are hook names or (name, layer[, layer_type]) tuples, not {key!r}")

    def __getitem__(self, key) -> torch.Tensor:
        t = self._c[self._key(key)]
        return t if self.has_batch_dim else t[0]

    def __contains__(self, key) -> bool:
        try:
            return self._key(key) in self._c
        except (TypeError, ValueError):
            return False

    def __len__(self) -> int:
        return len(self._c)

    def __iter__(self):
        return iter(self._c.names())

    def keys(self):
        return list(self._c.names())

    def values(self):
        return [self[k] for k in self._c.names()]

    def items(self):
        return [(k, self[k]) for k in self._c.names()]

    @property
    def cache_dict(self) -> dict:
        return dict(self.items())

    def __repr__(self) -> str:
        return f"ActivationCache with keys {self.keys()}"

    def stack_activation(self, activation_name: str, layer: int = -1, sublayer_type: Optional[str] = None
                         ) -> torch.Tensor:
        """One activation of every layer up to `layer` (exclusive; -1: all), stacked:
        [layer, ...] as TL."""
        n = self.model.cfg.n_layers if layer == -1 else layer
        return torch.stack([self[get_act_name(activation_name, l, sublayer_type)] for l in range(n)])

    def compute_head_results(self) -> None:
        """Adds blocks.L.attn.hook_result [batch, pos, head, d_model] (each head's output,
        z @ W_O) for every layer, as TL."""
        sd = self.model._m.state_dict()
        for l in range(self.model.cfg.n_layers):
            name = get_act_name("result", l)
            if name in self._c:
                continue
            z = self._c[get_act_name("z", l)]
            W_O = sd[_C.param_name("W_O", l)].to(z.dtype)
            self._c.set(name, torch.einsum("...hd,hdm->...hm", z, W_O))

    def remove_batch_dim(self) -> "ActivationCache":
        if not self.has_batch_dim:
            return self
        first = self._c[self._c.names()[0]] if len(self._c) else None
        if first is not None and first.shape[0] != 1:
            raise ValueError(f"remove_batch_dim needs a batch of 1, this cache has {first.shape[0]}")
        return ActivationCache(self._c, self.model, has_batch_dim=False)

    def to(self, device):
        if str(device) != "cpu":
            raise ValueError(f"mechlens runs on the CPU; cannot move the cache to {device}")
        return self

    # ---- residual stream (in C++)
    def _out(self, stack: torch.Tensor, labels, pos_index, return_labels: bool, pos_dim: int = 2):
        stack = _index_pos(stack, pos_index, pos_dim)
        if not self.has_batch_dim:
            stack = stack.squeeze(1)
        return (stack, list(labels)) if return_labels else stack

    @staticmethod
    def _layer(layer: Optional[int]) -> int:
        return -1 if layer is None else int(layer)

    def accumulated_resid(self, layer: Optional[int] = None, incl_mid: bool = False, apply_ln: bool = False,
                          pos_slice=None, mlp_input: bool = False, return_labels: bool = False):
        p, rest = _split_pos(pos_slice)
        s, labels = _C.accumulated_resid(self.model._m, self._c, self._layer(layer), incl_mid, apply_ln, p, mlp_input)
        return self._out(s, labels, rest, return_labels)

    def decompose_resid(self, layer: Optional[int] = None, mlp_input: bool = False, mode: str = "all",
                        apply_ln: bool = False, pos_slice=None, incl_embeds: bool = True,
                        return_labels: bool = False):
        p, rest = _split_pos(pos_slice)
        s, labels = _C.decompose_resid(self.model._m, self._c, self._layer(layer), mlp_input, apply_ln, p,
                                       incl_embeds, mode)
        return self._out(s, labels, rest, return_labels)

    def stack_head_results(self, layer: int = -1, return_labels: bool = False, incl_remainder: bool = False,
                           pos_slice=None, apply_ln: bool = False):
        if incl_remainder:
            raise ValueError("stack_head_results: incl_remainder is not supported by mechlens yet")
        p, rest = _split_pos(pos_slice)
        s, labels = _C.stack_head_results(self.model._m, self._c, self._layer(layer), apply_ln, p)
        return self._out(s, labels, rest, return_labels)

    def stack_neuron_results(self, layer: int, pos_slice=None, neuron_slice=None, return_labels: bool = False,
                             incl_remainder: bool = False, apply_ln: bool = False):
        if incl_remainder:
            raise ValueError("stack_neuron_results: incl_remainder is not supported by mechlens yet")
        begin, end = 0, -1
        if neuron_slice is not None:
            if isinstance(neuron_slice, tuple):
                neuron_slice = slice(*neuron_slice)
            if not isinstance(neuron_slice, slice) or neuron_slice.step not in (None, 1):
                raise ValueError("neuron_slice: expected None, slice(begin, end) or (begin, end)")
            begin = neuron_slice.start or 0
            end = -1 if neuron_slice.stop is None else neuron_slice.stop
        p, rest = _split_pos(pos_slice)
        s, labels = _C.stack_neuron_results(self.model._m, self._c, self._layer(layer), p, begin, end, apply_ln)
        return self._out(s, labels, rest, return_labels)

    def get_full_resid_decomposition(self, layer: Optional[int] = None, mlp_input: bool = False,
                                     expand_neurons: bool = True, apply_ln: bool = False, pos_slice=None,
                                     return_labels: bool = False):
        p, rest = _split_pos(pos_slice)
        s, labels = _C.get_full_resid_decomposition(self.model._m, self._c, self._layer(layer), mlp_input,
                                                    expand_neurons, apply_ln, p)
        return self._out(s, labels, rest, return_labels)

    def apply_ln_to_stack(self, residual_stack: torch.Tensor, layer: Optional[int] = None, mlp_input: bool = False,
                          pos_slice=None, batch_slice=None, has_batch_dim: bool = True) -> torch.Tensor:
        if batch_slice is not None:
            raise ValueError("apply_ln_to_stack: batch_slice is not supported by mechlens yet")
        p, rest = _split_pos(pos_slice)
        if rest is not None:
            raise ValueError("apply_ln_to_stack: pos_slice must be None or an int")
        stack = residual_stack if (has_batch_dim and self.has_batch_dim) else residual_stack.unsqueeze(1)
        out = _C.apply_ln_to_stack(self.model._m, self._c, stack, self._layer(layer), mlp_input, p)
        return out if (has_batch_dim and self.has_batch_dim) else out.squeeze(1)

    def logit_attrs(self, residual_stack: torch.Tensor, tokens, incorrect_tokens=None, pos_slice=-1,
                    batch_slice=None, has_batch_dim: bool = True) -> torch.Tensor:
        if batch_slice is not None:
            raise ValueError("logit_attrs: batch_slice is not supported by mechlens yet")
        p, rest = _split_pos(pos_slice)
        if rest is not None:
            raise ValueError("logit_attrs: pos_slice must be None or an int")
        tok = self._ids(tokens, "tokens")
        wrong = [] if incorrect_tokens is None else self._ids(incorrect_tokens, "incorrect_tokens")
        batched = has_batch_dim and self.has_batch_dim
        stack = residual_stack if batched else residual_stack.unsqueeze(1)
        out = _C.logit_attrs(self.model._m, self._c, stack, tok, wrong, p)
        return out if batched else out.squeeze(1)

    def _ids(self, tokens, what):
        if isinstance(tokens, str):
            return [self.model.to_single_token(tokens)]
        return token_ids(tokens, what)
