"""HookedTransformer: TransformerLens's model API on mechlens's C++ engine.

Loading, the forward pass, caching, hooks and the techniques run in libmechlens; this
class gives them TransformerLens's names, arguments and return values.
"""
import contextlib
import json
import os
from typing import Callable, List, NamedTuple, Optional, Sequence, Union

import numpy as np
import torch

from . import _mechlens as _C
from .activation_cache import ActivationCache
from .factored_matrix import FactoredMatrix
from .hook_points import HookedRootModule
from .utils import lm_cross_entropy_loss

_DTYPES = {
    None: "",
    "float32": "float32", "fp32": "float32", torch.float32: "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16", torch.bfloat16: "bfloat16",
    "float16": "float16", "fp16": "float16", torch.float16: "float16",
}


# TransformerLens 2.10's HookedTransformerConfig fields and defaults (the ones a loaded
# model does not set keep these values).
_TL_DEFAULTS = dict(
    model_name="custom", n_heads=-1, d_mlp=None, act_fn=None, d_vocab=-1, eps=1e-5, use_attn_result=False,
    use_attn_scale=True, attn_scale=-1.0, use_split_qkv_input=False, use_hook_mlp_in=False, use_attn_in=False,
    use_local_attn=False, ungroup_grouped_query_attention=False, original_architecture=None, from_checkpoint=False,
    checkpoint_index=None, checkpoint_label_type=None, checkpoint_value=None, tokenizer_name=None, window_size=None,
    attn_types=None, init_mode="gpt2", normalization_type="LN", device=None, n_devices=1, attention_dir="causal",
    attn_only=False, seed=None, initializer_range=-1.0, init_weights=True, scale_attn_by_inverse_layer_idx=False,
    positional_embedding_type="standard", final_rms=False, d_vocab_out=-1, parallel_attn_mlp=False, rotary_dim=None,
    n_params=None, use_hook_tokens=False, gated_mlp=False, default_prepend_bos=True, dtype=torch.float32,
    tokenizer_prepends_bos=None, n_key_value_heads=None, post_embedding_ln=False, rotary_base=10000,
    trust_remote_code=False, rotary_adjacent_pairs=False, load_in_4bit=False, num_experts=None,
    experts_per_token=None, relative_attention_max_distance=None, relative_attention_num_buckets=None,
    decoder_start_token_id=None, tie_word_embeddings=False, use_normalization_before_and_after=False,
    attn_scores_soft_cap=-1.0, output_logits_soft_cap=-1.0, use_NTK_by_parts_rope=False,
    NTK_by_parts_low_freq_factor=1.0, NTK_by_parts_high_freq_factor=4.0, NTK_by_parts_factor=8.0,
)
_TORCH_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                 "float16": torch.float16, "fp16": torch.float16}


class HookedTransformerConfig:
    """The model's config as attributes, with TransformerLens's names, values and defaults
    (n_layers, d_model, n_heads, d_head, d_mlp, d_vocab, d_vocab_out, n_ctx, act_fn,
    normalization_type (None for none), positional_embedding_type, attn_scale, device,
    dtype, n_params, ... and every other field TL's config has)."""

    def __init__(self, fields: Optional[dict] = None, **kwargs):
        """HookedTransformerConfig(n_layers=2, d_model=64, n_ctx=32, d_head=16, d_vocab=100,
        act_fn="gelu", attn_only=True, ...) as in TL, or from a dict of fields."""
        fields = dict(fields or {}, **kwargs)
        # mechlens's engine writes "none" and -1 / [] where TL has None
        if fields.get("normalization_type", "") in ("none", "None"):
            fields["normalization_type"] = None
        if fields.get("window_size", None) in (-1, 0):
            fields["window_size"] = None
        if fields.get("attn_types", None) == []:
            fields["attn_types"] = None
        if fields.get("n_key_value_heads", None) in (-1, 0):
            fields["n_key_value_heads"] = None
        if fields.get("rotary_dim", None) == -1:
            fields["rotary_dim"] = None
        rb = fields.get("rotary_base", None)
        if isinstance(rb, float) and rb.is_integer():
            fields["rotary_base"] = int(rb)
        dtype = fields.get("dtype", torch.float32)
        fields["dtype"] = dtype if isinstance(dtype, torch.dtype) else _TORCH_DTYPES.get(str(dtype), torch.float32)
        for k, v in _TL_DEFAULTS.items():
            fields.setdefault(k, v)
        self.__dict__.update(fields)
        # TL's __post_init__
        if self.n_heads == -1 and "d_model" in fields and "d_head" in fields:
            self.n_heads = self.d_model // self.d_head
        if not self.attn_only and self.d_mlp is None and "d_model" in fields:
            self.d_mlp = self.d_model * 4
        if self.initializer_range < 0 and "d_model" in fields:
            self.initializer_range = 0.8 / np.sqrt(self.d_model) if self.init_mode == "gpt2" else 1.0
        if self.d_vocab_out in (-1, None):
            self.d_vocab_out = self.d_vocab
        if self.positional_embedding_type == "rotary" and self.rotary_dim is None:
            self.rotary_dim = self.d_head
        if all(k in fields for k in ("n_layers", "d_model", "d_head")):
            self.n_params = self.n_layers * (self.d_model * self.d_head * self.n_heads * 4)
            if not self.attn_only and self.d_mlp:
                mlp = self.d_model * self.d_mlp * (2 + bool(self.gated_mlp))
                if self.num_experts:
                    mlp = (mlp + self.d_model) * self.num_experts
                self.n_params += self.n_layers * mlp
        if self.device is None:
            self.device = torch.device("cpu")
        if self.use_attn_scale and self.attn_scale == -1.0 and "d_head" in fields:
            self.attn_scale = np.sqrt(self.d_head)

    def _engine_fields(self) -> dict:
        """The fields the C++ config reads (TL's names), without TL-only ones or Nones."""
        known = set(json.loads(_C.preset_config("attn-only-1l"))) | {"n_key_value_heads", "rotary_dim",
                                                                      "d_vocab_out", "seed"}
        out = {k: v for k, v in self.__dict__.items() if k in known and v is not None and k != "dtype"}
        if self.normalization_type is None:
            out["normalization_type"] = "none"
        if "attn_scale" in out:
            out["attn_scale"] = float(out["attn_scale"])
        dt = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(self.dtype)
        if dt:
            out["dtype"] = dt
        return out

    def to_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, config_dict: dict) -> "HookedTransformerConfig":
        return cls(**config_dict)

    def __repr__(self) -> str:
        return "HookedTransformerConfig:\n" + "\n".join(f"{k}: {v!r}" for k, v in self.__dict__.items())


