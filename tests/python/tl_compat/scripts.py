"""TL-style scripts, written against transformer_lens's documented API as notebooks and
tutorials use it (Main Demo, Exploratory Analysis Demo, Activation Patching in TL Demo,
IOI-style metrics). run_side.py runs this file's source as it is for TransformerLens,
and with "transformer_lens" replaced by "mechlens" for mechlens (as the acceptance
tests do), so every import below is an import a user script would write.

Each script is script(model) -> outputs (nested dict / list / tuple of tensors, strings,
numbers); SCRIPTS lists them. A script that needs a tokenizer checks model.tokenizer.
"""
from functools import partial

import torch

import transformer_lens
import transformer_lens.utils as utils
from transformer_lens import ActivationCache, FactoredMatrix, HookedTransformer, patching  # noqa: F401
from transformer_lens.head_detector import detect_head
from transformer_lens.hook_points import HookPoint

SCRIPTS = {}
# script -> the (family, processing) runs it is limited to (the slow patching sweeps: TL runs
# one forward per patch, which would dominate the test's time on every run)
ONLY = {}
# scripts run with autograd on (the others under torch.no_grad(), as analysis notebooks do)
GRAD = set()


def script(f=None, only=None, grad=False):
    def add(f):
        SCRIPTS[f.__name__] = f
        if only:
            ONLY[f.__name__] = only
        if grad:
            GRAD.add(f.__name__)
        return f
    return add(f) if f is not None else add


def has_tok(model):
    return model.tokenizer is not None


def rand_tokens(model, batch=2, pos=10, seed=0, bos=True):
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(3, model.cfg.d_vocab - 1, (batch, pos), generator=g)
    if bos:
        t[:, 0] = model.cfg.d_vocab - 1 if has_tok(model) else 1
    return t


def prompt_tokens(model):
    """Tokens of the main prompts: text when there is a tokenizer, else random ids."""
    if has_tok(model):
        return model.to_tokens(["When you and we went to the store, we gave a drink to",
                                "When we and you went to the store, you gave a drink to"])
    return rand_tokens(model, 2, 12)


def word(model, w):
    """w as one token: " you" for byte-level BPE, "you" for SentencePiece (which adds the space)."""
    for cand in (w, w.lstrip(" ")):
        if model.to_tokens(cand, prepend_bos=False).shape[-1] == 1:
            return cand
    raise ValueError(f"{w!r} is not one token")


def shape(t):
    return list(t.shape)


# ---------------------------------------------------------------- config and weights
@script
def cfg_attributes(model):
    c = model.cfg
    names = ["n_layers", "n_heads", "d_head", "d_model", "d_vocab", "d_vocab_out", "d_mlp", "n_ctx", "act_fn",
             "normalization_type", "positional_embedding_type", "eps", "attn_only", "use_attn_result",
             "use_split_qkv_input", "use_hook_mlp_in", "use_attn_in", "original_architecture", "model_name",
             "default_prepend_bos", "rotary_dim", "n_key_value_heads", "gated_mlp", "parallel_attn_mlp",
             "final_rms", "use_attn_scale", "attn_scale", "window_size", "attn_types", "seed", "n_devices",
             "attention_dir", "init_weights", "tokenizer_prepends_bos", "n_params", "use_local_attn",
             "post_embedding_ln", "num_experts", "attn_scores_soft_cap", "output_logits_soft_cap",
             "from_checkpoint", "use_hook_tokens", "rotary_adjacent_pairs"]
    out = {n: getattr(c, n) for n in names}
    out["device"] = str(c.device)
    out["device_type"] = torch.device(c.device).type
    out["dtype"] = c.dtype
    out["dtype_is_f32"] = c.dtype == torch.float32
    out["dict_has"] = {n: n in c.to_dict() for n in names}
    out["model_dtype_params"] = sorted({str(p.dtype) for p in model.parameters()})
    return out


@script
def weight_shapes(model):
    out = {}
    for n in ["W_E", "W_U", "W_Q", "W_K", "W_V", "W_O", "b_Q", "b_K", "b_V", "b_O", "W_in", "W_out", "b_in",
              "b_out"]:
        t = getattr(model, n)
        out[n] = (shape(t), t.dtype)
    if model.cfg.positional_embedding_type == "standard":
        out["W_pos"] = (shape(model.W_pos), model.W_pos.dtype)
        out["W_E_pos"] = shape(model.W_E_pos)
    if model.cfg.gated_mlp:
        out["W_gate"] = shape(model.W_gate)
    out["b_U"] = shape(model.b_U)
    b0 = model.blocks[0]
    for n in ["W_Q", "W_K", "W_V", "W_O", "b_Q", "b_O"]:
        out["blocks0.attn." + n] = shape(getattr(b0.attn, n))
    for n in ["W_in", "W_out", "b_in", "b_out"]:
        out["blocks0.mlp." + n] = shape(getattr(b0.mlp, n))
    out["n_blocks"] = len(model.blocks)
    return out


@script
def weight_values(model):
    out = {"W_E": model.W_E, "W_U": model.W_U, "W_Q": model.W_Q, "W_K": model.W_K, "W_V": model.W_V,
           "W_O": model.W_O, "b_Q": model.b_Q, "b_K": model.b_K, "b_V": model.b_V, "b_O": model.b_O,
           "W_in": model.W_in, "W_out": model.W_out, "b_in": model.b_in, "b_out": model.b_out, "b_U": model.b_U,
           "blocks1.attn.W_Q": model.blocks[1].attn.W_Q, "blocks1.attn.W_K": model.blocks[1].attn.W_K,
           "blocks1.attn.b_V": model.blocks[1].attn.b_V, "blocks0.mlp.W_in": model.blocks[0].mlp.W_in}
    if model.cfg.positional_embedding_type == "standard":
        out["W_pos"] = model.W_pos
    out["W_U_col_mean_abs_max"] = model.W_U.mean(0).abs().max()
    return out


@script
def state_dict_names(model):
    sd = model.state_dict()
    keys = [k for k in sd.keys() if not k.endswith(("IGNORE", "mask", "rotary_sin", "rotary_cos"))]
    return {"keys": sorted(keys), "shapes": {k: shape(sd[k]) for k in keys}}


@script
def factored_matrices(model):
    OV, QK = model.OV, model.QK
    out = {"type": type(OV).__name__, "isinstance": isinstance(OV, FactoredMatrix)}
    for name, fm in (("OV", OV), ("QK", QK)):
        out[name] = {
            "shape": shape(fm), "ldim": fm.ldim, "rdim": fm.rdim, "mdim": fm.mdim, "ndim": fm.ndim,
            "A": fm.A, "B": fm.B, "AB": fm.AB, "BA_shape": shape(fm.BA),
            "S": fm.S, "norm": fm.norm(), "T_shape": shape(fm.T),
            "l1h2_shape": shape(fm[1, 2]), "l1h2_AB": fm[1, 2].AB, "l0_shape": shape(fm[0]),
            "l1h2_S": fm[1, 2].S, "l1h2_norm": fm[1, 2].norm(),
            "l1h2_eig_abs_sorted": fm[1, 2].eigenvalues.abs().sort(descending=True).values[:4],
            "corner": fm[0, 0].get_corner(3),
            "U_shape": shape(fm.U), "Vh_shape": shape(fm.Vh),
            "usv": (fm.U * fm.S[..., None, :]) @ fm.Vh.transpose(-1, -2),
        }
    fm = OV[0, 1]
    out["matmul_W_U_shape"] = shape(fm @ model.W_U)
    out["matmul_W_U"] = (fm @ model.W_U)
    out["rmatmul_W_E"] = (model.W_E @ fm)
    out["matmul_type"] = type(fm @ model.W_U).__name__
    out["fm_fm"] = (fm @ QK[1, 0]).AB
    out["fm_fm_type"] = type(fm @ QK[1, 0]).__name__
    out["scalar_mul"] = (fm * 2.0).AB
    out["manual"] = FactoredMatrix(model.W_V[0, 1], model.W_O[0, 1]).AB
    out["manual_shape"] = shape(FactoredMatrix(model.W_V[0, 1], model.W_O[0, 1]))
    out["collapse_l"] = shape(fm.collapse_l())
    out["collapse_r"] = shape(fm.collapse_r())
    return out


