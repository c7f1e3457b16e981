"""HookedTransformer: TransformerLens's model API on mechlens's C++ engine.

Loading, the forward pass, caching, hooks and the techniques run in libmechlens; this
class gives them TransformerLens's names, arguments and return values.
"""
import contextlib
import json
import os
from typing import Callable, List, Optional, Sequence, Tuple, Union

import torch

from . import _mechlens as _C
from .activation_cache import ActivationCache
from .factored_matrix import FactoredMatrix
from .utils import lm_cross_entropy_loss

_DTYPES = {
    None: "",
    "float32": "float32", "fp32": "float32", torch.float32: "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16", torch.bfloat16: "bfloat16",
    "float16": "float16", "fp16": "float16", torch.float16: "float16",
}


class HookedTransformerConfig:
    """The model's config as attributes (n_layers, d_model, n_heads, d_head, d_mlp,
    d_vocab, d_vocab_out, n_ctx, act_fn, normalization_type, ...), as TL's cfg."""

    def __init__(self, fields: Optional[dict] = None, **kwargs):
        """HookedTransformerConfig(n_layers=2, d_model=64, n_ctx=32, d_head=16, d_vocab=100,
        act_fn="gelu", attn_only=True, ...) as in TL, or from a dict of fields."""
        fields = dict(fields or {}, **kwargs)
        if "n_heads" not in fields and "d_model" in fields and "d_head" in fields:
            fields["n_heads"] = fields["d_model"] // fields["d_head"]
        if fields.get("normalization_type", "") is None:
            fields["normalization_type"] = "none"
        if "d_mlp" not in fields and "d_model" in fields and not fields.get("attn_only", False):
            fields["d_mlp"] = 4 * fields["d_model"]
        fields.setdefault("positional_embedding_type", "standard")
        self.__dict__.update(fields)
        if getattr(self, "d_vocab_out", -1) in (None, -1):
            self.d_vocab_out = self.d_vocab
        if getattr(self, "n_key_value_heads", -1) in (None, -1):
            self.n_key_value_heads = None
        if getattr(self, "rotary_dim", -1) in (None, -1):
            self.rotary_dim = self.d_head if self.positional_embedding_type == "rotary" else None
        dtype = fields.get("dtype", "float32")
        self.dtype = dtype if isinstance(dtype, torch.dtype) else {
            "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype, torch.float32)
        self.default_prepend_bos = fields.get("default_prepend_bos", True)

    def _engine_fields(self) -> dict:
        """The fields the C++ config reads (TL's names), without TL-only ones or Nones."""
        known = set(json.loads(_C.preset_config("attn-only-1l"))) | {"n_key_value_heads", "rotary_dim",
                                                                      "d_vocab_out", "seed"}
        out = {k: v for k, v in self.__dict__.items() if k in known and v is not None and k != "dtype"}
        dt = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(self.dtype)
        if dt:
            out["dtype"] = dt
        return out

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    def __repr__(self) -> str:
        return "HookedTransformerConfig(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


def _hook_names_of(model, name) -> List[str]:
    """A hook name, a list of names, or a filter over names -> the names it selects."""
    if isinstance(name, str):
        return [name]
    if callable(name):
        return [n for n in model._m.hook_names() if name(n)]
    if isinstance(name, (list, tuple)) and all(isinstance(n, str) for n in name):
        return list(name)
    raise TypeError(f"a hook is named by a string, a list of strings or a filter function, not {type(name).__name__}")


class _Weights:
    """model.blocks[l].attn / .mlp / .ln1 ...: the block's weights by TL name, zero-copy."""

    def __init__(self, model, prefix: str):
        self._model, self._prefix = model, prefix

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        full = self._prefix + name
        sd = self._model._m.state_dict()
        if full in sd:
            return sd[full]
        hook = self._model._m.hook_names()
        if full in hook:
            return self._model._m.hook(full)
        raise AttributeError(f"{full} is neither a weight nor a hook point of this model")


class _Block(_Weights):
    def __init__(self, model, layer: int):
        super().__init__(model, f"blocks.{layer}.")
        self.layer = layer
        self.attn = _Weights(model, f"blocks.{layer}.attn.")
        self.mlp = _Weights(model, f"blocks.{layer}.mlp.")
        self.ln1 = _Weights(model, f"blocks.{layer}.ln1.")
        self.ln2 = _Weights(model, f"blocks.{layer}.ln2.")


class _LnFinal(_Weights):
    """model.ln_final: callable on a residual stream [..., d_model], as TL's module."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        cfg = self._model.cfg
        kind = cfg.normalization_type
        if kind in ("none", None):
            return x
        sd = self._model._m.state_dict()
        h = x.float()
        if kind in ("LN", "LNPre"):
            h = h - h.mean(-1, keepdim=True)
        h = h / (h.pow(2).mean(-1, keepdim=True) + cfg.eps).sqrt()
        if "ln_final.w" in sd:
            h = h * sd["ln_final.w"]
        if "ln_final.b" in sd:
            h = h + sd["ln_final.b"]
        return h.to(x.dtype)


class _Unembed(_Weights):
    """model.unembed: callable on a normalized residual stream, as TL's module."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        sd = self._model._m.state_dict()
        out = x @ sd["unembed.W_U"].to(x.dtype)
        return out + sd["unembed.b_U"].to(x.dtype) if "unembed.b_U" in sd else out


class HookedTransformer:
    def __init__(self, cfg, tokenizer=None, name: str = "", move_to_device: bool = True, **kwargs):
        """HookedTransformer(cfg) as in TL: a model with random weights (seed cfg.seed, or
        0) from a HookedTransformerConfig or a dict of its fields. (Internally also the
        wrapper of a loaded C++ model.)"""
        if isinstance(cfg, dict):
            cfg = HookedTransformerConfig(cfg)
        if isinstance(cfg, HookedTransformerConfig):
            fields = cfg._engine_fields()
            seed = int(fields.pop("seed", 0) or 0)
            cmodel = _C.Model.random(json.dumps(fields), seed)
        else:
            cmodel = cfg
        self._m = cmodel
        self.tokenizer = tokenizer
        self.cfg = HookedTransformerConfig(json.loads(cmodel.cfg_json))
        if name:
            self.cfg.model_name = name
        self.blocks = [_Block(self, l) for l in range(self.cfg.n_layers)]
        self.ln_final = _LnFinal(self, "ln_final.")
        self.unembed = _Unembed(self, "unembed.")
        self.embed = _Weights(self, "embed.")
        self.pos_embed = _Weights(self, "pos_embed.")

    # ---- loading
    @classmethod
    def from_pretrained(cls, model_name: str, fold_ln: bool = True, center_writing_weights: bool = True,
                        center_unembed: bool = True, fold_value_biases: bool = True,
                        refactor_factored_attn_matrices: bool = False, dtype=None, device=None,
                        default_prepend_bos: bool = True, **kwargs) -> "HookedTransformer":
        """Loads a Hugging Face model folder or a mechlens checkpoint (there is no model
        hub here: model_name is a folder) and processes the weights as TL does."""
        if device not in (None, "cpu") and str(device) != "cpu":
            raise ValueError(f"mechlens runs on the CPU; device {device!r} is not available")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype {dtype!r}: expected float32, bfloat16 or float16")
        unknown = set(kwargs) - {"move_to_device", "tokenizer", "n_devices", "hf_model", "first_n_layers"}
        if unknown:
            raise TypeError(f"from_pretrained got unexpected arguments {sorted(unknown)}")
        steps = [n for n, on in (("fold_ln", fold_ln), ("center_writing_weights", center_writing_weights),
                                 ("center_unembed", center_unembed), ("fold_value_biases", fold_value_biases),
                                 ("refactor_factored_attn_matrices", refactor_factored_attn_matrices)) if on]
        path = os.fspath(model_name)
        cmodel = _C.Model.load(path, ",".join(steps) if steps else "none", _DTYPES[dtype], "cpu")
        tok = kwargs.get("tokenizer")
        if tok is None:
            tok = _C.model_tokenizer(path, json.loads(cmodel.cfg_json)["d_vocab"])
        model = cls(cmodel, tok, os.path.basename(os.path.normpath(path)))
        model.cfg.default_prepend_bos = default_prepend_bos
        return model

    @classmethod
    def from_pretrained_no_processing(cls, model_name: str, fold_ln: bool = False,
                                      center_writing_weights: bool = False, center_unembed: bool = False,
                                      fold_value_biases: bool = False, **kwargs) -> "HookedTransformer":
        return cls.from_pretrained(model_name, fold_ln=fold_ln, center_writing_weights=center_writing_weights,
                                   center_unembed=center_unembed, fold_value_biases=fold_value_biases, **kwargs)

    @classmethod
    def from_config(cls, cfg: Union[dict, str, HookedTransformerConfig], seed: int = 0,
                    tokenizer=None) -> "HookedTransformer":
        """A randomly initialised model from config fields (n_layers, d_model, ...), a
        HookedTransformerConfig, or a preset name (gpt2-small, gpt2-tiny, attn-only-<N>l,
        solu-1l), with the same weights as the CLI's for the same seed."""
        if isinstance(cfg, str):
            cfg = json.loads(_C.preset_config(cfg))
        fields = (cfg if isinstance(cfg, HookedTransformerConfig) else HookedTransformerConfig(cfg))._engine_fields()
        fields.pop("seed", None)
        return cls(_C.Model.random(json.dumps(fields), seed), tokenizer)

    def save(self, folder: str) -> None:
        """Writes a mechlens checkpoint (mechlens.json + model.safetensors)."""
        self._m.save(os.fspath(folder))

    # ---- tokens
    def _tok(self):
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer (its folder has none and its vocabulary is not GPT-2's): "
                             "pass token ids")
        return self.tokenizer

    def _bos(self, prepend_bos: Optional[bool]) -> bool:
        return self.cfg.default_prepend_bos if prepend_bos is None else bool(prepend_bos)

    def to_tokens(self, input: Union[str, List[str]], prepend_bos: Optional[bool] = None,
                  padding_side: Optional[str] = None, move_to_device: bool = True,
                  truncate: bool = True) -> torch.Tensor:
        tok = self._tok()
        texts = [input] if isinstance(input, str) else list(input)
        if not texts or not all(isinstance(t, str) for t in texts):
            raise TypeError("to_tokens takes a string or a list of strings")
        rows = [tok.encode(t, self._bos(prepend_bos)) for t in texts]
        if truncate:
            rows = [r[: self.cfg.n_ctx] for r in rows]
        if len({len(r) for r in rows}) != 1:
            raise ValueError("to_tokens: the strings tokenize to different lengths and mechlens does not pad "
                             "batches yet; tokenize them one at a time")
        return torch.tensor(rows, dtype=torch.long)

    def to_string(self, tokens) -> Union[str, List[str]]:
        tok = self._tok()
        if isinstance(tokens, torch.Tensor):
            if tokens.dim() == 2:
                return [tok.decode(r) for r in tokens.tolist()]
            tokens = tokens.reshape(-1).tolist()
        if isinstance(tokens, int):
            tokens = [tokens]
        return tok.decode(list(tokens))

    def to_str_tokens(self, input, prepend_bos: Optional[bool] = None) -> List[str]:
        tok = self._tok()
        if isinstance(input, str):
            ids = tok.encode(input, self._bos(prepend_bos))
        elif isinstance(input, torch.Tensor):
            if input.dim() == 2:
                if input.shape[0] != 1:
                    return [tok.to_str_tokens(r) for r in input.tolist()]
                input = input[0]
            ids = input.reshape(-1).tolist()
        elif isinstance(input, list) and input and isinstance(input[0], str):
            return [self.to_str_tokens(s, prepend_bos) for s in input]
        else:
            ids = list(input)
        return tok.to_str_tokens(ids)

    def to_single_token(self, string: str) -> int:
        ids = self._tok().encode(string, False)
        if len(ids) != 1:
            raise ValueError(f"{string!r} is {len(ids)} tokens, not one")
        return int(ids[0])

    def get_token_position(self, single_token, input, mode: str = "first", prepend_bos: Optional[bool] = None) -> int:
        tokens = self.to_tokens(input, prepend_bos) if isinstance(input, str) else input
        if tokens.dim() == 2:
            tokens = tokens[0]
        tid = self.to_single_token(single_token) if isinstance(single_token, str) else int(single_token)
        where = (tokens == tid).nonzero().reshape(-1).tolist()
        if not where:
            raise ValueError(f"token {single_token!r} is not in the input")
        return where[0] if mode == "first" else where[-1]

    def _as_tokens(self, input, prepend_bos=None) -> torch.Tensor:
        if isinstance(input, (str, list)) and not (isinstance(input, list) and input and isinstance(input[0], int)):
            return self.to_tokens(input, prepend_bos)
        t = torch.as_tensor(input)
        if t.dim() == 1:
            t = t.unsqueeze(0)
        if t.is_floating_point():
            raise ValueError(f"tokens must be integer ids, got {t.dtype}")
        return t.long()

    # ---- forward
    def forward(self, input, return_type: Optional[str] = "logits", loss_per_token: bool = False,
                prepend_bos: Optional[bool] = None, start_at_layer: Optional[int] = None,
                stop_at_layer: Optional[int] = None, tokens: Optional[torch.Tensor] = None, **kwargs):
        if return_type not in ("logits", "loss", "both", None):
            raise ValueError(f"return_type must be 'logits', 'loss', 'both' or None, not {return_type!r}")
        if kwargs.get("attention_mask") is not None or kwargs.get("past_kv_cache") is not None:
            raise ValueError("attention_mask / past_kv_cache are not supported from Python yet")
        resid = start_at_layer is not None
        x = input if resid else self._as_tokens(input, prepend_bos)
        out = self._m.forward(x, start_at_layer or 0, -1 if stop_at_layer is None else stop_at_layer, resid)
        if stop_at_layer is not None or return_type is None:
            return None if return_type is None and stop_at_layer is None else out
        return self._returns(out, x if tokens is None else tokens, return_type, loss_per_token)

    __call__ = forward

    @staticmethod
    def _returns(logits, tokens, return_type, loss_per_token):
        if return_type == "logits":
            return logits
        loss = lm_cross_entropy_loss(logits, tokens, per_token=loss_per_token)
        return loss if return_type == "loss" else (logits, loss)

    def loss_fn(self, logits: torch.Tensor, tokens: torch.Tensor, per_token: bool = False) -> torch.Tensor:
        return lm_cross_entropy_loss(logits, tokens, per_token)

    # ---- caching
    def run_with_cache(self, *model_args, names_filter=None, remove_batch_dim: bool = False,
                       return_cache_object: bool = True, **model_kwargs) -> Tuple[torch.Tensor, ActivationCache]:
        input = model_args[0] if model_args else model_kwargs.pop("input")
        return_type = model_kwargs.pop("return_type", "logits")
        loss_per_token = model_kwargs.pop("loss_per_token", False)
        prepend_bos = model_kwargs.pop("prepend_bos", None)
        stop_at_layer = model_kwargs.pop("stop_at_layer", None)
        if model_kwargs:
            raise TypeError(f"run_with_cache got unexpected arguments {sorted(model_kwargs)}")
        names = None if names_filter is None else _hook_names_of(self, names_filter)
        tokens = self._as_tokens(input, prepend_bos)
        out, c = self._m.run_with_cache(tokens, names, 0, -1 if stop_at_layer is None else stop_at_layer)
        cache = ActivationCache(c, self)
        if remove_batch_dim:
            cache = cache.remove_batch_dim()
        if stop_at_layer is None and return_type is not None:
            out = self._returns(out, tokens, return_type, loss_per_token)
        elif return_type is None:
            out = None
        if not return_cache_object:
            cache = cache.cache_dict
        return out, cache

    # ---- hooks
    def add_hook(self, name, hook: Callable, dir: str = "fwd", is_permanent: bool = False, **kwargs) -> None:
        self._m.add_hook(_hook_names_of(self, name), hook, dir, is_permanent)

    def add_perma_hook(self, name, hook: Callable, dir: str = "fwd") -> None:
        self.add_hook(name, hook, dir=dir, is_permanent=True)

    def reset_hooks(self, clear_contexts: bool = True, direction: str = "both",
                    including_permanent: bool = False) -> None:
        self._m.reset_hooks(including_permanent)

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Sequence = (), bwd_hooks: Sequence = (), reset_hooks_end: bool = True,
              clear_contexts: bool = False):
        try:
            for name, fn in fwd_hooks:
                self.add_hook(name, fn, "fwd")
            for name, fn in bwd_hooks:
                self.add_hook(name, fn, "bwd")
            yield self
        finally:
            if reset_hooks_end:
                self.reset_hooks()

    def run_with_hooks(self, *model_args, fwd_hooks: Sequence = (), bwd_hooks: Sequence = (),
                       reset_hooks_end: bool = True, clear_contexts: bool = False, **model_kwargs):
        with self.hooks(fwd_hooks, bwd_hooks, reset_hooks_end, clear_contexts):
            return self.forward(*model_args, **model_kwargs)

    @property
    def hook_dict(self) -> dict:
        return {n: self._m.hook(n) for n in self._m.hook_names()}

    def hook_points(self) -> list:
        return [self._m.hook(n) for n in self._m.hook_names()]

    def _set_optional(self, **flag):
        c = {k: getattr(self.cfg, k) for k in ("use_attn_result", "use_split_qkv_input", "use_hook_mlp_in",
                                               "use_attn_in")}
        c.update(flag)
        self._m.set_optional_hooks(c["use_attn_result"], c["use_split_qkv_input"], c["use_hook_mlp_in"],
                                   c["use_attn_in"])
        self.cfg.__dict__.update(flag)

    def set_use_attn_result(self, use_attn_result: bool) -> None:
        self._set_optional(use_attn_result=bool(use_attn_result))

    def set_use_split_qkv_input(self, use_split_qkv_input: bool) -> None:
        self._set_optional(use_split_qkv_input=bool(use_split_qkv_input))

    def set_use_hook_mlp_in(self, use_hook_mlp_in: bool) -> None:
        self._set_optional(use_hook_mlp_in=bool(use_hook_mlp_in))

    def set_use_attn_in(self, use_attn_in: bool) -> None:
        self._set_optional(use_attn_in=bool(use_attn_in))

    # ---- weights (single tensors are the model's own storage; stacks are copies, as in TL)
    def state_dict(self) -> dict:
        return dict(self._m.state_dict())

    def named_parameters(self):
        return list(self._m.parameters())

    def parameters(self):
        return [t for _, t in self._m.parameters()]

    def requires_grad_(self, requires_grad: bool = True) -> "HookedTransformer":
        self._m.set_requires_grad(bool(requires_grad))
        return self

    # TL keeps buffers in its state dict (causal masks, rotary tables) that are no weights here.
    _TL_BUFFERS = (".attn.IGNORE", ".attn.mask", ".attn.rotary_sin", ".attn.rotary_cos")

    def load_state_dict(self, state_dict: dict, strict: bool = True, processing: Optional[str] = None) -> None:
        """Loads TL-named weights (a TL model's state_dict() loads as it is). strict=False
        keeps the current value of any weight the dict lacks."""
        current = self._m.state_dict()
        sd = {k: v for k, v in dict(state_dict).items() if not k.endswith(self._TL_BUFFERS)}
        unknown = sorted(set(sd) - set(current))
        if unknown:
            raise ValueError(f"load_state_dict: weights this model does not have: {', '.join(unknown[:5])}"
                             + (" ..." if len(unknown) > 5 else ""))
        if not strict:
            sd = {**{k: v for k, v in current.items() if k not in sd}, **sd}
        sd = {k: v.detach() for k, v in sd.items()}
        self._m.load_state_dict(sd, self._m.processing if processing is None else processing)

    def _w(self, name: str) -> torch.Tensor:
        return self._m.state_dict()[name]

    @property
    def W_E(self) -> torch.Tensor:
        return self._w("embed.W_E")

    @property
    def W_pos(self) -> torch.Tensor:
        return self._w("pos_embed.W_pos")

    @property
    def W_U(self) -> torch.Tensor:
        return self._w("unembed.W_U")

    @property
    def b_U(self) -> torch.Tensor:
        return self._w("unembed.b_U")

    @property
    def W_E_pos(self) -> torch.Tensor:
        return torch.cat([self.W_E, self.W_pos], dim=0)

    def _stack(self, name: str, kv: bool = False) -> torch.Tensor:
        sd = self._m.state_dict()
        ts = [sd[_C.param_name(name, l)] for l in range(self.cfg.n_layers)]
        if kv and self.cfg.n_key_value_heads and self.cfg.n_key_value_heads != self.cfg.n_heads:
            rep = self.cfg.n_heads // self.cfg.n_key_value_heads
            ts = [t.repeat_interleave(rep, dim=0) for t in ts]
        return torch.stack(ts, dim=0)

    W_Q = property(lambda self: self._stack("W_Q"))
    W_K = property(lambda self: self._stack("W_K", kv=True))
    W_V = property(lambda self: self._stack("W_V", kv=True))
    W_O = property(lambda self: self._stack("W_O"))
    b_Q = property(lambda self: self._stack("b_Q"))
    b_K = property(lambda self: self._stack("b_K", kv=True))
    b_V = property(lambda self: self._stack("b_V", kv=True))
    b_O = property(lambda self: self._stack("b_O"))
    W_in = property(lambda self: self._stack("W_in"))
    W_out = property(lambda self: self._stack("W_out"))
    b_in = property(lambda self: self._stack("b_in"))
    b_out = property(lambda self: self._stack("b_out"))
    W_gate = property(lambda self: self._stack("W_gate"))

    @property
    def QK(self) -> FactoredMatrix:
        """W_Q @ W_K^T per layer and head, [n_layers, n_heads, d_model, d_model], factored."""
        return _C.qk_circuit(self._m)

    @property
    def OV(self) -> FactoredMatrix:
        """W_V @ W_O per layer and head, [n_layers, n_heads, d_model, d_model], factored."""
        return _C.ov_circuit(self._m)

    def all_composition_scores(self, mode: str) -> torch.Tensor:
        return _C.all_composition_scores(self._m, mode)

    def tokens_to_residual_directions(self, tokens) -> torch.Tensor:
        if isinstance(tokens, str):
            tokens = self.to_single_token(tokens)
        if isinstance(tokens, int):
            return self.W_U[:, tokens]
        t = torch.as_tensor(tokens, dtype=torch.long)
        return self.W_U[:, t].movedim(0, -1)

    def process_weights_(self, fold_ln: bool = True, center_writing_weights: bool = True,
                         center_unembed: bool = True, refactor_factored_attn_matrices: bool = False,
                         fold_value_biases: bool = True) -> None:
        steps = [n for n, on in (("fold_ln", fold_ln), ("center_writing_weights", center_writing_weights),
                                 ("center_unembed", center_unembed), ("fold_value_biases", fold_value_biases),
                                 ("refactor_factored_attn_matrices", refactor_factored_attn_matrices)) if on]
        self._m.process_weights(",".join(steps) if steps else "none")
        self.cfg = HookedTransformerConfig(json.loads(self._m.cfg_json))

    # ---- generation
    @torch.no_grad()
    def generate(self, input="", max_new_tokens: int = 10, stop_at_eos: bool = True,
                 eos_token_id: Optional[int] = None, do_sample: bool = True, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, temperature: float = 1.0, use_past_kv_cache: bool = True,
                 prepend_bos: Optional[bool] = None, return_type: Optional[str] = "input", verbose: bool = True,
                 seed: int = 0, **kwargs):
        as_text = isinstance(input, str)
        tokens = self._as_tokens(input, prepend_bos)
        stop = -1
        if stop_at_eos:
            if eos_token_id is not None:
                stop = int(eos_token_id)
            elif self.tokenizer is not None and self.tokenizer.eos_id >= 0:
                stop = self.tokenizer.eos_id
            elif self.cfg.eos_token_id >= 0:
                stop = self.cfg.eos_token_id
        out = self._m.generate(tokens, max_new_tokens, temperature if do_sample else 0.0, top_k or 0,
                               1.0 if top_p is None else top_p, seed, use_past_kv_cache, stop)
        if return_type == "str" or (return_type == "input" and as_text):
            return self.to_string(out[0])
        return out

    def __repr__(self) -> str:
        c = self.cfg
        return (f"HookedTransformer({c.model_name or 'model'}: {c.n_layers} layers, d_model {c.d_model}, "
                f"{c.n_heads} heads, vocab {c.d_vocab}, processing {self._m.processing})")
