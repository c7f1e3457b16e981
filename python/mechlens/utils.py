"""TransformerLens's utils that scripts reach for, with TL's behaviour: get_act_name,
Slice, lm_cross_entropy_loss / lm_accuracy, the activation functions, composition_scores,
sample_logits, get_corner, to_numpy, remove_batch_dim, transpose, ... (mechlens.utils is
what `import transformer_lens.utils as utils` becomes)."""
import re
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from . import _mechlens as _C  # noqa: F401  (the module the rest of mechlens shares)

# TL's USE_DEFAULT_VALUE: "use the model's default" for prepend_bos / padding_side.
USE_DEFAULT_VALUE = None


def get_act_name(name: str, layer: Optional[Union[int, str]] = None, layer_type: Optional[str] = None) -> str:
    """TL's utils.get_act_name: ("resid_pre", 3) -> "blocks.3.hook_resid_pre", "k6a" ->
    "blocks.6.attn.hook_k", ("scale", 0, "ln1") -> "blocks.0.ln1.hook_scale", a full
    hook name -> itself."""
    if ("." in name or name.startswith("hook_")) and layer is None and layer_type is None:
        return name
    match = re.match(r"([a-z]+)(\d+)([a-z]?.*)", name)
    if match is not None:
        name, layer, layer_type = match.groups(0)

    layer_type_alias = {"a": "attn", "m": "mlp", "b": "", "block": "", "blocks": "", "attention": "attn"}
    act_name_alias = {"attn": "pattern", "attn_logits": "attn_scores", "key": "k", "query": "q", "value": "v",
                      "mlp_pre": "pre", "mlp_mid": "mid", "mlp_post": "post"}
    layer_norm_names = ["scale", "normalized"]

    if name in act_name_alias:
        name = act_name_alias[name]

    full_act_name = ""
    if layer is not None:
        full_act_name += f"blocks.{layer}."
    if name in ["k", "v", "q", "z", "rot_k", "rot_q", "result", "pattern", "attn_scores"]:
        layer_type = "attn"
    elif name in ["pre", "post", "mid", "pre_linear"]:
        layer_type = "mlp"
    elif layer_type in layer_type_alias:
        layer_type = layer_type_alias[layer_type]

    if layer_type:
        full_act_name += f"{layer_type}."
    full_act_name += f"hook_{name}"

    if name in layer_norm_names and layer is None:
        full_act_name = f"ln_final.{full_act_name}"
    return full_act_name


def lm_cross_entropy_loss(logits: torch.Tensor, tokens: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                          per_token: bool = False) -> torch.Tensor:
    """Next-token cross-entropy of logits [batch, pos, vocab] against tokens [batch, pos]:
    the mean, or per_token=True: [batch, pos - 1]. attention_mask [batch, pos] leaves out
    the positions where it or the next position's mask is 0 (padding)."""
    if isinstance(attention_mask, bool):  # the old mechlens signature (logits, tokens, per_token)
        attention_mask, per_token = None, attention_mask
    tokens = tokens.long()
    log_probs = F.log_softmax(logits, dim=-1)
    predicted_log_probs = log_probs[..., :-1, :].gather(dim=-1, index=tokens[..., 1:, None])[..., 0]
    if attention_mask is not None:
        next_token_mask = torch.logical_and(attention_mask[:, :-1], attention_mask[:, 1:])
        predicted_log_probs *= next_token_mask
        n_tokens = next_token_mask.sum().item()
    else:
        n_tokens = predicted_log_probs.numel()
    if per_token:
        return -predicted_log_probs
    return -predicted_log_probs.sum() / n_tokens


def lm_accuracy(logits: torch.Tensor, tokens: torch.Tensor, per_token: bool = False) -> torch.Tensor:
    """Top-1 next-token accuracy: the share, or per_token=True: [batch, pos - 1] booleans."""
    top_prediction = logits.argmax(dim=-1)
    correct_matches = top_prediction[:, :-1] == tokens[:, 1:]
    if per_token:
        return correct_matches
    return correct_matches.sum() / correct_matches.numel()


def gelu_new(input: torch.Tensor) -> torch.Tensor:
    """GPT-2's GELU (the tanh approximation)."""
    return 0.5 * input * (1.0 + torch.tanh(np.sqrt(2.0 / np.pi) * (input + 0.044715 * torch.pow(input, 3.0))))


def gelu_fast(input: torch.Tensor) -> torch.Tensor:
    return 0.5 * input * (1.0 + torch.tanh(input * 0.7978845608 * (1.0 + 0.044715 * input * input)))


def solu(input: torch.Tensor) -> torch.Tensor:
    """SoLU: x * softmax(x) over the last axis."""
    return input * F.softmax(input, dim=-1)