@script
def composition_scores(model):
    out = {}
    for mode in ("Q", "K", "V"):
        s = model.all_composition_scores(mode)
        out[mode] = s
    return out


# ---------------------------------------------------------------- tokens
@script
def tokenization(model):
    if not has_tok(model):
        t = rand_tokens(model, 1, 6)
        return {"to_tokens_tensor_passthrough": model(t).shape[-1]}
    s = "Hello world, the cat sat on the mat."
    out = {}
    out["to_tokens"] = model.to_tokens(s)
    out["to_tokens_nobos"] = model.to_tokens(s, prepend_bos=False)
    out["to_tokens_list"] = model.to_tokens(["the cat sat", "the dog ran"])
    out["to_tokens_padded"] = model.to_tokens(["the cat sat on the mat", "hi"])
    out["to_tokens_padded_left"] = model.to_tokens(["the cat sat on the mat", "hi"], padding_side="left")
    out["to_tokens_padded_nobos"] = model.to_tokens(["the cat sat on the mat", "hi"], prepend_bos=False)
    out["to_str_tokens"] = model.to_str_tokens(s)
    out["to_str_tokens_nobos"] = model.to_str_tokens(s, prepend_bos=False)
    t = model.to_tokens(s)
    out["to_str_tokens_2d"] = model.to_str_tokens(t)
    out["to_str_tokens_1d"] = model.to_str_tokens(t[0])
    out["to_str_tokens_list_of_str"] = model.to_str_tokens(["a b", "c d e"])
    out["to_str_tokens_np"] = model.to_str_tokens(t[0].numpy())
    out["to_str_tokens_scalar"] = model.to_str_tokens(t[0, 2])
    out["to_string_1d"] = model.to_string(t[0])
    out["to_string_2d"] = model.to_string(t)
    out["to_string_list"] = model.to_string([int(x) for x in t[0, 1:4]])
    out["to_string_0d"] = model.to_string(t[0, 3])
    out["to_single_token"] = model.to_single_token(word(model, " the"))
    out["to_single_str_token"] = model.to_single_str_token(int(t[0, 3]))
    out["get_token_position"] = model.get_token_position(word(model, " the"), s)
    out["get_token_position_last"] = model.get_token_position(word(model, " the"), s, mode="last")
    out["get_token_position_tokens"] = model.get_token_position(word(model, " the"), t)
    out["get_token_position_nobos"] = model.get_token_position(word(model, " the"), s, prepend_bos=False)
    out["tokens_to_residual_directions_str"] = model.tokens_to_residual_directions(word(model, " the"))
    out["tokens_to_residual_directions_int"] = model.tokens_to_residual_directions(int(t[0, 2]))
    out["tokens_to_residual_directions_1d"] = model.tokens_to_residual_directions(t[0, :3])
    out["tokens_to_residual_directions_2d"] = model.tokens_to_residual_directions(t[:, :3])
    out["bos_token_id"] = model.tokenizer.bos_token_id
    out["eos_token_id"] = model.tokenizer.eos_token_id
    out["pad_token_id"] = model.tokenizer.pad_token_id
    out["tokenizer_decode"] = model.tokenizer.decode([int(x) for x in t[0]])
    out["tokenizer_encode"] = model.tokenizer.encode(" the cat")
    out["special_text"] = model.to_str_tokens("a<|endoftext|>b", prepend_bos=False)
    out["special_text_sp"] = model.to_tokens("a<s>b</s> c", prepend_bos=False)
    out["unicode"] = model.to_tokens("naïve café 日本語 — ok\n\ttab  two  spaces")
    out["unicode_str"] = model.to_str_tokens("naïve café 日本語 — ok\n\ttab  two  spaces")
    out["unicode_roundtrip"] = model.to_string(model.to_tokens("naïve café 日本語 — ok\n\ttab", prepend_bos=False)[0])
    out["empty"] = model.to_tokens("")
    out["empty_nobos"] = list(model.to_tokens("", prepend_bos=False).shape)
    out["long"] = model.to_tokens("the cat sat on the mat " * 20)
    out["long_nobos"] = model.to_tokens("the cat sat on the mat " * 20, prepend_bos=False)
    out["long_notrunc"] = list(model.to_tokens("the cat sat on the mat " * 20, truncate=False).shape)
    out["padded_left_nobos"] = model.to_tokens(["the cat sat on the mat", "hi"], prepend_bos=False,
                                               padding_side="left")
    out["leading_space"] = model.to_str_tokens(" hello  world", prepend_bos=False)
    out["digits"] = model.to_str_tokens("1234 5.67", prepend_bos=False)
    return out


# ---------------------------------------------------------------- forward
@script
def forward_return_types(model):
    tokens = prompt_tokens(model)
    out = {}
    logits = model(tokens)
    out["logits"] = logits
    out["logits_explicit"] = model(tokens, return_type="logits")
    out["loss"] = model(tokens, return_type="loss")
    out["loss_per_token"] = model(tokens, return_type="loss", loss_per_token=True)
    both = model(tokens, return_type="both")
    out["both_type"] = type(both).__name__
    out["both"] = list(both)
    out["none"] = model(tokens, return_type=None)
    out["both_per_token"] = list(model(tokens, return_type="both", loss_per_token=True))
    out["loss_fn"] = model.loss_fn(logits, tokens)
    out["loss_fn_per_token"] = model.loss_fn(logits, tokens, per_token=True)
    out["utils_loss"] = utils.lm_cross_entropy_loss(logits, tokens)
    out["utils_loss_per_token"] = utils.lm_cross_entropy_loss(logits, tokens, per_token=True)
    out["utils_accuracy"] = utils.lm_accuracy(logits, tokens)
    out["one_d_tokens"] = model(tokens[0])
    out["log_probs"] = logits.log_softmax(-1)[:, -1].topk(5).indices
    out["stop_at_layer"] = model(tokens, stop_at_layer=1)
    resid = model(tokens, stop_at_layer=1)
    out["start_at_layer"] = model(resid, start_at_layer=1)
    out["grad_enabled_output"] = logits.requires_grad
    if has_tok(model):
        out["text"] = model("The cat sat on the mat")
        out["text_loss"] = model("The cat sat on the mat", return_type="loss")
        out["text_nobos"] = model("The cat sat on the mat", prepend_bos=False)
        out["text_list"] = model(["The cat sat", "The dog ran"])
    return out


@script
def forward_padded_text(model):
    if not has_tok(model):
        return None
    return {"logits": model(["the cat sat on the mat", "hi"]),
            "loss": model(["the cat sat on the mat", "hi"], return_type="loss")}


