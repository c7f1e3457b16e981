"""TransformerLens 2.10.0 on a local Hugging Face folder (the reference README's three
workarounds: a folder name with neither "llama" nor "gemma"; get_official_model_name
accepting the folder; tokenizer_name=None in the config get_pretrained_model_config
returns, the tokenizer then passed in when the folder has one), and one for the
reference environment itself (a hashable AddedToken: see _patch)."""
import os

_patched = False


def _patch():
    global _patched
    if _patched:
        return
    import transformer_lens.loading_from_pretrained as loading

    orig_name, orig_cfg = loading.get_official_model_name, loading.get_pretrained_model_config

    def official(name):
        return name if os.path.isdir(str(name)) else orig_name(name)

    def pretrained_cfg(*a, **k):
        cfg = orig_cfg(*a, **k)
        cfg.tokenizer_name = None
        return cfg

    # Without the compiled `tokenizers`, transformers 4.40's fallback AddedToken is an
    # eq=True dataclass, so unhashable, and has no __setstate__: every slow tokenizer's
    # __init__ trips on both. Give it the two methods tokenizers' AddedToken has.
    import transformers.tokenization_utils_base as tub

    if getattr(tub.AddedToken, "__hash__", None) is None:
        tub.AddedToken.__hash__ = lambda self: hash(self.content)
    if not hasattr(tub.AddedToken, "__setstate__"):
        tub.AddedToken.__setstate__ = lambda self, state: self.__dict__.update(state)

    loading.get_official_model_name = official
    loading.get_pretrained_model_config = pretrained_cfg
    _patched = True


def load(folder: str, processed: bool, **flags):
    import torch
    import transformers
    from transformer_lens import HookedTransformer

    _patch()
    hf = transformers.AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32)
    hf.eval()
    tok = None
    if os.path.exists(os.path.join(folder, "vocab.json")):
        # add_bos_token=True: what TL's get_tokenizer_with_bos would load (it asks AutoTokenizer,
        # which wants the fast tokenizer this environment lacks).
        tok = transformers.GPT2Tokenizer.from_pretrained(folder, add_bos_token=True)
    elif os.path.exists(os.path.join(folder, "tokenizer.model")):
        tok = transformers.LlamaTokenizer.from_pretrained(folder)
    kw = dict(hf_model=hf, tokenizer=tok, device="cpu")
    if processed:
        return HookedTransformer.from_pretrained(folder, **kw, **flags)
    return HookedTransformer.from_pretrained_no_processing(folder, **kw)
