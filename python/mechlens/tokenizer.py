"""model.tokenizer: the C++ tokenizer behind the part of Hugging Face's tokenizer API that
TransformerLens scripts use (encode / decode / batch_decode / __call__, bos / eos / pad
tokens and ids, padding_side, convert_ids_to_tokens, vocab_size), with the conventions of
the tokenizer TL would have loaded:

* byte-level BPE (GPT-2, GPT-NeoX): transformers' GPT2Tokenizer as TL sets it up
  (add_bos_token=True, pad = eos when the folder names none, clean_up_tokenization_spaces
  from tokenizer_config.json, else True);
* SentencePiece (LLaMA): transformers' LlamaTokenizer (legacy / add_prefix_space /
  clean_up_tokenization_spaces from tokenizer_config.json, else its defaults).

The C++ tokenizer itself (what mechlens's C++ techniques take) is .raw.
"""
import json
import os
from typing import List, Optional, Sequence, Union

import torch

_SPIECE = "\u2581"


def _ids(x) -> List[int]:
    if isinstance(x, torch.Tensor):
        return [int(v) for v in x.reshape(-1).tolist()]
    try:
        import numpy as np

        if isinstance(x, np.ndarray):
            return [int(v) for v in x.reshape(-1).tolist()]
    except ImportError:  # pragma: no cover
        pass
    if isinstance(x, int):
        return [x]
    return [int(v) for v in x]


def _clean_up_tokenization(s: str) -> str:
    """transformers' PreTrainedTokenizerBase.clean_up_tokenization."""
    return (s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",").replace(" ' ", "'")
            .replace(" n't", "n't").replace(" 'm", "'m").replace(" 's", "'s").replace(" 've", "'ve")
            .replace(" 're", "'re"))