# ---------------------------------------------------------------- caching
@script
def cache_basics(model):
    tokens = prompt_tokens(model)
    logits, cache = model.run_with_cache(tokens)
    out = {"type": type(cache).__name__, "isinstance": isinstance(cache, ActivationCache)}
    out["keys"] = list(cache.keys())
    out["len"] = len(cache)
    out["iter"] = [k for k in cache]
    out["shapes"] = {k: shape(v) for k, v in cache.items()}
    out["values_len"] = len(list(cache.values()))
    out["logits"] = logits
    out["pattern0"] = cache["pattern", 0]
    out["pattern_full_name"] = cache["blocks.1.attn.hook_pattern"]
    out["attn_alias"] = cache["attn", 1]
    out["q0"] = cache["q", 0]
    out["k1"] = cache["k", 1]
    out["v1"] = cache["v", 1]
    out["z1"] = cache["z", 1]
    out["attn_scores0"] = cache["attn_scores", 0]
    out["resid_pre_neg"] = cache["resid_pre", -1]
    out["resid_post_neg"] = cache["resid_post", -1]
    out["mlp_post1"] = cache["post", 1]
    out["mlp_pre0"] = cache["pre", 0]
    out["mlp_out1"] = cache["mlp_out", 1]
    out["attn_out0"] = cache["attn_out", 0]
    out["scale_final"] = cache["scale"]
    out["scale_ln1"] = cache["scale", 0, "ln1"]
    out["scale_ln2"] = cache["scale", 1, "ln2"]
    out["normalized_ln1"] = cache["normalized", 0, "ln1"]
    out["ln_final_normalized"] = cache["ln_final.hook_normalized"]
    out["embed"] = cache["embed"]
    out["hook_embed"] = cache["hook_embed"]
    out["contains"] = ["blocks.0.hook_resid_pre" in cache, "blocks.9.hook_resid_pre" in cache]
    out["repr_prefix"] = repr(cache)[:30]
    if model.cfg.positional_embedding_type == "standard":
        out["pos_embed"] = cache["pos_embed"]
    out["get_act_name_key"] = cache[utils.get_act_name("resid_post", 1)]
    if not model.cfg.parallel_attn_mlp:
        out["resid_mid"] = cache[utils.get_act_name("resid_mid", 1)]
    out["cache_dict_type"] = type(cache.cache_dict).__name__
    out["cache_dict_keys"] = list(cache.cache_dict.keys())
    out["to_cpu_type"] = type(cache.to("cpu")).__name__
    out["requires_grad"] = cache["resid_pre", 0].requires_grad
    return out


@script
def cache_filters(model):
    tokens = prompt_tokens(model)
    out = {}
    _, c1 = model.run_with_cache(tokens, names_filter="blocks.0.attn.hook_pattern")
    out["string"] = list(c1.keys())
    _, c2 = model.run_with_cache(tokens, names_filter=["blocks.1.hook_resid_post", "blocks.0.attn.hook_z"])
    out["list"] = sorted(c2.keys())
    _, c3 = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("pattern"))
    out["lambda"] = list(c3.keys())
    out["lambda_values"] = [c3[k] for k in c3.keys()]
    _, c4 = model.run_with_cache(tokens, names_filter=lambda n: "resid" in n)
    out["resid"] = list(c4.keys())
    loss, c5 = model.run_with_cache(tokens, return_type="loss")
    out["loss"] = loss
    out["loss_cache_len"] = len(c5)
    r, c6 = model.run_with_cache(tokens, return_type=None, names_filter="blocks.0.hook_resid_pre")
    out["none"] = r
    logits, d = model.run_with_cache(tokens, return_cache_object=False)
    out["dict_type"] = type(d).__name__
    out["dict_keys"] = list(d.keys())
    out["dict_pattern"] = d["blocks.0.attn.hook_pattern"]
    return out


@script
def cache_remove_batch_dim(model):
    tokens = prompt_tokens(model)[:1]
    logits, cache = model.run_with_cache(tokens, remove_batch_dim=True)
    out = {"has_batch_dim": cache.has_batch_dim, "shapes": {k: shape(v) for k, v in cache.items()}}
    out["pattern0"] = cache["pattern", 0]
    out["logits_shape"] = shape(logits)
    out["accumulated"] = cache.accumulated_resid(apply_ln=True)
    out["accumulated_pos"] = cache.accumulated_resid(layer=1, incl_mid=not model.cfg.parallel_attn_mlp, pos_slice=-1, return_labels=True)
    out["decompose"] = cache.decompose_resid(apply_ln=True, pos_slice=-1, return_labels=True)
    out["heads"] = cache.stack_head_results(layer=-1, pos_slice=-1, return_labels=True, apply_ln=True)
    resid = cache.decompose_resid(pos_slice=-1)
    out["logit_attrs"] = cache.logit_attrs(resid, tokens=int(tokens[0, 1]), pos_slice=-1, has_batch_dim=False)
    _, full = model.run_with_cache(tokens)
    out["manual_remove"] = shape(full.remove_batch_dim()["resid_pre", 0])
    return out


@script
def cache_resid_methods(model):
    tokens = prompt_tokens(model)
    _, cache = model.run_with_cache(tokens)
    out = {}
    MID = not model.cfg.parallel_attn_mlp
    out["acc"] = cache.accumulated_resid(return_labels=True)
    out["acc_mid_ln_pos"] = cache.accumulated_resid(layer=-1, incl_mid=MID, apply_ln=True, pos_slice=-1,
                                                    return_labels=True)
    out["acc_layer1"] = cache.accumulated_resid(layer=1, return_labels=True)
    if MID:
        out["acc_layer1_mlp_input"] = cache.accumulated_resid(layer=1, mlp_input=True, return_labels=True)
    out["acc_slice"] = cache.accumulated_resid(pos_slice=slice(2, 5), apply_ln=True)
    out["acc_list_pos"] = cache.accumulated_resid(pos_slice=[1, 3])
    out["acc_plain"] = cache.accumulated_resid()
    out["dec"] = cache.decompose_resid(return_labels=True)
    out["dec_ln_pos"] = cache.decompose_resid(layer=-1, apply_ln=True, pos_slice=-1, return_labels=True)
    out["dec_attn"] = cache.decompose_resid(mode="attn", return_labels=True)
    out["dec_mlp"] = cache.decompose_resid(mode="mlp", incl_embeds=False, return_labels=True)
    out["dec_layer1_mlp_input"] = cache.decompose_resid(layer=1, mlp_input=True, return_labels=True)
    out["heads"] = cache.stack_head_results(return_labels=True)
    out["heads_layer1"] = cache.stack_head_results(layer=1, return_labels=True)
    out["heads_pos_ln"] = cache.stack_head_results(layer=-1, pos_slice=-1, apply_ln=True, return_labels=True)
    out["heads_remainder"] = cache.stack_head_results(layer=-1, pos_slice=-1, incl_remainder=True,
                                                      return_labels=True)
    out["heads_plain"] = cache.stack_head_results()
    out["neurons"] = cache.stack_neuron_results(1, pos_slice=-1, return_labels=True)
    out["neurons_slice"] = cache.stack_neuron_results(2, pos_slice=-1, neuron_slice=(0, 5), return_labels=True,
                                                      apply_ln=True)
    out["neurons_remainder"] = cache.stack_neuron_results(1, pos_slice=-1, incl_remainder=True,
                                                          return_labels=True)
    out["get_neuron_results"] = cache.get_neuron_results(1, neuron_slice=(0, 4), pos_slice=-1)
    out["full"] = cache.get_full_resid_decomposition(pos_slice=-1, return_labels=True)
    out["full_no_expand"] = cache.get_full_resid_decomposition(pos_slice=-1, expand_neurons=False,
                                                               return_labels=True)
    out["full_ln"] = cache.get_full_resid_decomposition(apply_ln=True, pos_slice=-1, expand_neurons=False)
    out["stack_activation"] = cache.stack_activation("resid_pre")
    out["stack_activation_l1"] = cache.stack_activation("pattern", layer=1)
    out["stack_activation_scale"] = cache.stack_activation("scale", sublayer_type="ln1")
    cache.compute_head_results()
    out["result0"] = cache["result", 0]
    out["result_in_keys"] = "blocks.1.attn.hook_result" in cache.keys()
    out["n_keys_after"] = len(cache)
    return out


