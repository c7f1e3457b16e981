"""The model folders both sides load. The golden folders have no tokenizer; gpt2's
config names id 499 as BOS / EOS, so a GPT-2 byte-level BPE cut to its first 499 ids
(256 bytes + the first 243 merges, whose ids are 256 + rank in GPT-2's vocabulary) plus
<|endoftext|> = 499 fits its 500-token vocabulary exactly. It is written as vocab.json +
merges.txt (transformers' slow GPT2Tokenizer reads them; so does mechlens)."""
import json
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
SHARED = os.path.join(SOURCE, "..", "shared")

# family -> the tokenizer its folder gets: "bpe" (the cut GPT-2 one), "sp" (the golden tiny
# SentencePiece model, LLaMA's conventions) or None (token ids only). "llama_sp" is the golden
# llama with its vocabulary grown to the SentencePiece model's 800 pieces (new rows seeded).
FAMILIES = {"gpt2": "bpe", "gpt_neox": None, "llama": None, "llama_sp": "sp"}


def golden_dir() -> str:
    d = os.environ.get("MECHLENS_GOLDEN") or os.path.join(SHARED, "golden")
    return os.path.abspath(d) if os.path.isdir(d) else ""


def reference_dir() -> str:
    d = os.environ.get("MECHLENS_REFERENCE") or os.path.join(SHARED, "reference")
    return os.path.abspath(d) if os.path.isdir(os.path.join(d, "site", "transformer_lens")) else ""


def _write_tokenizer(dst: str, golden: str, n_vocab: int) -> None:
    src = json.load(open(os.path.join(golden, "tokenizer", "gpt2_tokenizer_json", "tokenizer.json")))
    vocab, merges = src["model"]["vocab"], src["model"]["merges"]
    keep = {tok: i for tok, i in vocab.items() if i < n_vocab - 1}
    keep["<|endoftext|>"] = n_vocab - 1
    n_merges = n_vocab - 1 - 256
    with open(os.path.join(dst, "vocab.json"), "w") as f:
        json.dump(keep, f, ensure_ascii=False)
    with open(os.path.join(dst, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for m in merges[:n_merges]:
            f.write((m if isinstance(m, str) else " ".join(m)) + "\n")
    tok_cfg = {"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>",
               "unk_token": "<|endoftext|>", "add_prefix_space": False, "model_max_length": 64}
    with open(os.path.join(dst, "tokenizer_config.json"), "w") as f:
        json.dump(tok_cfg, f)


_ST_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64"}


def read_safetensors(path: str) -> dict:
    import torch

    data = open(path, "rb").read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[8 + n + a:8 + n + b]), dtype=getattr(torch, _ST_DTYPES[info["dtype"]]))
        out[name] = t.reshape(info["shape"]).clone()
    return out


def write_safetensors(tensors: dict, path: str) -> None:
    import torch

    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.int64: "I64"}
    header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
    for k in sorted(tensors):
        t = tensors[k].contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[k] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def _grow_vocab(src: str, dst: str, n_vocab: int) -> None:
    """The golden model with embed_tokens / lm_head grown to n_vocab rows (N(0, 0.5^2), seeded)."""
    import torch

    sd = read_safetensors(os.path.join(src, "model.safetensors"))
    g = torch.Generator().manual_seed(1234)
    for k in ("model.embed_tokens.weight", "lm_head.weight"):
        t = sd[k]
        extra = torch.randn(n_vocab - t.shape[0], t.shape[1], generator=g) * (0.5 if "embed" in k else t.std())
        sd[k] = torch.cat([t, extra.to(t.dtype)], 0)
    write_safetensors(sd, os.path.join(dst, "model.safetensors"))
    cfg = json.load(open(os.path.join(src, "config.json")))
    cfg["vocab_size"] = n_vocab
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


def make_folders(root: str) -> dict:
    """Copies the golden folders under root (names with neither "llama" nor "gemma", as
    TL's loader needs) and adds the tokenizer FAMILIES names. family -> folder."""
    golden = golden_dir()
    out = {}
    for fam, tok in FAMILIES.items():
        dst = os.path.join(root, "m_" + fam.replace("llama", "lm"))
        src = os.path.join(golden, fam.replace("_sp", ""))
        if not os.path.isdir(dst):
            tmp = dst + f".tmp{os.getpid()}"
            os.makedirs(tmp, exist_ok=True)
            shutil.copy(os.path.join(src, "generation_config.json"), tmp)
            if tok == "sp":
                sp = os.path.join(golden, "tokenizer", "sp_tiny")
                for f in ("tokenizer.model", "tokenizer_config.json"):
                    shutil.copy(os.path.join(sp, f), tmp)
                _grow_vocab(src, tmp, 800)
            else:
                for f in ("config.json", "model.safetensors"):
                    shutil.copy(os.path.join(src, f), tmp)
            if tok == "bpe":
                cfg = json.load(open(os.path.join(src, "config.json")))
                _write_tokenizer(tmp, golden, cfg["vocab_size"])
            try:
                os.replace(tmp, dst)
            except OSError:  # made meanwhile by the other side
                shutil.rmtree(tmp, ignore_errors=True)
        out[fam] = dst
    return out