def _bytes_to_unicode() -> dict:
    """GPT-2's byte -> printable character map (byte-level BPE pieces are written in it)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\xa1"), ord("\xac") + 1)) + \
        list(range(ord("\xae"), ord("\xff") + 1))
    cs = bs[:]
    n = 0
    for b in range(2 ** 8):
        if b not in bs:
            bs.append(b)
            cs.append(2 ** 8 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


_BYTE_DECODER = {c: b for b, c in _bytes_to_unicode().items()}


def _token_text(v) -> Optional[str]:
    if isinstance(v, str):
        return v
    if isinstance(v, dict) and isinstance(v.get("content"), str):
        return v["content"]
    return None


class Tokenizer:
    """A Hugging Face-like view of mechlens's C++ tokenizer (see the module docstring)."""

    def __init__(self, raw, folder: str = ""):
        self.raw = raw
        self.name_or_path = folder
        self.kind = raw.kind
        cfg = {}
        path = os.path.join(folder, "tokenizer_config.json") if folder else ""
        if path and os.path.exists(path):
            try:
                cfg = json.load(open(path))
            except (OSError, ValueError):
                cfg = {}
        self.init_kwargs = cfg
        sp = self.kind == "sentencepiece"
        self.legacy = bool(cfg.get("legacy", True)) if sp else False
        self.add_prefix_space = bool(cfg.get("add_prefix_space", True)) if sp else bool(cfg.get("add_prefix_space",
                                                                                                 False))
        self.clean_up_tokenization_spaces = bool(cfg.get("clean_up_tokenization_spaces", not sp))
        self.padding_side = cfg.get("padding_side", "right") if cfg.get("padding_side") in ("left", "right") \
            else "right"
        self.bos_token_id = raw.bos_id if raw.bos_id >= 0 else None
        self.eos_token_id = raw.eos_id if raw.eos_id >= 0 else None
        # TL: eos defaults to <|endoftext|>, pad to eos, bos to eos
        if self.eos_token_id is None:
            self.eos_token_id = self._single_id("<|endoftext|>")
        if self.bos_token_id is None:
            self.bos_token_id = self.eos_token_id
        pad = _token_text(cfg.get("pad_token"))
        self.pad_token_id = self._single_id(pad) if pad else None
        if self.pad_token_id is None:
            self.pad_token_id = self.eos_token_id
        unk = _token_text(cfg.get("unk_token")) or ("<unk>" if sp else None)
        self.unk_token_id = self._single_id(unk) if unk else None
        self.add_bos_token = True

    # ---- vocabulary
    def _single_id(self, text: Optional[str]) -> Optional[int]:
        if not text:
            return None
        for i in range(self.raw.vocab_size):
            if self.raw.piece(i) == text:
                return i
        return None

    @property
    def vocab_size(self) -> int:
        return self.raw.vocab_size

    def __len__(self) -> int:
        return self.raw.vocab_size

    def _piece_text(self, i: Optional[int]) -> Optional[str]:
        return None if i is None else self.raw.piece(int(i))

    @property
    def bos_token(self) -> Optional[str]:
        return self._piece_text(self.bos_token_id)

    @property
    def eos_token(self) -> Optional[str]:
        return self._piece_text(self.eos_token_id)

    @property
    def pad_token(self) -> Optional[str]:
        return self._piece_text(self.pad_token_id)

    @property
    def unk_token(self) -> Optional[str]:
        return self._piece_text(self.unk_token_id)

    @property
    def all_special_ids(self) -> List[int]:
        out = []
        for i in (self.bos_token_id, self.eos_token_id, self.unk_token_id, self.pad_token_id):
            if i is not None and i not in out:
                out.append(i)
        return out

    @property
    def all_special_tokens(self) -> List[str]:
        return [self.raw.piece(i) for i in self.all_special_ids]

    def get_vocab(self) -> dict:
        return {self.raw.piece(i): i for i in range(self.raw.vocab_size)}

    @property
    def vocab(self) -> dict:
        return self.get_vocab()

    def convert_ids_to_tokens(self, ids, skip_special_tokens: bool = False):
        if isinstance(ids, int):
            return self.raw.piece(ids)
        special = set(self.all_special_ids) if skip_special_tokens else set()
        return [self.raw.piece(i) for i in _ids(ids) if i not in special]

    def convert_tokens_to_ids(self, tokens):
        vocab = self.get_vocab()
        if isinstance(tokens, str):
            return vocab.get(tokens, self.unk_token_id)
        return [vocab.get(t, self.unk_token_id) for t in tokens]

    # ---- encoding
    def tokenize(self, text: str) -> List[str]:
        return [self.raw.piece(i) for i in self.raw.encode(text, False)]

    def encode(self, text: str, add_special_tokens: bool = True, **kwargs) -> List[int]:
        """Ids of text, with BOS first (add_special_tokens), as TL's tokenizer encodes."""
        return list(self.raw.encode(text, bool(add_special_tokens) and self.bos_token_id is not None))

    def __call__(self, text: Union[str, Sequence[str]], return_tensors: Optional[str] = None,
                 padding: Union[bool, str] = False, truncation: bool = False, max_length: Optional[int] = None,
                 add_special_tokens: bool = True, **kwargs) -> dict:
        batched = not isinstance(text, str)
        texts = list(text) if batched else [text]
        rows = [self.encode(t, add_special_tokens) for t in texts]
        if truncation and max_length is not None:
            rows = [r[:max_length] for r in rows]
        masks = [[1] * len(r) for r in rows]
        if padding and rows:
            n = max(len(r) for r in rows)
            pad = self.pad_token_id if self.pad_token_id is not None else 0
            side = kwargs.get("padding_side", self.padding_side)
            for i, r in enumerate(rows):
                k = n - len(r)
                if side == "left":
                    rows[i], masks[i] = [pad] * k + r, [0] * k + masks[i]
                else:
                    rows[i], masks[i] = r + [pad] * k, masks[i] + [0] * k
        if return_tensors == "pt":
            return {"input_ids": torch.tensor(rows, dtype=torch.long).reshape(len(rows), -1),
                    "attention_mask": torch.tensor(masks, dtype=torch.long).reshape(len(rows), -1)}
        if not batched:
            return {"input_ids": rows[0], "attention_mask": masks[0]}
        return {"input_ids": rows, "attention_mask": masks}

    # ---- decoding
    def _sp_pieces_to_text(self, pieces: List[str]) -> str:
        """SentencePiece's decoding of pieces (byte pieces as their bytes, "▁" as a space),
        without the dummy-prefix removal (legacy=False loads the model without it)."""
        out, pending = [], bytearray()
        for p in pieces:
            if len(p) == 6 and p.startswith("<0x") and p.endswith(">"):
                try:
                    pending.append(int(p[3:5], 16))
                    continue
                except ValueError:
                    pass
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending = bytearray()
            out.append(p.replace(_SPIECE, " "))
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        text = "".join(out)
        if self.legacy and pieces and pieces[0].startswith(_SPIECE) and text.startswith(" "):
            text = text[1:]  # the legacy model keeps add_dummy_prefix, so decoding drops it
        return text

    def _sp_decode(self, pieces: List[str]) -> str:
        """LlamaTokenizer.convert_tokens_to_string."""
        if not pieces:
            return ""
        pieces = list(pieces)
        if pieces[0].startswith(_SPIECE) and self.add_prefix_space:
            pieces[0] = pieces[0][1:]
        specials = set(self.all_special_tokens)
        cur, out, prev_special = [], "", False
        for i, tok in enumerate(pieces):
            if tok in specials:
                if not prev_special and i != 0 and self.legacy:
                    out += " "
                out += self._sp_pieces_to_text(cur) + tok
                prev_special, cur = True, []
            else:
                if prev_special and i == 1 and self.add_prefix_space and not tok.startswith(_SPIECE):
                    out += " "
                cur.append(tok)
                prev_special = False
        return out + self._sp_pieces_to_text(cur)

    def _bpe_decode(self, ids: List[int]) -> str:
        """GPT2Tokenizer.convert_tokens_to_string: the pieces' bytes as UTF-8, a broken
        sequence (a token ending inside a character) as U+FFFD."""
        pieces = [self.raw.piece(i) for i in ids]
        text = "".join(pieces)
        if all(c in _BYTE_DECODER for c in text):
            return bytearray(_BYTE_DECODER[c] for c in text).decode("utf-8", errors="replace")
        out = []
        for i, p in zip(ids, pieces):  # pieces outside the byte alphabet (added tokens): as written
            if all(c in _BYTE_DECODER for c in p):
                out.append(bytearray(_BYTE_DECODER[c] for c in p))
            else:
                out.append(p.encode("utf-8"))
        return b"".join(bytes(b) for b in out).decode("utf-8", errors="replace")

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: Optional[bool] = None,
               **kwargs) -> str:
        ids = _ids(token_ids)
        if skip_special_tokens:
            special = set(self.all_special_ids)
            ids = [i for i in ids if i not in special]
        if self.kind == "sentencepiece":
            text = self._sp_decode([self.raw.piece(i) for i in ids])
        else:
            text = self._bpe_decode(ids)
        clean = self.clean_up_tokenization_spaces if clean_up_tokenization_spaces is None \
            else clean_up_tokenization_spaces
        return _clean_up_tokenization(text) if clean else text

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: Optional[bool] = None, **kwargs) -> List[str]:
        return [self.decode(s, skip_special_tokens, clean_up_tokenization_spaces) for s in sequences]

    def str_token(self, token_id: int) -> str:
        """One token as TL's to_str_tokens shows it (tokenizer.batch_decode of a 1-d tensor
        decodes each id on its own; for SentencePiece that is the piece without its first
        "▁" and with "▁" as a space, byte pieces as written)."""
        if self.kind == "sentencepiece":
            p = self.raw.piece(int(token_id))
            if p.startswith(_SPIECE) and self.add_prefix_space:
                p = p[1:]
            return p.replace(_SPIECE, " ")
        return self._bpe_decode([int(token_id)])

    def __repr__(self) -> str:
        return (f"mechlens.Tokenizer({self.kind}, vocab_size={self.vocab_size}, bos={self.bos_token_id}, "
                f"eos={self.eos_token_id}, pad={self.pad_token_id}, padding_side={self.padding_side!r})")