@script
def exploratory_logit_diff(model):
    """Exploratory Analysis Demo: logit difference, logit lens, head attribution."""
    tokens = prompt_tokens(model)
    if has_tok(model):
        answers = [(" you", " we"), (" we", " you")]
        answer_tokens = torch.tensor([[model.to_single_token(word(model, a)) for a in pair] for pair in answers])
    else:
        answer_tokens = torch.tensor([[5, 7], [7, 5]])
    logits, cache = model.run_with_cache(tokens)

    def logits_to_ave_logit_diff(logits, answer_tokens, per_prompt=False):
        final_logits = logits[:, -1, :]
        answer_logits = final_logits.gather(dim=-1, index=answer_tokens)
        answer_logit_diff = answer_logits[:, 0] - answer_logits[:, 1]
        if per_prompt:
            return answer_logit_diff
        return answer_logit_diff.mean()

    out = {"ave": logits_to_ave_logit_diff(logits, answer_tokens),
           "per_prompt": logits_to_ave_logit_diff(logits, answer_tokens, per_prompt=True)}
    answer_residual_directions = model.tokens_to_residual_directions(answer_tokens)
    out["answer_residual_directions"] = answer_residual_directions
    logit_diff_directions = answer_residual_directions[:, 0] - answer_residual_directions[:, 1]
    final_residual_stream = cache["resid_post", -1]
    final_token_residual_stream = final_residual_stream[:, -1, :]
    scaled_final = cache.apply_ln_to_stack(final_token_residual_stream, layer=-1, pos_slice=-1)
    out["scaled_final"] = scaled_final
    out["scaled_logit_diff"] = (scaled_final * logit_diff_directions).sum(-1).mean()

    def residual_stack_to_logit_diff(residual_stack, cache):
        scaled = cache.apply_ln_to_stack(residual_stack, layer=-1, pos_slice=-1)
        return (scaled * logit_diff_directions).sum(-1).mean(-1) if scaled.dim() > 2 else \
            (scaled * logit_diff_directions).sum(-1)

    accumulated_residual, labels = cache.accumulated_resid(layer=-1, incl_mid=not model.cfg.parallel_attn_mlp, pos_slice=-1,
                                                           return_labels=True)
    out["logit_lens"] = residual_stack_to_logit_diff(accumulated_residual, cache)
    out["labels"] = labels
    per_layer_residual, labels = cache.decompose_resid(layer=-1, pos_slice=-1, return_labels=True)
    out["per_layer"] = residual_stack_to_logit_diff(per_layer_residual, cache)
    out["per_layer_labels"] = labels
    per_head_residual, labels = cache.stack_head_results(layer=-1, pos_slice=-1, return_labels=True)
    out["per_head"] = residual_stack_to_logit_diff(per_head_residual, cache)
    out["per_head_labels"] = labels
    out["per_head_grid"] = residual_stack_to_logit_diff(per_head_residual, cache).reshape(
        model.cfg.n_layers, model.cfg.n_heads)
    out["logit_attrs"] = cache.logit_attrs(per_layer_residual, tokens=answer_tokens[:, 0],
                                           incorrect_tokens=answer_tokens[:, 1], pos_slice=-1)
    out["logit_attrs_int"] = cache.logit_attrs(per_layer_residual, tokens=int(answer_tokens[0, 0]), pos_slice=-1)
    if has_tok(model):
        out["logit_attrs_str"] = cache.logit_attrs(per_layer_residual, tokens=word(model, " you"),
                                                   incorrect_tokens=word(model, " we"), pos_slice=-1)
    # apply_ln_to_stack on a full [components, batch, pos, d_model] stack and on mlp inputs
    full_stack = cache.decompose_resid(layer=1)
    out["apply_ln_full"] = cache.apply_ln_to_stack(full_stack, layer=1)
    out["apply_ln_mlp_input"] = cache.apply_ln_to_stack(cache.decompose_resid(layer=1, mlp_input=True), layer=1,
                                                        mlp_input=True)
    out["apply_ln_none"] = cache.apply_ln_to_stack(full_stack)
    out["apply_ln_batch_slice"] = cache.apply_ln_to_stack(cache.decompose_resid(pos_slice=-1), pos_slice=-1,
                                                          batch_slice=0)
    return out


# ---------------------------------------------------------------- hooks
@script
def hooks_editing(model):
    tokens = prompt_tokens(model)
    clean_logits = model(tokens)
    out = {}

    def head_ablation_hook(value, hook, head_index_to_ablate):
        value[:, :, head_index_to_ablate, :] = 0.0
        return value

    layer_to_ablate = 0
    out["ablated"] = model.run_with_hooks(
        tokens, return_type="loss",
        fwd_hooks=[(utils.get_act_name("v", layer_to_ablate), partial(head_ablation_hook, head_index_to_ablate=1))])
    seen = []

    def in_place_none(resid, hook):
        seen.append((hook.name, hook.layer()))
        resid[:, 1] *= 0.5

    out["in_place_none"] = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_resid_pre", in_place_none)])
    out["seen"] = seen

    def returns_new(resid, hook):
        return resid * 0.9

    out["returns_new"] = model.run_with_hooks(tokens, fwd_hooks=[(utils.get_act_name("attn_out", 0), returns_new)])
    layers = []

    def layer_reader(x, hook):
        layers.append((hook.name, hook.layer()))

    model.run_with_hooks(tokens, fwd_hooks=[(lambda n: n.endswith("hook_z"), layer_reader),
                                            ("blocks.0.hook_resid_pre", layer_reader)])
    out["layers"] = layers
    out["after_reset"] = torch.allclose(model(tokens), clean_logits)

    def pattern_hook(pattern, hook):
        p = pattern.clone()
        p[:, 0] = 0.0
        p[:, 0, :, 0] = 1.0
        return p

    out["pattern_edit"] = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_pattern", pattern_hook)])

    def mlp_post_hook(post, hook):
        post[..., :10] = 0.0
        return post

    out["mlp_post_edit"] = model.run_with_hooks(tokens, return_type="loss",
                                                fwd_hooks=[(utils.get_act_name("post", 0), mlp_post_hook)])

    def q_hook(q, hook):
        return q * 2.0

    out["q_edit"] = model.run_with_hooks(tokens, fwd_hooks=[(utils.get_act_name("q", 1), q_hook)])
    # a cache recorded during run_with_hooks
    store = {}

    def cache_hook(x, hook):
        store[hook.name] = x.detach().clone()

    model.run_with_hooks(tokens, fwd_hooks=[(lambda n: "hook_resid" in n, cache_hook)])
    out["stored_names"] = list(store.keys())
    out["stored"] = store
    # hooks context manager and add_hook / reset_hooks
    with model.hooks(fwd_hooks=[("blocks.0.hook_mlp_out", lambda x, hook: x * 0.0)]):
        out["ctx"] = model(tokens)
    out["ctx_reset"] = torch.allclose(model(tokens), clean_logits)
    model.add_hook("blocks.0.hook_attn_out", lambda x, hook: x * 0.0)
    out["add_hook"] = model(tokens)
    model.reset_hooks()
    out["reset_hooks"] = torch.allclose(model(tokens), clean_logits)
    model.add_hook(lambda n: n == "blocks.1.hook_mlp_out", lambda x, hook: x + 1.0)
    out["add_hook_filter"] = model(tokens)
    model.reset_hooks()
    # hooked cache: run_with_cache with hooks active
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_post", lambda x, hook: x * 0.5)]):
        _, hooked_cache = model.run_with_cache(tokens)
    out["hooked_cache_resid_pre1"] = hooked_cache["resid_pre", 1]
    out["hooked_cache_resid_post0"] = hooked_cache["resid_post", 0]
    return out