# Hook points TL's model always has but only runs when switched on (set_use_attn_result,
# set_use_split_qkv_input, set_use_attn_in, set_use_hook_mlp_in); mechlens's model has them only
# then. Naming one that is off is not an error in TL (it just never fires), so it is none here.
_OPTIONAL_HOOKS = ("attn.hook_result", "hook_attn_in", "hook_q_input", "hook_k_input", "hook_v_input",
                   "hook_mlp_in")
# The order of TL's hook_dict (module registration order) within a block.
_BLOCK_HOOK_ORDER = ["ln1.hook_scale", "ln1.hook_normalized", "ln2.hook_scale", "ln2.hook_normalized",
                     "attn.hook_k", "attn.hook_q", "attn.hook_v", "attn.hook_z", "attn.hook_attn_scores",
                     "attn.hook_pattern", "attn.hook_result", "attn.hook_rot_k", "attn.hook_rot_q",
                     "mlp.hook_pre", "mlp.hook_pre_linear", "mlp.hook_post", "hook_attn_in", "hook_q_input",
                     "hook_k_input", "hook_v_input", "hook_mlp_in", "hook_attn_out", "hook_mlp_out",
                     "hook_resid_pre", "hook_resid_mid", "hook_resid_post"]
_TOP_HOOK_ORDER = ["hook_tokens", "hook_embed", "hook_pos_embed"]


def _hook_order_key(name: str):
    parts = name.split(".")
    if parts[0] == "blocks" and len(parts) > 2 and parts[1].isdigit():
        rest = ".".join(parts[2:])
        i = _BLOCK_HOOK_ORDER.index(rest) if rest in _BLOCK_HOOK_ORDER else len(_BLOCK_HOOK_ORDER)
        return (1, int(parts[1]), i, name)
    if parts[0] == "ln_final":
        return (2, 0, 0 if name.endswith("scale") else 1, name)
    return (0, 0, _TOP_HOOK_ORDER.index(name) if name in _TOP_HOOK_ORDER else 9, name)


def _is_switched_off_optional(model, name: str) -> bool:
    parts = name.split(".")
    return (len(parts) >= 3 and parts[0] == "blocks" and parts[1].isdigit()
            and 0 <= int(parts[1]) < model.cfg.n_layers and ".".join(parts[2:]) in _OPTIONAL_HOOKS
            and name not in model._hook_name_set())


def _hook_names_of(model, name) -> List[str]:
    """A hook name, a list of names, or a filter over names -> the names it selects (the
    switched-off optional hook points, which never fire, left out)."""
    if isinstance(name, str):
        names = [name]
    elif callable(name):
        return [n for n in model._m.hook_names() if name(n)]
    elif isinstance(name, (list, tuple)) and all(isinstance(n, str) for n in name):
        names = list(name)
    else:
        raise TypeError(f"a hook is named by a string, a list of strings or a filter function, not "
                        f"{type(name).__name__}")
    return [n for n in names if not _is_switched_off_optional(model, n)]


# Grouped-query attention: TL keeps the n_key_value_heads weights as _W_K / _W_V / _b_K / _b_V and
# shows W_K / W_V / b_K / b_V repeated to n_heads.
_KV = ("W_K", "W_V", "b_K", "b_V")


class _Weights:
    """model.blocks[l].attn / .mlp / .ln1 ..., model.embed ...: the weights and hook points
    by TL name (single weights are the model's own storage)."""

    def __init__(self, model, prefix: str):
        self._model, self._prefix = model, prefix

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        m = self._model
        if self._prefix.endswith(".attn.") and name in _KV + tuple("_" + k for k in _KV):
            raw = self._model._m.state_dict()[self._prefix + name.lstrip("_")]
            rep = m._kv_repeat()
            return raw.repeat_interleave(rep, dim=0) if rep > 1 and not name.startswith("_") else raw
        full = self._prefix + name
        sd = m._m.state_dict()
        if full in sd:
            return sd[full]
        if full in m._m.hook_names():
            return m._m.hook(full)
        raise AttributeError(f"{full} is neither a weight nor a hook point of this model")


class _Block(_Weights):
    def __init__(self, model, layer: int):
        super().__init__(model, f"blocks.{layer}.")
        self.layer = layer
        self.attn = _Weights(model, f"blocks.{layer}.attn.")
        self.mlp = _Weights(model, f"blocks.{layer}.mlp.")
        self.ln1 = _Weights(model, f"blocks.{layer}.ln1.")
        self.ln2 = _Weights(model, f"blocks.{layer}.ln2.")

    def __call__(self, resid: torch.Tensor, **kwargs) -> torch.Tensor:
        """The block on a residual stream [batch, pos, d_model] (hooks included)."""
        return self._model.forward(resid, start_at_layer=self.layer, stop_at_layer=self.layer + 1)


class _Embed(_Weights):
    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return self._model.W_E[tokens.long()]


class _PosEmbed(_Weights):
    def __call__(self, tokens: torch.Tensor, past_kv_pos_offset: int = 0, attention_mask=None) -> torch.Tensor:
        if tokens.dim() == 1:
            tokens = tokens[None]
        W_pos = self._model.W_pos
        pos = W_pos[past_kv_pos_offset:past_kv_pos_offset + tokens.size(-1)]
        return pos.unsqueeze(0).expand(tokens.size(0), -1, -1)


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


class Output(NamedTuple):
    """forward(..., return_type="both"): (logits, loss), as TL's."""
    logits: torch.Tensor
    loss: torch.Tensor