ACTIVATION_FN_DICT = {
    "solu": solu,
    "solu_ln": solu,
    "gelu_new": gelu_new,
    "gelu_fast": gelu_fast,
    "silu": F.silu,
    "relu": F.relu,
    "gelu": F.gelu,
    "gelu_pytorch_tanh": lambda tensor: F.gelu(tensor, approximate="tanh"),
}


def sample_logits(final_logits: torch.Tensor, top_k: Optional[int] = None, top_p: Optional[float] = None,
                  temperature: float = 1.0, freq_penalty: float = 0.0,
                  tokens: Optional[torch.Tensor] = None) -> torch.Tensor:
    """TL's sampler: [batch, d_vocab] logits -> [batch] token ids (temperature 0: argmax)."""
    if temperature == 0.0:
        return final_logits.argmax(dim=-1)
    final_logits = final_logits / temperature
    if freq_penalty > 0:
        assert tokens is not None, "Must provide input_tokens if applying a frequency penalty"
        for batch_index in range(final_logits.shape[0]):
            final_logits[batch_index] = final_logits[batch_index] - freq_penalty * torch.bincount(
                tokens[batch_index], minlength=final_logits.shape[-1])
    if top_k is not None:
        assert top_k > 0, "top_k has to be greater than 0"
        top_logits, _ = final_logits.topk(top_k, dim=-1)
        indices_to_remove = final_logits < top_logits[..., -1].unsqueeze(-1)
        final_logits = final_logits.masked_fill(indices_to_remove, -float("inf"))
    elif top_p is not None:
        assert 1.0 >= top_p > 0.0, "top_p has to be in (0, 1]"
        sorted_logits, sorted_indices = torch.sort(final_logits, descending=True)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        sorted_indices_to_remove = cumulative_probs > top_p
        sorted_indices_to_remove[..., 1:] = sorted_indices_to_remove[..., :-1].clone()
        sorted_indices_to_remove[..., 0] = 0
        indices_to_remove = sorted_indices_to_remove.scatter(-1, sorted_indices, sorted_indices_to_remove)
        final_logits = final_logits.masked_fill(indices_to_remove, -float("inf"))
    final_logits = final_logits.to(torch.float32)
    return torch.distributions.categorical.Categorical(logits=final_logits).sample()


def to_numpy(tensor):
    """A tensor, list, tuple, number or array as a numpy array."""
    if isinstance(tensor, np.ndarray):
        return tensor
    if isinstance(tensor, (list, tuple)):
        return np.array(tensor)
    if isinstance(tensor, torch.Tensor):
        return tensor.detach().cpu().numpy()
    if isinstance(tensor, (int, float, bool, str)):
        return np.array(tensor)
    raise ValueError(f"Input to to_numpy has invalid type: {type(tensor)}")


SliceInput = Optional[Union[int, Tuple[int], Tuple[int, int], Tuple[int, int, int], List[int], torch.Tensor,
                            np.ndarray]]


class Slice:
    """TL's Slice: None (identity), an int (indexes, dropping the axis), a tuple
    ((k,) -> :k, (a, b) -> a:b, (a, b, s) -> a:b:s), a slice, or a list / tensor / array of
    indices."""

    def __init__(self, input_slice: SliceInput = None):
        if isinstance(input_slice, tuple):
            self.slice = slice(*input_slice)
            self.mode = "slice"
        elif isinstance(input_slice, int):
            self.slice = input_slice
            self.mode = "int"
        elif isinstance(input_slice, slice):
            self.slice = input_slice
            self.mode = "slice"
        elif type(input_slice) in [list, torch.Tensor, np.ndarray]:
            self.slice = to_numpy(input_slice)
            self.mode = "array"
        elif input_slice is None:
            self.slice = slice(None)
            self.mode = "identity"
        else:
            raise ValueError(f"Invalid input_slice {input_slice}")

    def apply(self, tensor: torch.Tensor, dim: int = 0) -> torch.Tensor:
        ndim = tensor.ndim
        slices = [slice(None)] * ndim
        slices[dim] = self.slice
        return tensor[tuple(slices)]

    def indices(self, max_ctx: Optional[int] = None):
        if self.mode == "int":
            return np.array([self.slice], dtype=np.int64)
        if max_ctx is None:
            raise ValueError("max_ctx must be specified if slice is not an integer")
        return np.arange(max_ctx, dtype=np.int64)[self.slice]

    def __repr__(self) -> str:
        return f"Slice: {self.slice} Mode: {self.mode} "

    @classmethod
    def unwrap(cls, slice_input) -> "Slice":
        if not isinstance(slice_input, Slice):
            if isinstance(slice_input, int):
                slice_input = [slice_input]
            slice_input = Slice(slice_input)
        return slice_input