@script
def hooks_hook_point(model):
    hp = model.hook_dict["blocks.1.attn.hook_z"]
    out = {"type": type(hp).__name__, "isinstance": isinstance(hp, HookPoint), "name": hp.name,
           "layer": hp.layer()}
    out["embed_name"] = model.hook_dict["hook_embed"].name
    # (TL's hook_dict also lists the optional hook points that are switched off; mechlens's
    # engine creates those only when switched on: see optional_hooks for them)
    optional = ("hook_result", "hook_attn_in", "hook_q_input", "hook_k_input", "hook_v_input", "hook_mlp_in")
    out["hook_dict_keys"] = [k for k in model.hook_dict.keys() if not k.endswith(optional)]
    out["hook_points_len"] = len([h for h in model.hook_points() if not h.name.endswith(optional)])
    seen = []
    model.run_with_hooks(rand_tokens(model, 1, 4), fwd_hooks=[("blocks.0.attn.hook_result",
                                                               lambda x, hook: seen.append(1))])
    out["switched_off_hook_never_fires"] = seen
    out["mod_dict_has_blocks"] = "blocks.0.attn.hook_z" in model.mod_dict
    out["attr_hook"] = model.blocks[0].attn.hook_pattern.name
    out["attr_hook_resid"] = model.blocks[1].hook_resid_pre.name
    out["model_hook_embed"] = model.hook_embed.name
    return out


@script(grad=True)
def hooks_backward(model):
    tokens = prompt_tokens(model)
    grads = {}

    def bwd_hook(grad, hook):
        grads[hook.name] = grad.detach().clone()

    model.reset_hooks()
    with model.hooks(bwd_hooks=[(utils.get_act_name("resid_post", 0), bwd_hook), ("blocks.1.hook_attn_out", bwd_hook),
                                (utils.get_act_name("pattern", 1), bwd_hook)]):
        loss = model(tokens, return_type="loss")
        loss.backward()
    out = {"names": sorted(grads.keys()), "grads": grads, "loss": loss.detach()}
    # backward hook added with add_hook(dir="bwd")
    store = {}
    def keep(grad, hook):
        store["g"] = grad.detach().clone()

    model.add_hook("blocks.1.hook_resid_post", keep, dir="bwd")
    model(tokens, return_type="loss").backward()
    model.reset_hooks()
    out["add_hook_bwd"] = store["g"]
    model.zero_grad(set_to_none=True)
    return out


@script
def hooks_patching_manual(model):
    """Activation patching by hand (Main Demo): patch clean resid_pre into the corrupted run."""
    clean = prompt_tokens(model)
    corrupted = clean.clone()
    corrupted[:, 3] = clean[:, 5] if has_tok(model) else 4
    clean_logits, clean_cache = model.run_with_cache(clean)
    ans, wrong = (5, 7)
    if has_tok(model):
        ans, wrong = model.to_single_token(word(model, " you")), model.to_single_token(word(model, " we"))

    def metric(logits):
        return (logits[:, -1, ans] - logits[:, -1, wrong]).mean()

    def patch_resid(resid, hook, position):
        resid[:, position, :] = clean_cache[hook.name][:, position, :]
        return resid

    grid = torch.zeros(model.cfg.n_layers, clean.shape[1])
    for layer in range(model.cfg.n_layers):
        for position in range(clean.shape[1]):
            logits = model.run_with_hooks(corrupted, fwd_hooks=[
                (utils.get_act_name("resid_pre", layer), partial(patch_resid, position=position))])
            grid[layer, position] = metric(logits)
    return {"grid": grid, "clean": metric(clean_logits), "corrupted": metric(model(corrupted))}


# ---------------------------------------------------------------- patching module
def _patching_setup(model, n_pos=7):
    clean = prompt_tokens(model)[:, :n_pos]
    corrupted = clean.clone()
    corrupted[:, 2] = clean[:, 3] if has_tok(model) else 4
    corrupted[:, n_pos - 2] = 9
    ans, wrong = (5, 7)
    if has_tok(model):
        ans, wrong = model.to_single_token(word(model, " you")), model.to_single_token(word(model, " we"))
    clean_logits, clean_cache = model.run_with_cache(clean)
    corrupted_logits = model(corrupted)

    def logit_diff(logits):
        return (logits[:, -1, ans] - logits[:, -1, wrong]).mean()

    CLEAN, CORRUPTED = logit_diff(clean_logits).item(), logit_diff(corrupted_logits).item()

    def metric(logits):
        return (logit_diff(logits) - CORRUPTED) / (CLEAN - CORRUPTED)

    return clean, corrupted, clean_cache, metric


@script(only=[("gpt2", "processed"), ("gpt_neox", "unprocessed"), ("llama", "processed"),
              ("llama_sp", "unprocessed")])
def patching_grids(model):
    clean, corrupted, clean_cache, metric = _patching_setup(model)
    out = {}
    names = ["get_act_patch_resid_pre", "get_act_patch_attn_out", "get_act_patch_mlp_out",
             "get_act_patch_attn_head_out_all_pos", "get_act_patch_attn_head_q_all_pos",
             "get_act_patch_attn_head_pattern_all_pos", "get_act_patch_attn_head_out_by_pos",
             "get_act_patch_block_every"]
    if not model.cfg.parallel_attn_mlp:  # TL: no hook_resid_mid there
        names.append("get_act_patch_resid_mid")
    if not model.cfg.n_key_value_heads:  # TL indexes k / v by n_heads: fails for grouped-query attention
        names += ["get_act_patch_attn_head_k_all_pos", "get_act_patch_attn_head_v_all_pos",
                  "get_act_patch_attn_head_all_pos_every"]
    for name in names:
        out[name] = getattr(patching, name)(model, corrupted, clean_cache, metric)
    return out