_STATE_ORDER = {"embed": 0, "pos_embed": 1, "blocks": 2, "ln_final": 3, "unembed": 4}
_BLOCK_ORDER = {"ln1": 0, "ln2": 1, "attn": 2, "mlp": 3}
_PARAM_ORDER = {"attn": ["W_Q", "W_O", "b_Q", "b_O", "W_K", "W_V", "b_K", "b_V"],
                "mlp": ["W_in", "b_in", "W_out", "b_out"], "gated_mlp": ["W_in", "W_out", "W_gate", "b_in", "b_out"],
                "ln": ["w", "b"]}


def _inplace_safe(fn: Callable) -> Callable:
    """TL's hooks may edit the activation in place (value[:, :, head] = 0) and return None.
    With autograd on, mechlens's q / k / v are views of one fused projection, which autograd
    does not let anyone edit in place; such a hook gets a copy, and the copy goes on."""
    def hook(x, hook):
        if x._base is not None and x.requires_grad and torch.is_grad_enabled():
            x = x.clone()
        out = fn(x, hook=hook)
        return x if out is None else out
    hook.__wrapped__ = fn
    return hook


def _untied(cmodel):
    """TL copies a tied unembedding (GPT-2's W_U = W_E^T) into a weight of its own; mechlens's
    engine keeps it a view of W_E, so W_E's gradient would collect the unembedding's too and an
    edit of W_E would change W_U. Give it its own copy, as TL does."""
    params = dict(cmodel.parameters())
    if "unembed.W_U" in params or "embed.W_E" not in params:
        return cmodel
    cfg = json.loads(cmodel.cfg_json)
    cfg["tie_word_embeddings"] = False
    new = _C.Model.random(json.dumps(cfg), 0)
    new.load_state_dict({k: v.detach().clone() for k, v in cmodel.state_dict().items()}, cmodel.processing)
    return new


def _remove_bos(tok, tokens: torch.Tensor) -> torch.Tensor:
    """TL's utils.get_tokens_with_bos_removed."""
    if tok.padding_side == "right":
        return tokens[..., 1:]
    shape = list(tokens.shape)
    shape[-1] -= 1
    if tok.bos_token_id == tok.pad_token_id:
        is_not_pad = tokens.ne(tok.pad_token_id)
        is_leading_pad = is_not_pad.cumsum(-1) == 0
        real_bos = is_leading_pad.sum(-1) - 1
    else:
        real_bos = (tokens == tok.bos_token_id).int().argmax(-1)
    tokens = tokens.scatter(dim=1, index=real_bos.unsqueeze(-1), value=-100)
    return tokens[tokens != -100].view(*shape)