def remove_batch_dim(tensor: torch.Tensor) -> torch.Tensor:
    """Drops a leading axis of size 1; anything else unchanged."""
    if tensor.shape[0] == 1:
        return tensor.squeeze(0)
    return tensor


def transpose(tensor: torch.Tensor) -> torch.Tensor:
    """Swaps the last two axes."""
    return tensor.transpose(-1, -2)


def get_corner(tensor, n: int = 3):
    """The top-left n x n x ... corner of a tensor (or of a FactoredMatrix's product)."""
    from .factored_matrix import FactoredMatrix

    if isinstance(tensor, torch.Tensor):
        return tensor[tuple(slice(n) for _ in range(tensor.ndim))]
    if isinstance(tensor, FactoredMatrix):
        return tensor[tuple(slice(n) for _ in range(tensor.ndim))].AB
    return None


def composition_scores(left, right, broadcast_dims: bool = True) -> torch.Tensor:
    """||left.collapse_l @ right.collapse_r|| / (||left|| ||right||) for two
    FactoredMatrix objects (broadcast over both one's leading dimensions), as TL's."""
    if broadcast_dims:
        r_leading = right.ndim - 2
        l_leading = left.ndim - 2
        for i in range(l_leading):
            right = right.unsqueeze(i)
        for i in range(r_leading):
            left = left.unsqueeze(i + l_leading)
    assert left.rdim == right.ldim, (
        f"Composition scores require left.rdim==right.ldim, shapes were left: {left.shape}, right:{right.shape}")
    new_right = right.collapse_r()
    new_left = left.collapse_l()
    r_norms = new_right.norm(dim=[-2, -1])
    l_norms = new_left.norm(dim=[-2, -1])
    comp_norms = (new_left @ new_right).norm(dim=[-2, -1])
    return comp_norms / r_norms / l_norms


def is_square(x: torch.Tensor) -> bool:
    return x.ndim == 2 and x.shape[0] == x.shape[1]


def is_lower_triangular(x: torch.Tensor) -> bool:
    if not is_square(x):
        return False
    return x.equal(x.tril())


def get_device():
    """mechlens runs on the CPU."""
    return torch.device("cpu")


def override_or_use_default_value(default_flag, override=None):
    return override if override is not None else default_flag


def get_cumsum_along_dim(tensor: torch.Tensor, dim: int, reverse: bool = False) -> torch.Tensor:
    if reverse:
        tensor = tensor.flip(dims=(dim,))
    cumsum = tensor.cumsum(dim=dim)
    if reverse:
        cumsum = cumsum.flip(dims=(dim,))
    return cumsum


def get_offset_position_ids(past_kv_pos_offset: int, attention_mask: torch.Tensor) -> torch.Tensor:
    shifted_position_ids = attention_mask.cumsum(dim=1) - 1
    position_ids = shifted_position_ids.masked_fill(shifted_position_ids < 0, 0)
    return position_ids[:, past_kv_pos_offset:]


def get_attention_mask(tokenizer, tokens: torch.Tensor, prepend_bos: bool) -> torch.Tensor:
    """1 at real tokens, 0 at the padding (trailing pads for right padding, leading pads
    for left padding, keeping a BOS that is also the pad token), as TL's."""
    attention_mask = torch.ones_like(tokens)
    is_not_pad_token = tokens.ne(tokenizer.pad_token_id)
    if tokenizer.padding_side == "right":
        is_trailing_pad = get_cumsum_along_dim(is_not_pad_token, -1, reverse=True) == 0
        attention_mask[is_trailing_pad] = 0
    else:
        is_leading_pad = get_cumsum_along_dim(is_not_pad_token, -1, reverse=False) == 0
        attention_mask[is_leading_pad] = 0
        if prepend_bos and tokenizer.bos_token_id == tokenizer.pad_token_id:
            pad_bos_positions = is_leading_pad.sum(-1) - 1
            attention_mask[torch.arange(attention_mask.shape[0]), pad_bos_positions] = 1
    return attention_mask


def repeat_along_head_dimension(tensor: torch.Tensor, n_heads: int, clone_tensor: bool = True) -> torch.Tensor:
    """[batch, pos, d_model] -> [batch, pos, n_heads, d_model]."""
    repeated = tensor.unsqueeze(-2).expand(*tensor.shape[:-1], n_heads, tensor.shape[-1])
    return repeated.clone() if clone_tensor else repeated


def get_nested_attr(obj, attr_str: str):
    for attr in attr_str.split("."):
        obj = getattr(obj, attr)
    return obj