@script(only=[("gpt2", "unprocessed"), ("gpt_neox", "processed"), ("llama_sp", "processed")])
def patching_grids_slow(model):
    clean, corrupted, clean_cache, metric = _patching_setup(model, n_pos=5)
    out = {}
    names = ["get_act_patch_attn_head_pattern_by_pos", "get_act_patch_attn_head_q_by_pos"]
    if not model.cfg.n_key_value_heads:
        names += ["get_act_patch_attn_head_v_by_pos", "get_act_patch_attn_head_by_pos_every"]
    for name in names:
        out[name] = getattr(patching, name)(model, corrupted, clean_cache, metric)
    short_clean, short_corr = clean[:, :4], corrupted[:, :4]
    _, short_cache = model.run_with_cache(short_clean)
    out["dest_src"] = patching.get_act_patch_attn_head_pattern_dest_src_pos(model, short_corr, short_cache, metric)
    return out


@script(only=[("gpt2", "unprocessed"), ("llama", "processed")])
def patching_generic(model):
    clean, corrupted, clean_cache, metric = _patching_setup(model)
    out = {}
    out["generic_resid_pre"] = patching.generic_activation_patch(
        model, corrupted, clean_cache, metric, patch_setter=patching.layer_pos_patch_setter,
        activation_name="resid_pre", index_axis_names=("layer", "pos"))
    out["generic_z_df"] = patching.generic_activation_patch(
        model, corrupted, clean_cache, metric, patch_setter=patching.layer_head_vector_patch_setter,
        activation_name="z", index_axis_names=("layer", "head"))
    out["index_df_shape"] = list(patching.make_df_from_ranges([2, 3], ["layer", "pos"]).shape)
    return out


# ---------------------------------------------------------------- head detector / generate / utils
@script
def head_detection(model):
    out = {}
    if has_tok(model):
        seq = "The cat sat on the mat. The cat sat on the mat."
        out["prev"] = detect_head(model, seq, "previous_token_head")
        out["dup"] = detect_head(model, seq, "duplicate_token_head")
        out["ind"] = detect_head(model, seq, "induction_head")
        out["list"] = detect_head(model, [seq, "a b c a b c"], "induction_head")
        out["heads"] = detect_head(model, seq, "previous_token_head", heads=[(0, 1), (1, 2)])
        out["heads_dict"] = detect_head(model, seq, "previous_token_head", heads={0: [0, 3]})
        out["excl"] = detect_head(model, seq, "induction_head", exclude_bos=True, exclude_current_token=True)
        out["abs"] = detect_head(model, seq, "duplicate_token_head", error_measure="abs")
        n = model.to_tokens(seq).shape[1]
        pattern = torch.tril(torch.ones(n, n)) / torch.arange(1, n + 1)[:, None]
        out["custom"] = detect_head(model, seq, pattern)
        _, cache = model.run_with_cache(seq, remove_batch_dim=True)
        out["with_cache"] = detect_head(model, seq, "previous_token_head", cache=cache)
    from transformer_lens import head_detector

    t = rand_tokens(model, 1, 8)[0]
    rep = torch.cat([t, t[1:]])
    out["pattern_prev"] = head_detector.get_previous_token_head_detection_pattern(rep.cpu())
    out["pattern_dup"] = head_detector.get_duplicate_token_head_detection_pattern(rep.cpu())
    out["pattern_ind"] = head_detector.get_induction_head_detection_pattern(rep.cpu())
    return out


@script
def induction_scores(model):
    """Main Demo: induction score from hook_pattern with a names_filter lambda."""
    seq_len = 8
    torch.manual_seed(0)
    rand = torch.randint(3, model.cfg.d_vocab - 1, (2, seq_len))
    bos = torch.full((2, 1), model.cfg.d_vocab - 1 if has_tok(model) else 1)
    rep = torch.cat([bos, rand, rand], dim=1)
    scores = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)

    def induction_score_hook(pattern, hook):
        stripe = pattern.diagonal(dim1=-2, dim2=-1, offset=1 - seq_len)
        scores[hook.layer()] = stripe.mean(-1).mean(0)

    model.run_with_hooks(rep, return_type=None,
                         fwd_hooks=[(lambda name: name.endswith("pattern"), induction_score_hook)])
    logits, cache = model.run_with_cache(rep, remove_batch_dim=False)
    log_probs = logits.log_softmax(-1)[:, :-1].gather(-1, rep[:, 1:, None])[..., 0]
    return {"scores": scores, "log_probs": log_probs, "pattern": cache["pattern", 1][0, :, -1]}


@script
def generation(model):
    if not has_tok(model):  # TL's generate asserts a tokenizer
        return None
    out = {}
    t = rand_tokens(model, 1, 5)
    out["greedy_tokens"] = model.generate(t, max_new_tokens=6, do_sample=False, verbose=False)
    first = int(model(t)[0, -1].argmax())
    out["greedy_eos_id"] = model.generate(t, max_new_tokens=6, do_sample=False, verbose=False, eos_token_id=first)
    out["greedy_no_eos"] = model.generate(t, max_new_tokens=6, do_sample=False, stop_at_eos=False, verbose=False)
    out["greedy_no_kv"] = model.generate(t, max_new_tokens=4, do_sample=False, use_past_kv_cache=False,
                                         verbose=False)
    tb = rand_tokens(model, 2, 5, seed=3)
    out["batch"] = model.generate(tb, max_new_tokens=4, do_sample=False, verbose=False, stop_at_eos=False)
    first_b = int(model(tb)[0, -1].argmax())
    out["batch_one_finishes"] = model.generate(tb, max_new_tokens=4, do_sample=False, verbose=False,
                                               eos_token_id=first_b)
    out["text"] = model.generate("The cat sat", max_new_tokens=5, do_sample=False, verbose=False)
    out["text_tokens"] = model.generate("The cat sat", max_new_tokens=5, do_sample=False, verbose=False,
                                        return_type="tokens")
    out["text_tensor"] = model.generate("The cat sat", max_new_tokens=5, do_sample=False, verbose=False,
                                        return_type="tensor")
    out["tokens_str"] = model.generate(model.to_tokens("The cat sat"), max_new_tokens=5, do_sample=False,
                                       verbose=False, return_type="str")
    out["text_nobos"] = model.generate("The cat sat", max_new_tokens=3, do_sample=False, verbose=False,
                                       prepend_bos=False)
    return out


@script
def utils_functions(model):
    out = {}
    out["names"] = [utils.get_act_name("resid_pre", 0), utils.get_act_name("pattern", 1),
                    utils.get_act_name("attn", 1), utils.get_act_name("k6a"), utils.get_act_name("scale", 0, "ln1"),
                    utils.get_act_name("scale"), utils.get_act_name("embed"), utils.get_act_name("q", 2, "a"),
                    utils.get_act_name("resid_post", 11), utils.get_act_name("post", 0, "mlp"),
                    utils.get_act_name("mlp_out", 3), utils.get_act_name("z", 0, "attn"),
                    utils.get_act_name("normalized", 1, "ln2"), utils.get_act_name("attn_scores", 0),
                    utils.get_act_name("result", 1), utils.get_act_name("rot_q", 0),
                    utils.get_act_name("pos_embed"), utils.get_act_name("pre", 1)]
    t = torch.arange(12.0).reshape(1, 3, 4)
    out["remove_batch_dim"] = utils.remove_batch_dim(t)
    out["to_numpy_type"] = type(utils.to_numpy(t)).__name__
    out["to_numpy"] = torch.tensor(utils.to_numpy(t))
    out["get_corner"] = utils.get_corner(torch.arange(25).reshape(5, 5), 2)
    out["transpose"] = utils.transpose(torch.arange(6).reshape(2, 3))
    x = torch.linspace(-3, 3, 7)
    out["gelu_new"] = utils.gelu_new(x)
    out["gelu_fast"] = utils.gelu_fast(x)
    out["solu"] = utils.solu(x.reshape(1, 1, 7))
    out["slice_int"] = utils.Slice(-1).apply(torch.arange(10).reshape(2, 5), dim=-1)
    out["slice_tuple"] = utils.Slice((1, 4)).apply(torch.arange(10).reshape(2, 5), dim=-1)
    out["slice_list"] = utils.Slice([0, 2]).apply(torch.arange(10).reshape(2, 5), dim=-1)
    out["composition"] = utils.composition_scores(model.OV[0, 0], model.QK[1, 0])
    out["is_square"] = [utils.is_square(torch.zeros(3, 3)), utils.is_square(torch.zeros(3, 2))]
    out["is_lower_triangular"] = utils.is_lower_triangular(torch.tril(torch.ones(3, 3)))
    out["sample_logits_greedy"] = utils.sample_logits(torch.tensor([[0.1, 2.0, 0.5]]), temperature=0.0)
    return out