class HookedTransformer(HookedRootModule):
    def __init__(self, cfg, tokenizer=None, move_to_device: bool = True, default_padding_side: str = "right",
                 *, name: str = ""):
        """HookedTransformer(cfg) as in TL: a model with random weights (seed cfg.seed, or
        0) from a HookedTransformerConfig or a dict of its fields. (Internally also the
        wrapper of a loaded C++ model.)"""
        if isinstance(cfg, dict):
            cfg = HookedTransformerConfig(cfg)
        user_cfg = None
        if isinstance(cfg, HookedTransformerConfig):
            user_cfg = cfg
            fields = cfg._engine_fields()
            seed = int(fields.pop("seed", 0) or 0)
            cmodel = _C.Model.random(json.dumps(fields), seed)
        else:
            cmodel = cfg
        self._m = cmodel
        # TL's parameters require grad (it is a torch.nn.Module): loss.backward() fills .grad
        self._m.set_requires_grad(True)
        self.cfg = HookedTransformerConfig(json.loads(cmodel.cfg_json))
        if user_cfg is not None:  # keep what the user set that the engine does not hold
            for k, v in user_cfg.__dict__.items():
                if k not in json.loads(cmodel.cfg_json):
                    self.cfg.__dict__[k] = v
        if name:
            self.cfg.model_name = name
        self.set_tokenizer(tokenizer, default_padding_side)
        self.blocks = [_Block(self, l) for l in range(self.cfg.n_layers)]
        self.ln_final = _LnFinal(self, "ln_final.")
        self.unembed = _Unembed(self, "unembed.")
        self.embed = _Embed(self, "embed.")
        self.pos_embed = _PosEmbed(self, "pos_embed.")
        self.training = False

    def set_tokenizer(self, tokenizer, default_padding_side: str = "right") -> None:
        """The model's tokenizer: mechlens's C++ one (or a mechlens.tokenizer.Tokenizer)."""
        from .tokenizer import Tokenizer

        if tokenizer is not None and not isinstance(tokenizer, Tokenizer):
            tokenizer = Tokenizer(tokenizer, getattr(self, "_folder", ""))
        self.tokenizer = tokenizer
        if tokenizer is not None:
            tokenizer.padding_side = default_padding_side
            self.cfg.tokenizer_prepends_bos = tokenizer.bos_token_id is not None

    def __getattr__(self, name):
        # model.hook_embed, model.hook_pos_embed: the model-level hook points
        if name.startswith("hook_") and "_m" in self.__dict__ and name in self._m.hook_names():
            return self._m.hook(name)
        raise AttributeError(f"'HookedTransformer' object has no attribute '{name}'")

    # ---- loading
    @classmethod
    def from_pretrained(cls, model_name: str, fold_ln: bool = True, center_writing_weights: bool = True,
                        center_unembed: bool = True, refactor_factored_attn_matrices: bool = False,
                        checkpoint_index=None, checkpoint_value=None, hf_model=None, device=None,
                        n_devices: int = 1, tokenizer=None, move_to_device: bool = True,
                        fold_value_biases: bool = True, default_prepend_bos: Optional[bool] = None,
                        default_padding_side: str = "right", dtype="float32", first_n_layers=None,
                        **kwargs) -> "HookedTransformer":
        """Loads a Hugging Face model folder or a mechlens checkpoint (there is no model
        hub here: model_name is a folder) and processes the weights as TL does."""
        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"mechlens runs on the CPU; device {device!r} is not available")
        if dtype not in _DTYPES:
            raise ValueError(f"dtype {dtype!r}: expected float32, bfloat16 or float16")
        unknown = set(kwargs) - {"hf_cfg", "trust_remote_code", "torch_dtype", "cache_dir", "token",
                                 "local_files_only", "revision"}
        if unknown:
            raise TypeError(f"from_pretrained got unexpected arguments {sorted(unknown)}")
        if first_n_layers is not None or checkpoint_index is not None or checkpoint_value is not None:
            raise ValueError("from_pretrained: first_n_layers / checkpoint_index / checkpoint_value are not supported "
                             "by mechlens (load the folder of the checkpoint you want)")
        steps = [n for n, on in (("fold_ln", fold_ln), ("center_writing_weights", center_writing_weights),
                                 ("center_unembed", center_unembed), ("fold_value_biases", fold_value_biases),
                                 ("refactor_factored_attn_matrices", refactor_factored_attn_matrices)) if on]
        path = os.fspath(model_name)
        cmodel = _untied(_C.Model.load(path, ",".join(steps) if steps else "none", _DTYPES[dtype], "cpu"))
        if tokenizer is None:
            tokenizer = _C.model_tokenizer(path, json.loads(cmodel.cfg_json)["d_vocab"])
        model = cls.__new__(cls)
        model._folder = path
        model.__init__(cmodel, tokenizer, default_padding_side=default_padding_side,
                       name=os.path.basename(os.path.normpath(path)))
        model.cfg.default_prepend_bos = True if default_prepend_bos is None else bool(default_prepend_bos)
        model.cfg.device = torch.device("cpu") if device is None else device
        model.cfg.n_devices = n_devices
        model.cfg.init_weights = False
        return model

    @classmethod
    def from_pretrained_no_processing(cls, model_name: str, fold_ln: bool = False,
                                      center_writing_weights: bool = False, center_unembed: bool = False,
                                      refactor_factored_attn_matrices: bool = False, fold_value_biases: bool = False,
                                      dtype=torch.float32, default_prepend_bos=None, default_padding_side="right",
                                      **from_pretrained_kwargs) -> "HookedTransformer":
        return cls.from_pretrained(model_name, fold_ln=fold_ln, center_writing_weights=center_writing_weights,
                                   center_unembed=center_unembed, fold_value_biases=fold_value_biases,
                                   refactor_factored_attn_matrices=refactor_factored_attn_matrices, dtype=dtype,
                                   default_prepend_bos=default_prepend_bos,
                                   default_padding_side=default_padding_side, **from_pretrained_kwargs)

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

    # ---- torch.nn.Module-like housekeeping (the model lives on the CPU)
    def eval(self) -> "HookedTransformer":
        self.training = False
        return self

    def train(self, mode: bool = True) -> "HookedTransformer":
        self.training = bool(mode)
        return self

    def to(self, device_or_dtype, print_details: bool = True) -> "HookedTransformer":
        if isinstance(device_or_dtype, torch.dtype):
            if device_or_dtype != self.cfg.dtype:
                raise ValueError(f"mechlens converts dtypes when loading (from_pretrained(dtype=...)), not with "
                                 f".to({device_or_dtype})")
            return self
        if torch.device(device_or_dtype).type != "cpu":
            raise ValueError(f"mechlens runs on the CPU; cannot move the model to {device_or_dtype}")
        self.cfg.device = device_or_dtype
        return self

    def cpu(self) -> "HookedTransformer":
        return self.to("cpu")

    def cuda(self, device=None) -> "HookedTransformer":
        return self.to("cuda")

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()

    # ---- tokens
    def _tok(self):
        """The C++ tokenizer (what the C++ techniques take)."""
        return self._tokv().raw

    def _tokv(self):
        if self.tokenizer is None:
            raise ValueError("this model has no tokenizer (its folder has none and its vocabulary is not GPT-2's): "
                             "pass token ids")
        return self.tokenizer

    def _bos(self, prepend_bos: Optional[bool]) -> bool:
        return self.cfg.default_prepend_bos if prepend_bos is None else bool(prepend_bos)

    @contextlib.contextmanager
    def _padding(self, padding_side: Optional[str]):
        tok = self.tokenizer
        if tok is None or padding_side is None:
            yield
            return
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        old, tok.padding_side = tok.padding_side, padding_side
        try:
            yield
        finally:
            tok.padding_side = old

    def to_tokens(self, input: Union[str, List[str]], prepend_bos: Optional[bool] = None,
                  padding_side: Optional[str] = None, move_to_device: bool = True,
                  truncate: bool = True) -> torch.Tensor:
        """Text (or a list of texts, padded with the pad token on the tokenizer's padding
        side) to a [batch, pos] tensor of ids, BOS first unless prepend_bos=False."""
        tok = self._tokv()
        if not (isinstance(input, str) or (isinstance(input, (list, tuple)) and input
                                           and all(isinstance(t, str) for t in input))):
            raise TypeError("to_tokens takes a string or a list of strings")
        with self._padding(padding_side):
            tokens = tok(input if isinstance(input, str) else list(input), return_tensors="pt", padding=True,
                         truncation=truncate, max_length=self.cfg.n_ctx if truncate else None)["input_ids"]
            if not self._bos(prepend_bos) and tok.bos_token_id is not None:
                tokens = _remove_bos(tok, tokens)
        return tokens

    def to_string(self, tokens) -> Union[str, List[str]]:
        """Ids to text: a [batch, pos] tensor to a list of strings, a [pos] one (or a list
        of ids) to a string."""
        tok = self._tokv()
        if not isinstance(tokens, torch.Tensor):
            tokens = torch.tensor(np.asarray(tokens) if isinstance(tokens, np.ndarray) else tokens)
        if tokens.dim() == 2:
            return tok.batch_decode(tokens, clean_up_tokenization_spaces=False)
        if tokens.dim() == 0:
            return tok.str_token(int(tokens))
        if tokens.dim() == 1:
            return tok.decode(tokens, clean_up_tokenization_spaces=False)
        raise ValueError(f"Invalid shape passed in: {tokens.shape}")

    def to_str_tokens(self, input, prepend_bos: Optional[bool] = None,
                      padding_side: Optional[str] = None) -> Union[List[str], List[List[str]]]:
        """Text or ids to the list of tokens as strings (a list of texts: one list each)."""
        tok = self._tokv()
        if isinstance(input, list):
            if input and all(isinstance(x, (int, np.integer)) for x in input):
                return [tok.str_token(int(i)) for i in input]
            return [self.to_str_tokens(x, prepend_bos, padding_side) for x in input]
        if isinstance(input, str):
            ids = self.to_tokens(input, prepend_bos=prepend_bos, padding_side=padding_side)[0]
        elif isinstance(input, (torch.Tensor, np.ndarray)):
            ids = torch.as_tensor(input).squeeze()
            if ids.dim() == 0:
                ids = ids.unsqueeze(0)
            if ids.dim() == 2:  # a batch: one list per row
                return [[tok.str_token(int(i)) for i in row] for row in ids.tolist()]
            if ids.dim() != 1:
                raise ValueError(f"Invalid tokens input to to_str_tokens, has shape: {tuple(ids.shape)}")
        else:
            raise ValueError(f"Invalid input type to to_str_tokens: {type(input)}")
        return [tok.str_token(int(i)) for i in ids.tolist()]

    def to_single_token(self, string: str) -> int:
        token = self.to_tokens(string, prepend_bos=False).squeeze()
        if token.shape:
            raise ValueError(f"Input string: {string} is not a single token!")
        return int(token.item())

    def to_single_str_token(self, int_token: int) -> str:
        if not isinstance(int_token, int):
            raise TypeError("to_single_str_token takes an int")
        return self.to_str_tokens(torch.tensor([int_token]))[0]

    def get_token_position(self, single_token, input, mode: str = "first", prepend_bos: Optional[bool] = None,
                           padding_side: Optional[str] = None) -> int:
        tokens = self.to_tokens(input, prepend_bos, padding_side) if isinstance(input, str) else input
        if len(tokens.shape) == 2:
            if tokens.shape[0] != 1:
                raise ValueError(f"If tokens are rank two, they must have shape [1, seq_len], not {tokens.shape}")
            tokens = tokens[0]
        if isinstance(single_token, str):
            single_token = self.to_single_token(single_token)
        elif isinstance(single_token, torch.Tensor):
            single_token = single_token.item()
        indices = torch.arange(len(tokens))[tokens == single_token]
        if len(indices) == 0:
            raise ValueError("The token does not occur in the prompt")
        if mode == "first":
            return indices[0].item()
        if mode == "last":
            return indices[-1].item()
        raise ValueError(f"mode must be 'first' or 'last', not {mode}")

    def _as_tokens(self, input, prepend_bos=None, padding_side=None) -> torch.Tensor:
        if isinstance(input, str) or (isinstance(input, (list, tuple)) and input and isinstance(input[0], str)):
            return self.to_tokens(input, prepend_bos, padding_side)
        t = torch.as_tensor(input)
        if t.dim() == 1:
            t = t.unsqueeze(0)
        if t.is_floating_point():
            raise ValueError(f"tokens must be integer ids, got {t.dtype}")
        return t.long()

    def _attention_mask(self, tokens: torch.Tensor, attention_mask, prepend_bos):
        """TransformerLens's rule (input_to_embed): an explicit mask is used as given; with a
        left-padding tokenizer one is derived from the pad token; otherwise none (right
        padding needs none: causal attention never reads the trailing pads)."""
        if attention_mask is not None:
            attention_mask = torch.as_tensor(attention_mask)
            if tuple(attention_mask.shape) != tuple(tokens.shape):
                raise ValueError(f"attention_mask shape {tuple(attention_mask.shape)} does not match tokens shape "
                                 f"{tuple(tokens.shape)}")
            return attention_mask.long()
        tok = self.tokenizer
        if tok is not None and tok.padding_side == "left" and getattr(tok, "pad_token_id", None) is not None:
            from .utils import get_attention_mask
            if prepend_bos is None:
                prepend_bos = self.cfg.default_prepend_bos
            return get_attention_mask(tok, tokens, prepend_bos)
        return None

    def _layer_index(self, layer: Optional[int]) -> Optional[int]:
        if layer is None:
            return None
        return layer + self.cfg.n_layers if layer < 0 else layer

    # ---- forward
    def forward(self, input, return_type: Optional[str] = "logits", loss_per_token: bool = False,
                prepend_bos: Optional[bool] = None, padding_side: Optional[str] = None,
                start_at_layer: Optional[int] = None, tokens: Optional[torch.Tensor] = None,
                shortformer_pos_embed=None, attention_mask: Optional[torch.Tensor] = None,
                stop_at_layer: Optional[int] = None, past_kv_cache=None):
        if return_type not in ("logits", "loss", "both", None):
            raise ValueError(f"return_type must be 'logits', 'loss', 'both' or None, not {return_type!r}")
        if past_kv_cache is not None:
            raise ValueError("past_kv_cache is not supported from Python yet")
        start_at_layer, stop_at_layer = self._layer_index(start_at_layer), self._layer_index(stop_at_layer)
        resid = start_at_layer is not None
        mask = None
        if resid:
            x = input
            if attention_mask is not None:
                mask = torch.as_tensor(attention_mask).long()
        else:
            x = self._as_tokens(input, prepend_bos, padding_side)
            mask = self._attention_mask(x, attention_mask, prepend_bos)
        out = self._m.forward(x, start_at_layer or 0, -1 if stop_at_layer is None else stop_at_layer, resid, mask)
        if stop_at_layer is not None:
            return out
        if return_type is None:
            return None
        return self._returns(out, x if tokens is None else tokens, return_type, loss_per_token, mask)

    __call__ = forward

    def _returns(self, logits, tokens, return_type, loss_per_token, attention_mask=None):
        if return_type == "logits":
            return logits
        loss = self.loss_fn(logits, tokens, attention_mask, per_token=loss_per_token)
        return loss if return_type == "loss" else Output(logits, loss)

    def loss_fn(self, logits: torch.Tensor, tokens: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                per_token: bool = False) -> torch.Tensor:
        return lm_cross_entropy_loss(logits, tokens, attention_mask, per_token)

    # ---- caching
    def run_with_cache(self, *model_args, return_cache_object: bool = True, remove_batch_dim: bool = False,
                       names_filter=None, device=None, incl_bwd: bool = False, reset_hooks_end: bool = True,
                       clear_contexts: bool = False, pos_slice=None, **model_kwargs):
        """(output, ActivationCache) as TL: the forward's output (logits unless return_type
        says otherwise) and every activation names_filter selects (None: all; a name, a
        list of names or a filter function)."""
        from .utils import Slice

        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"mechlens runs on the CPU; cannot cache on {device}")
        input = model_args[0] if model_args else model_kwargs.pop("input")
        if len(model_args) > 1:
            raise TypeError("run_with_cache takes the input and keyword arguments")
        return_type = model_kwargs.pop("return_type", "logits")
        loss_per_token = model_kwargs.pop("loss_per_token", False)
        prepend_bos = model_kwargs.pop("prepend_bos", None)
        padding_side = model_kwargs.pop("padding_side", None)
        stop_at_layer = self._layer_index(model_kwargs.pop("stop_at_layer", None))
        if model_kwargs.pop("start_at_layer", None) is not None:
            raise ValueError("run_with_cache with start_at_layer is not supported by mechlens yet")
        model_kwargs.pop("tokens", None)
        if model_kwargs.get("past_kv_cache") is not None:
            raise ValueError("past_kv_cache is not supported from Python yet")
        attention_mask = model_kwargs.pop("attention_mask", None)
        model_kwargs.pop("past_kv_cache", None)
        if model_kwargs:
            raise TypeError(f"run_with_cache got unexpected arguments {sorted(model_kwargs)}")
        names = None if names_filter is None else _hook_names_of(self, names_filter)
        tokens = self._as_tokens(input, prepend_bos, padding_side)
        mask = self._attention_mask(tokens, attention_mask, prepend_bos)
        grads = {}
        if incl_bwd:
            sel = names if names is not None else list(self._m.hook_names())

            def keep_grad(g, hook):
                grads[hook.name + "_grad"] = g.detach()
            if sel:
                self._m.add_hook(sel, keep_grad, "bwd", False)
        try:
            with self._grad_for(incl_bwd):
                out, c = self._m.run_with_cache(tokens, names, 0, -1 if stop_at_layer is None else stop_at_layer, mask)
                if stop_at_layer is None and return_type is not None:
                    out = self._returns(out, tokens, return_type, loss_per_token, mask)
                elif return_type is None and stop_at_layer is None:
                    out = None
                if incl_bwd:
                    out.backward()
        finally:
            if incl_bwd and reset_hooks_end:
                self.reset_hooks()
        cache_dict = {n: c[n].detach() if c[n].requires_grad else c[n] for n in c.names()}
        cache_dict.update(grads)
        if remove_batch_dim:
            cache_dict = {k: v[0] for k, v in cache_dict.items()}
        pos = Slice.unwrap(pos_slice)
        if pos.mode != "identity":
            for k, v in list(cache_dict.items()):
                n = k[:-5] if k.endswith("_grad") else k
                pos_dim = -3 if n.endswith(("hook_q", "hook_k", "hook_v", "hook_z", "hook_result")) else -2
                if v.dim() + (1 if remove_batch_dim else 0) >= -pos_dim:
                    cache_dict[k] = pos.apply(v, dim=pos_dim)
        if not return_cache_object:
            return out, cache_dict
        return out, ActivationCache(cache_dict, self, has_batch_dim=not remove_batch_dim)

    # ---- hooks
    def add_hook(self, name, hook: Callable, dir: str = "fwd", is_permanent: bool = False, level=None,
                 prepend: bool = False) -> None:
        if dir not in ("fwd", "bwd"):
            raise ValueError(f"Invalid direction {dir}")
        names = _hook_names_of(self, name)
        if names:
            self._m.add_hook(names, _inplace_safe(hook) if dir == "fwd" else hook, dir, is_permanent)
        if dir == "bwd":
            self._bwd_hooks_on = True

    def add_perma_hook(self, name, hook: Callable, dir: str = "fwd") -> None:
        self.add_hook(name, hook, dir=dir, is_permanent=True)

    def reset_hooks(self, clear_contexts: bool = True, direction: str = "both",
                    including_permanent: bool = False, level=None) -> None:
        self._m.reset_hooks(including_permanent)

    def remove_all_hook_fns(self, direction: str = "both", including_permanent: bool = False, level=None) -> None:
        self._m.reset_hooks(including_permanent)

    def clear_contexts(self) -> None:
        pass

    @contextlib.contextmanager
    def _rebuilding(self):
        """Around engine calls that rebuild the weights (the fused q/k/v leaf among them): without
        autograd, so they stay leaves, then with the parameters' requires_grad as it was."""
        grad = any(p.requires_grad for p in self.parameters())
        self._m.set_requires_grad(False)
        try:
            with torch.no_grad():
                yield
        finally:
            self._m.set_requires_grad(grad)

    def _params_need_grad(self) -> bool:
        return not any(p.requires_grad for p in self.parameters())

    @contextlib.contextmanager
    def _grad_for(self, on: bool):
        """Backward hooks need a graph: TL's parameters require grad; mechlens's do only
        after requires_grad_(True), so they do for the duration of a backward-hooked run."""
        if not on or not self._params_need_grad():
            yield
            return
        self._m.set_requires_grad(True)
        try:
            with torch.enable_grad():
                yield
        finally:
            self._m.set_requires_grad(False)

    @contextlib.contextmanager
    def hooks(self, fwd_hooks: Sequence = (), bwd_hooks: Sequence = (), reset_hooks_end: bool = True,
              clear_contexts: bool = False):
        """Adds the hooks (name or filter, function) for the duration of the context."""
        try:
            for name, fn in fwd_hooks:
                self.add_hook(name, fn, "fwd")
            for name, fn in bwd_hooks:
                self.add_hook(name, fn, "bwd")
            with self._grad_for(bool(bwd_hooks)):
                yield self
        finally:
            if reset_hooks_end:
                self.reset_hooks()

    def run_with_hooks(self, *model_args, fwd_hooks: Sequence = (), bwd_hooks: Sequence = (),
                       reset_hooks_end: bool = True, clear_contexts: bool = False, **model_kwargs):
        with self.hooks(fwd_hooks, bwd_hooks, reset_hooks_end, clear_contexts):
            return self.forward(*model_args, **model_kwargs)

    def _hook_name_set(self) -> set:
        return set(self._m.hook_names())

    @property
    def hook_dict(self) -> dict:
        """name -> HookPoint, in TL's order (the modules' order, not the execution order)."""
        return {n: self._m.hook(n) for n in sorted(self._m.hook_names(), key=_hook_order_key)}

    @property
    def mod_dict(self) -> dict:
        return self.hook_dict

    def hook_points(self) -> list:
        return list(self.hook_dict.values())

    def _set_optional(self, **flag):
        c = {k: getattr(self.cfg, k) for k in ("use_attn_result", "use_split_qkv_input", "use_hook_mlp_in",
                                               "use_attn_in")}
        c.update(flag)
        with self._rebuilding():  # (the engine rebuilds its modules)
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
    def _kv_repeat(self) -> int:
        kv = self.cfg.n_key_value_heads
        return self.cfg.n_heads // kv if kv and kv != self.cfg.n_heads else 1

    def _tl_name(self, name: str) -> str:
        if self._kv_repeat() > 1 and ".attn." in name and name.rsplit(".", 1)[1] in _KV:
            head, last = name.rsplit(".", 1)
            return f"{head}._{last}"
        return name

    @staticmethod
    def _from_tl_name(name: str) -> str:
        head, _, last = name.rpartition(".")
        if ".attn." in name + "." and last.startswith("_") and last[1:] in _KV:
            return f"{head}.{last[1:]}"
        return name

    def _order_key(self, name: str):
        parts = name.split(".")
        top = _STATE_ORDER.get(parts[0], 9)
        if parts[0] != "blocks":
            last = parts[-1]
            return (top, 0, 0, _PARAM_ORDER["ln"].index(last) if last in ("w", "b") else 0, name)
        layer, sub, last = int(parts[1]), parts[2], parts[-1].lstrip("_")
        kind = "gated_mlp" if sub == "mlp" and self.cfg.gated_mlp else ("ln" if sub.startswith("ln") else sub)
        order = _PARAM_ORDER.get(kind, [])
        return (top, layer, _BLOCK_ORDER.get(sub, 9), order.index(last) if last in order else 99, name)

    def state_dict(self) -> dict:
        """The weights by TL name, in TL's order (grouped-query attention's K / V weights as
        _W_K, _W_V, _b_K, _b_V), each the model's own storage."""
        sd = self._m.state_dict()
        return {self._tl_name(k): sd[k] for k in sorted(sd, key=self._order_key)}

    def named_parameters(self):
        """The trainable leaf tensors (the engine keeps each layer's Q, K and V weights as one
        fused W_qkv / b_qkv; state_dict() shows TL's W_Q, W_K, W_V views of it)."""
        ps = list(self._m.parameters())
        return sorted(ps, key=lambda kv: self._order_key(kv[0]))

    def parameters(self):
        return [t for _, t in self.named_parameters()]

    def requires_grad_(self, requires_grad: bool = True) -> "HookedTransformer":
        self._m.set_requires_grad(bool(requires_grad))
        return self

    # TL keeps buffers in its state dict (causal masks, rotary tables) that are no weights here.
    _TL_BUFFERS = (".attn.IGNORE", ".attn.mask", ".attn.rotary_sin", ".attn.rotary_cos")

    def load_state_dict(self, state_dict: dict, strict: bool = True, processing: Optional[str] = None) -> None:
        """Loads TL-named weights (a TL model's state_dict() loads as it is). strict=False
        keeps the current value of any weight the dict lacks."""
        current = self._m.state_dict()
        sd = {self._from_tl_name(k): v for k, v in dict(state_dict).items() if not k.endswith(self._TL_BUFFERS)}
        unknown = sorted(set(sd) - set(current))
        if unknown:
            raise ValueError(f"load_state_dict: weights this model does not have: {', '.join(unknown[:5])}"
                             + (" ..." if len(unknown) > 5 else ""))
        if not strict:
            sd = {**{k: v for k, v in current.items() if k not in sd}, **sd}
        sd = {k: v.detach() for k, v in sd.items()}
        with self._rebuilding():
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
        rep = self._kv_repeat() if kv else 1
        if rep > 1:
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
        return FactoredMatrix(self.W_Q, self.W_K.transpose(-2, -1))

    @property
    def OV(self) -> FactoredMatrix:
        """W_V @ W_O per layer and head, [n_layers, n_heads, d_model, d_model], factored."""
        return FactoredMatrix(self.W_V, self.W_O)

    def all_composition_scores(self, mode: str) -> torch.Tensor:
        """[n_layers, n_heads, n_layers, n_heads] composition scores of every earlier head's
        OV with every later head's Q / K / V side (zero where the second head is not later)."""
        return _C.all_composition_scores(self._m, mode)

    def accumulated_bias(self, layer: int, mlp_input: bool = False, include_mlp_biases: bool = True) -> torch.Tensor:
        """The sum of the b_O (and b_out) of the layers before `layer` (with mlp_input, also
        this layer's b_O): [d_model]."""
        accumulated_bias = torch.zeros(self.cfg.d_model)
        for i in range(layer):
            accumulated_bias += self.blocks[i].attn.b_O
            if include_mlp_biases:
                accumulated_bias += self.blocks[i].mlp.b_out
        if mlp_input:
            assert layer < self.cfg.n_layers, "Cannot include attn_bias from beyond the final layer"
            accumulated_bias += self.blocks[layer].attn.b_O
        return accumulated_bias

    def all_head_labels(self) -> List[str]:
        return [f"L{l}H{h}" for l in range(self.cfg.n_layers) for h in range(self.cfg.n_heads)]

    def tokens_to_residual_directions(self, tokens) -> torch.Tensor:
        """The unembedding direction(s) W_U[:, token]: [d_model] for one token (a string,
        an int or a one-element tensor), [..., d_model] for a tensor (or list) of them."""
        if isinstance(tokens, (list, tuple, np.ndarray)):
            tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        if isinstance(tokens, torch.Tensor) and tokens.numel() > 1:
            return self.W_U[:, tokens].movedim(0, -1)
        if isinstance(tokens, str):
            token = self.to_single_token(tokens)
        elif isinstance(tokens, (int, np.integer)):
            token = int(tokens)
        elif isinstance(tokens, torch.Tensor) and tokens.numel() == 1:
            token = tokens.item()
        else:
            raise ValueError(f"Invalid token type: {type(tokens)}")
        return self.W_U[:, token]

    def process_weights_(self, fold_ln: bool = True, center_writing_weights: bool = True,
                         center_unembed: bool = True, refactor_factored_attn_matrices: bool = False,
                         fold_value_biases: bool = True) -> None:
        steps = [n for n, on in (("fold_ln", fold_ln), ("center_writing_weights", center_writing_weights),
                                 ("center_unembed", center_unembed), ("fold_value_biases", fold_value_biases),
                                 ("refactor_factored_attn_matrices", refactor_factored_attn_matrices)) if on]
        with self._rebuilding():
            self._m.process_weights(",".join(steps) if steps else "none")
        keep = {k: v for k, v in self.cfg.__dict__.items() if k not in json.loads(self._m.cfg_json)}
        self.cfg = HookedTransformerConfig(json.loads(self._m.cfg_json))
        self.cfg.__dict__.update(keep)

    # ---- generation
    @torch.no_grad()
    def generate(self, input="", max_new_tokens: int = 10, stop_at_eos: bool = True,
                 eos_token_id: Optional[int] = None, do_sample: bool = True, top_k: Optional[int] = None,
                 top_p: Optional[float] = None, temperature: float = 1.0, freq_penalty: float = 0.0,
                 use_past_kv_cache: bool = True, prepend_bos: Optional[bool] = None,
                 padding_side: Optional[str] = None, return_type: Optional[str] = "input", verbose: bool = True,
                 seed: Optional[int] = None, **kwargs):
        """Greedy (do_sample=False) or sampled continuation, as TL's generate: a string in
        gives a string out (without the BOS when the model prepends one), tokens in give
        [batch, pos + new] tokens out; a sequence that emits EOS (eos_token_id, else the
        tokenizer's) is padded with it until all have. Sampling uses TL's sampler
        (utils.sample_logits) on torch's global RNG (seed: torch.manual_seed(seed) first)."""
        as_text = isinstance(input, str)
        tokens = self._as_tokens(input, prepend_bos, padding_side)
        if return_type == "input":
            return_type = "str" if as_text else "tensor"
        stops: List[int] = []
        pad = 0
        if stop_at_eos:
            tok_eos = self.tokenizer.eos_token_id if self.tokenizer is not None else None
            if eos_token_id is None:
                if tok_eos is None and self.cfg.eos_token_id is not None and self.cfg.eos_token_id >= 0:
                    tok_eos = int(self.cfg.eos_token_id)
                if tok_eos is None:
                    raise ValueError("Must pass a eos_token_id if stop_at_eos is True and tokenizer is None or has "
                                     "no eos_token_id")
                eos_token_id = tok_eos
            if isinstance(eos_token_id, int):
                stops, pad = [eos_token_id], eos_token_id
            else:
                stops = [int(e) for e in eos_token_id]
                pad = tok_eos if tok_eos is not None else stops[0]
        if do_sample:
            # TL's sampler on the global torch RNG, so torch.manual_seed(...) gives TL's tokens
            if seed is not None:
                torch.manual_seed(seed)
            out = self._generate_py(tokens, max_new_tokens, stops, pad, top_k, top_p, temperature, freq_penalty)
        elif tokens.shape[0] == 1 and len(stops) <= 1:
            out = self._m.generate(tokens, max_new_tokens, 0.0, 0, 1.0, 0, use_past_kv_cache,
                                   stops[0] if stops else -1)
        else:
            out = self._generate_py(tokens, max_new_tokens, stops, pad, None, None, 0.0, 0.0)
        if return_type == "str":
            tok = self._tokv()
            return tok.decode(out[0, 1:] if self._bos(prepend_bos) else out[0])
        return out

    def _generate_py(self, tokens, max_new_tokens, stops, pad, top_k, top_p, temperature, freq_penalty):
        """TL's generation loop over full forwards (batches whose rows stop at different
        steps, several stop tokens, frequency penalties)."""
        from .utils import sample_logits

        finished = torch.zeros(tokens.shape[0], dtype=torch.bool)
        for _ in range(max_new_tokens):
            final_logits = self.forward(tokens)[:, -1, :]
            if temperature == 0.0:
                sampled = final_logits.argmax(-1)
            else:
                sampled = sample_logits(final_logits, top_k=top_k, top_p=top_p, temperature=temperature,
                                        freq_penalty=freq_penalty, tokens=tokens)
            if stops:
                sampled[finished] = pad
                finished.logical_or_(torch.isin(sampled, torch.tensor(stops)))
            tokens = torch.cat([tokens, sampled.unsqueeze(-1)], dim=-1)
            if stops and finished.all():
                break
        return tokens

    def __repr__(self) -> str:
        c = self.cfg
        return (f"HookedTransformer({c.model_name or 'model'}: {c.n_layers} layers, d_model {c.d_model}, "
                f"{c.n_heads} heads, vocab {c.d_vocab}, processing {self._m.processing})")