def set_nested_attr(obj, attr_str: str, value) -> None:
    attrs = attr_str.split(".")
    for attr in attrs[:-1]:
        obj = getattr(obj, attr)
    setattr(obj, attrs[-1], value)


def _rprint(text: str) -> None:
    try:
        from rich import print as rprint
    except ImportError:  # pragma: no cover
        print(re.sub(r"\[/?b\]", "", text))
        return
    rprint(text)


def test_prompt(prompt: str, answer, model, prepend_space_to_answer: bool = True, print_details: bool = True,
                prepend_bos=USE_DEFAULT_VALUE, top_k: int = 10) -> None:
    """Prints the prompt's and answer's tokens, the answer's rank / logit / probability at
    each answer position and the model's top_k predictions there (TL's test_prompt)."""
    answers = [answer] if isinstance(answer, str) else answer
    n_answers = len(answers)
    using_multiple_answers = n_answers > 1
    if prepend_space_to_answer:
        answers = [answer if answer.startswith(" ") else " " + answer for answer in answers]
    prompt_tokens = model.to_tokens(prompt, prepend_bos=prepend_bos)
    answer_tokens = model.to_tokens(answers, prepend_bos=False)
    if using_multiple_answers:
        answer_tokens = answer_tokens[:, :1]
    prompt_tokens = prompt_tokens.repeat(answer_tokens.shape[0], 1)
    tokens = torch.cat((prompt_tokens, answer_tokens), dim=1)
    prompt_str_tokens = model.to_str_tokens(prompt, prepend_bos=prepend_bos)
    answer_str_tokens_list = [model.to_str_tokens(answer, prepend_bos=False) for answer in answers]
    prompt_length = len(prompt_str_tokens)
    answer_length = 1 if using_multiple_answers else len(answer_str_tokens_list[0])
    if print_details:
        print("Tokenized prompt:", prompt_str_tokens)
        if using_multiple_answers:
            print("Tokenized answers:", answer_str_tokens_list)
        else:
            print("Tokenized answer:", answer_str_tokens_list[0])
    logits = model(tokens)
    probs = logits.softmax(dim=-1)
    answer_ranks = []
    for index in range(prompt_length, prompt_length + answer_length):
        answer_tokens = tokens[:, index]
        answer_str_tokens = [a[index - prompt_length] for a in answer_str_tokens_list]
        token_probs = probs[:, index - 1]
        sorted_token_probs, sorted_token_positions = token_probs.sort(descending=True)
        answer_token_ranks = sorted_token_positions.argsort(-1)[range(n_answers), answer_tokens.cpu()].tolist()
        answer_ranks.append([(answer_str_token, answer_token_rank) for answer_str_token, answer_token_rank
                             in zip(answer_str_tokens, answer_token_ranks)])
        if print_details:
            _rprint(f"Performance on answer token{'s' if n_answers > 1 else ''}:\n" + "\n".join(
                [f"[b]Rank: {answer_token_ranks[i]: <8} Logit: {logits[i, index - 1, answer_tokens[i]].item():5.2f} "
                 f"Prob: {token_probs[i, answer_tokens[i]].item():6.2%} Token: |{answer_str_tokens[i]}|[/b]"
                 for i in range(n_answers)]))
            for i in range(top_k):
                print(f"Top {i}th token. Logit: {logits[0, index - 1, sorted_token_positions[0, i]].item():5.2f} "
                      f"Prob: {sorted_token_probs[0, i].item():6.2%} Token: "
                      f"|{model.to_string(sorted_token_positions[0, i])}|")
    if not using_multiple_answers:
        single_answer_ranks = [r[0] for r in answer_ranks]
        _rprint(f"[b]Ranks of the answer tokens:[/b] {single_answer_ranks}")
    else:
        _rprint(f"[b]Ranks of the answer tokens:[/b] {answer_ranks}")


test_prompt.__test__ = False  # not a pytest test


def token_ids(tokens, what: str = "tokens") -> list:
    """An int, a list of ints or a 0/1-d integer tensor as a list of ids."""
    if isinstance(tokens, torch.Tensor):
        if tokens.is_floating_point() or tokens.dim() > 1:
            raise ValueError(f"{what}: expected an integer id or a [batch] tensor of ids, got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        return [int(x) for x in tokens.reshape(-1).tolist()]
    if isinstance(tokens, (int, np.integer)):
        return [int(tokens)]
    if isinstance(tokens, (list, tuple)) and all(isinstance(x, (int, np.integer)) for x in tokens):
        return [int(x) for x in tokens]
    raise TypeError(f"{what}: expected an int, a list of ints or an integer tensor, not {type(tokens).__name__}")