@script
def ioi_metric(model):
    """IOI-style metrics: logit diff per prompt over a batch with indexed answer positions."""
    tokens = prompt_tokens(model)
    logits, cache = model.run_with_cache(tokens)
    if has_tok(model):
        io = torch.tensor([model.to_single_token(word(model, " you")), model.to_single_token(word(model, " we"))])
        s = torch.tensor([model.to_single_token(word(model, " we")), model.to_single_token(word(model, " you"))])
    else:
        io, s = torch.tensor([5, 7]), torch.tensor([7, 5])
    end = torch.tensor([tokens.shape[1] - 1] * tokens.shape[0])
    batch = torch.arange(tokens.shape[0])
    ld = logits[batch, end, io] - logits[batch, end, s]
    probs = logits.softmax(-1)[batch, end]
    out = {"logit_diff": ld, "prob_io": probs[batch, io], "mean": ld.mean()}
    # per-head direct logit attribution, IOI-style
    per_head, labels = cache.stack_head_results(layer=-1, pos_slice=-1, return_labels=True, apply_ln=True)
    dirs = model.tokens_to_residual_directions(io) - model.tokens_to_residual_directions(s)
    out["dla"] = (per_head * dirs).sum(-1).mean(-1)
    out["labels"] = labels
    # attention of the final position on each earlier token, per head
    out["attn_end"] = cache["pattern", 1][batch, :, -1]
    return out


@script
def optional_hooks(model):
    """set_use_attn_result / set_use_split_qkv_input / set_use_hook_mlp_in / set_use_attn_in."""
    tokens = prompt_tokens(model)
    out = {}
    clean = model(tokens)
    model.set_use_attn_result(True)
    try:
        logits, cache = model.run_with_cache(tokens)
        out["result_keys"] = [k for k in cache.keys() if "result" in k]
        out["result0"] = cache["result", 0]
        out["result_sum"] = cache["result", 1].sum(-2)
        out["same_logits"] = torch.allclose(logits, clean, atol=1e-5)
        out["heads"] = cache.stack_head_results(layer=-1, pos_slice=-1, return_labels=True)

        def zero_head(result, hook):
            result[:, :, 1] = 0.0
            return result

        out["ablate_result"] = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.attn.hook_result", zero_head)])
    finally:
        model.set_use_attn_result(False)
    if model.cfg.n_key_value_heads:  # TL's split q/k/v inputs fail for grouped-query attention
        return out
    model.set_use_split_qkv_input(True)
    try:
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith(("_input", "hook_q")))
        out["split_keys"] = list(cache.keys())
        out["q_input0"] = cache["blocks.0.hook_q_input"]

        def scale_q_input(x, hook):
            x[:, :, 2] = x[:, :, 2] * 0.5
            return x

        out["edit_q_input"] = model.run_with_hooks(tokens, fwd_hooks=[("blocks.1.hook_q_input", scale_q_input)])
    finally:
        model.set_use_split_qkv_input(False)
    model.set_use_hook_mlp_in(True)
    try:
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_mlp_in"))
        out["mlp_in"] = cache["blocks.1.hook_mlp_in"]
    finally:
        model.set_use_hook_mlp_in(False)
    model.set_use_attn_in(True)
    try:
        _, cache = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_attn_in"))
        out["attn_in"] = cache["blocks.0.hook_attn_in"]
    finally:
        model.set_use_attn_in(False)
    out["back_to_normal"] = torch.allclose(model(tokens), clean, atol=1e-6)
    return out


@script(grad=True)
def cache_extras(model):
    """Less common run_with_cache / ActivationCache uses: incl_bwd, pos_slice, a cache built
    by hand from hook outputs, apply_slice_to_batch_dim, stop_at_layer."""
    tokens = prompt_tokens(model)
    out = {}
    with torch.enable_grad():
        loss, cache = model.run_with_cache(tokens, return_type="loss", incl_bwd=True,
                                           names_filter=lambda n: n.endswith(("resid_post", "hook_z")))
    out["bwd_keys"] = sorted(cache.keys())
    out["resid_post_grad"] = cache["blocks.0.hook_resid_post_grad"]
    out["z_grad"] = cache["blocks.1.attn.hook_z_grad"]
    out["loss"] = loss.detach()
    model.zero_grad(set_to_none=True)
    _, sliced = model.run_with_cache(tokens, pos_slice=-1)
    out["pos_slice_shapes"] = {k: list(v.shape) for k, v in sliced.items()}
    _, sliced2 = model.run_with_cache(tokens, pos_slice=(1, 4), names_filter=lambda n: "resid" in n or "hook_q" in n)
    out["pos_slice_tuple"] = {k: v for k, v in sliced2.items()}
    store = {}

    def save(x, hook):
        store[hook.name] = x.detach()

    model.run_with_hooks(tokens, fwd_hooks=[(lambda n: True, save)])
    hand = ActivationCache(store, model)
    out["hand_accumulated"] = hand.accumulated_resid(apply_ln=True, pos_slice=-1, return_labels=True)
    out["hand_heads"] = hand.stack_head_results(layer=-1, pos_slice=-1, return_labels=True)
    out["hand_keys"] = list(hand.keys())
    _, cache = model.run_with_cache(tokens)
    one = cache.apply_slice_to_batch_dim(1)
    out["batch_slice_one"] = {"has_batch_dim": one.has_batch_dim, "resid": one["resid_pre", 1]}
    out["batch_slice_one_decompose"] = one.decompose_resid(pos_slice=-1, apply_ln=True, return_labels=True)
    two = cache.apply_slice_to_batch_dim((0, 1))
    out["batch_slice_range"] = two["resid_post", 1]
    logits, c2 = model.run_with_cache(tokens, stop_at_layer=1)
    out["stop_at_layer_out"] = logits
    out["stop_at_layer_keys"] = list(c2.keys())
    out["stop_neg"] = model(tokens, stop_at_layer=-1)
    out["start_neg"] = model(cache["resid_pre", 1], start_at_layer=-1)
    out["start_loss"] = model(cache["resid_pre", 1], start_at_layer=1, tokens=tokens, return_type="loss")
    return out


