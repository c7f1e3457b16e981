"""Shared fixtures of the Python API tests: where the golden vectors are, a safetensors
reader (the golden files' format; the `safetensors` package is not on Debian), and the
golden models loaded once per session."""
import json
import os
import struct

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.dirname(os.path.dirname(HERE))
TL_FAMILIES = ["gpt2", "gpt_neox", "llama", "qwen2", "phi3"]
# Families the golden folder has but the engine does not load yet.
NOT_YET = set()
# The small random model of the API tests (2 layers, LayerNorm, GELU MLP).
TOY_CFG = {"n_layers": 2, "d_model": 32, "n_heads": 4, "d_head": 8, "d_mlp": 64, "d_vocab": 50, "n_ctx": 16,
           "act_fn": "gelu", "normalization_type": "LN"}
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
           "I32": torch.int32, "BOOL": torch.bool, "F64": torch.float64}


def golden_dir() -> str:
    env = os.environ.get("MECHLENS_GOLDEN")
    d = env if env else os.path.join(SOURCE, "..", "shared", "golden")
    return d if os.path.isdir(d) else ""


def read_safetensors(path: str) -> dict:
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        buf = bytearray(data[base + a:base + b])
        t = torch.frombuffer(buf, dtype=_DTYPES[info["dtype"]]) if buf else torch.empty(0, dtype=_DTYPES[info["dtype"]])
        out[name] = t.reshape(info["shape"]).clone()
    return out


@pytest.fixture(scope="session")
def golden():
    d = golden_dir()
    if not d:
        pytest.skip("../shared/golden is absent (fresh clone): golden parity not checked")
    return d


_models = {}


@pytest.fixture(scope="session")
def load(golden):
    """load(family, processing) -> mechlens.HookedTransformer, cached for the session."""
    import mechlens

    def get(family: str, processing: str = "unprocessed"):
        key = (family, processing)
        if key not in _models:
            path = os.path.join(golden, family)
            try:
                _models[key] = (mechlens.HookedTransformer.from_pretrained(path) if processing == "processed"
                                else mechlens.HookedTransformer.from_pretrained_no_processing(path))
            except ValueError as e:
                if family in NOT_YET and "unknown architecture" in str(e):
                    pytest.skip(f"{family}: not supported by the engine yet ({e})")
                raise
        return _models[key]
    return get


def assert_close(got: torch.Tensor, want: torch.Tensor, tol: float, what: str) -> None:
    assert tuple(got.shape) == tuple(want.shape), f"{what}: shape {tuple(got.shape)} != {tuple(want.shape)}"
    got, want = got.double(), want.double()
    finite = torch.isfinite(want)
    assert torch.equal(torch.isfinite(got), finite), f"{what}: infinities at different places"
    if finite.any():
        err = (got[finite] - want[finite]).abs().max().item()
        assert err <= tol, f"{what}: max |diff| {err:.3g} > {tol}"