@script
def modules_and_helpers(model):
    """Calling the model's pieces (embed, pos_embed, blocks, ln_final, unembed) and the small
    helpers (accumulated_bias, all_head_labels, get_corner ...)."""
    tokens = prompt_tokens(model)
    _, cache = model.run_with_cache(tokens)
    out = {}
    out["embed"] = model.embed(tokens)
    if model.cfg.positional_embedding_type == "standard":
        out["pos_embed"] = model.pos_embed(tokens)
    out["block0"] = model.blocks[0](cache["resid_pre", 0])
    out["block1"] = model.blocks[1](cache["resid_pre", 1])
    out["ln_final"] = model.ln_final(cache["resid_post", -1])
    out["unembed"] = model.unembed(model.ln_final(cache["resid_post", -1]))
    out["accumulated_bias"] = [model.accumulated_bias(l) for l in range(model.cfg.n_layers + 1)]
    out["accumulated_bias_mlp_input"] = model.accumulated_bias(1, mlp_input=True)
    out["accumulated_bias_no_mlp"] = model.accumulated_bias(2, include_mlp_biases=False)
    out["all_head_labels"] = model.all_head_labels()
    out["W_E_corner"] = utils.get_corner(model.W_E, 3)
    out["OV_corner"] = utils.get_corner(model.OV, 3)
    out["repr_cfg_type"] = type(model.cfg).__name__
    return out


@script
def patching_index_df(model):
    clean, corrupted, clean_cache, metric = _patching_setup(model, n_pos=4)
    grid, df = patching.get_act_patch_resid_pre(model, corrupted, clean_cache, metric, return_index_df=True)
    g2, df2 = patching.get_act_patch_attn_head_out_all_pos(model, corrupted, clean_cache, metric,
                                                           return_index_df=True)
    return {"grid": grid, "columns": list(df.columns), "rows": df.values.tolist(), "g2": g2,
            "columns2": list(df2.columns), "rows2": df2.values.tolist()}


@script
def sampling(model):
    """generate(do_sample=True) after torch.manual_seed: TL's sampler, TL's tokens."""
    if not has_tok(model):
        return None
    out = {}
    t = rand_tokens(model, 1, 5)
    torch.manual_seed(123)
    out["plain"] = model.generate(t, max_new_tokens=6, verbose=False, stop_at_eos=False)
    torch.manual_seed(7)
    out["top_k"] = model.generate(t, max_new_tokens=6, top_k=10, temperature=0.7, verbose=False, stop_at_eos=False)
    torch.manual_seed(7)
    out["top_p"] = model.generate(t, max_new_tokens=6, top_p=0.8, verbose=False, stop_at_eos=False)
    torch.manual_seed(3)
    out["freq_penalty"] = model.generate(t, max_new_tokens=6, freq_penalty=2.0, verbose=False, stop_at_eos=False)
    torch.manual_seed(5)
    out["text"] = model.generate("The cat", max_new_tokens=4, verbose=False, temperature=0.5)
    torch.manual_seed(0)
    out["sample_logits"] = utils.sample_logits(torch.randn(3, model.cfg.d_vocab), top_k=5)
    return out


@script(grad=True)
def gradients(model):
    """Plain autograd through the model, as with a torch.nn.Module: the parameters require grad."""
    tokens = prompt_tokens(model)
    out = {}
    out["params_require_grad"] = all(p.requires_grad for p in model.parameters())
    logits = model(tokens)
    out["logits_requires_grad"] = logits.requires_grad
    loss = model(tokens, return_type="loss")
    loss.backward()
    out["W_E_grad"] = model.W_E.grad.clone()
    # (W_U: see the report -- mechlens ties it to W_E in unprocessed tied-embedding models)
    # (W_Q / W_K / W_V: see the report -- mechlens's engine keeps them as one fused leaf)
    out["W_O0_grad"] = model.blocks[0].attn.W_O.grad.clone()
    out["W_in1_grad"] = model.blocks[1].mlp.W_in.grad.clone()
    model.zero_grad(set_to_none=True)
    out["after_zero_grad"] = model.W_E.grad is None
    _, cache = model.run_with_cache(tokens)
    out["cache_requires_grad"] = cache["resid_post", 0].requires_grad
    resid = cache["resid_pre", 1].clone().requires_grad_(True)
    l2 = model(resid, start_at_layer=1, tokens=tokens, return_type="loss")
    (g,) = torch.autograd.grad(l2, resid)
    out["resid_grad"] = g
    model.zero_grad(set_to_none=True)
    return out


@script
def tokenizer_api(model):
    if not has_tok(model):
        return None
    tok = model.tokenizer
    out = {}
    out["call_ids"] = tok("the cat sat")["input_ids"]
    out["call_batch"] = tok(["the cat", "a b c d"], padding=True, return_tensors="pt")["input_ids"]
    out["call_mask"] = tok(["the cat", "a b c d"], padding=True, return_tensors="pt")["attention_mask"]
    out["encode"] = tok.encode("the whale")
    out["encode_nospecial"] = tok.encode("the whale", add_special_tokens=False)
    ids = tok.encode("Hello world, the cat. It's here!")
    out["decode"] = tok.decode(ids)
    out["decode_skip"] = tok.decode(ids, skip_special_tokens=True)
    out["decode_noclean"] = tok.decode(ids, clean_up_tokenization_spaces=False)
    out["batch_decode"] = tok.batch_decode([ids[:3], ids[3:6]])
    out["convert_ids_to_tokens"] = tok.convert_ids_to_tokens(ids)
    out["vocab_size"] = tok.vocab_size
    out["len"] = len(tok)
    out["padding_side"] = tok.padding_side
    out["specials"] = [tok.bos_token, tok.eos_token, tok.pad_token, tok.bos_token_id, tok.eos_token_id,
                       tok.pad_token_id]
    out["to_string_decode"] = model.to_string(torch.tensor(ids))
    out["to_str_tokens_ids_list"] = model.to_str_tokens(torch.tensor(ids))
    return out


@script
def module_imports(model):
    """The import paths of TL's modules."""
    from transformer_lens.ActivationCache import ActivationCache as AC
    from transformer_lens.FactoredMatrix import FactoredMatrix as FM
    from transformer_lens.HookedTransformer import HookedTransformer as HT
    from transformer_lens.HookedTransformerConfig import HookedTransformerConfig as HTC
    from transformer_lens.hook_points import HookedRootModule
    from transformer_lens.utils import get_act_name, Slice  # noqa: F401
    import transformer_lens.head_detector as hd
    import transformer_lens.patching as pt

    _, cache = model.run_with_cache(rand_tokens(model, 1, 4))
    return {"cache": isinstance(cache, AC), "fm": isinstance(model.OV, FM), "model": isinstance(model, HT),
            "cfg": isinstance(model.cfg, HTC), "root": isinstance(model, HookedRootModule),
            "top_level": [transformer_lens.HookedTransformer is HT, transformer_lens.ActivationCache is AC,
                          transformer_lens.FactoredMatrix is FM],
            "hd_names": list(hd.HEAD_NAMES), "pt_fn": callable(pt.get_act_patch_resid_pre)}


@script
def test_prompt_output(model):
    """utils.test_prompt's printed report (Main Demo)."""
    if not has_tok(model):
        return None
    import contextlib
    import io

    out = {}
    for name, args in (("one", ("The cat sat on the", "mat")), ("multi", ("The cat sat on the", ["mat", "dog"])),
                       ("nobos", ("The cat sat on the", " mat"))):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            if name == "nobos":
                utils.test_prompt(*args, model, prepend_bos=False, top_k=3)
            else:
                utils.test_prompt(*args, model, top_k=4)
        out[name] = buf.getvalue()
    return out
