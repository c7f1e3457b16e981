"""mechlens against TransformerLens 2.10.0 on TL-style scripts (tl_compat/scripts.py): the
same notebook-style code (tokens, forward and loss, run_with_cache and the ActivationCache
methods, hooks that edit, backward hooks, weights and FactoredMatrix circuits, patching,
head detection, generation, utils) runs with `transformer_lens` (the reference environment,
../shared/reference) and with "transformer_lens" replaced by "mechlens", on the golden tiny
models (../shared/golden; gpt2 with a cut GPT-2 BPE tokenizer, llama_sp with the golden
SentencePiece model), unprocessed, processed and two more flag sets; every output must agree
(values to 1e-4, shapes, dtypes, types, strings and labels exactly).

The two sides run as two subprocesses side by side. TL's outputs are kept in a cache keyed
by the harness's source and TL's version (MECHLENS_TL_COMPAT_CACHE, default under the temp
folder), so only the first run pays for TL. `python3 tl_compat/compare.py TL.pt MECHLENS.pt`
prints every difference of two saved runs (run_side.py writes them)."""
import hashlib
import os
import subprocess
import sys
import tempfile

import pytest
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from tl_compat import compare, folders  # noqa: E402

REFERENCE = folders.reference_dir()
GOLDEN = folders.golden_dir()
pytestmark = pytest.mark.skipif(
    not REFERENCE or not GOLDEN,
    reason=("TL-compatibility harness skipped: "
            + ("../shared/reference (TransformerLens 2.10.0 reference environment) is absent; " if not REFERENCE
               else "") + ("../shared/golden (the golden tiny models) is absent" if not GOLDEN else "")))

HARNESS = os.path.join(HERE, "tl_compat")


def _script_names():
    """The scripts' names, read from scripts.py (no import: collection must not need TL)."""
    names, pending = [], False
    for line in open(os.path.join(HARNESS, "scripts.py")):
        if line.startswith("@script"):
            pending = True
        elif pending and line.startswith("def "):
            names.append(line[4:line.index("(")])
            pending = False
    return names


def _key() -> str:
    h = hashlib.sha256()
    for f in sorted(os.listdir(HARNESS)):
        if f.endswith(".py"):
            h.update(f.encode() + open(os.path.join(HARNESS, f), "rb").read())
    tl_init = os.path.join(REFERENCE, "site", "transformer_lens", "__init__.py")
    for f in (tl_init, os.path.join(GOLDEN, "manifest.json")):
        if os.path.exists(f):
            h.update(open(f, "rb").read())
    return h.hexdigest()[:20]


def _env(side: str) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE",
               PYTHONNOUSERSITE="1", MECHLENS_GOLDEN=GOLDEN)
    if side == "tl":
        env.update(PYTHONPATH=os.path.join(REFERENCE, "site"),
                   HF_HOME=os.path.join(tempfile.gettempdir(), "mechlens-reference-hf-home"),
                   HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                   HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_IMPLICIT_TOKEN="1", DISABLE_TELEMETRY="1",
                   WANDB_MODE="disabled", TOKENIZERS_PARALLELISM="false", TRANSFORMERS_VERBOSITY="error")
    else:
        import mechlens

        env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(mechlens.__file__)))
    return env


def _start(side: str, out: str, root: str, all_grad: bool = False) -> subprocess.Popen:
    env = _env(side)
    if all_grad:
        env["TL_COMPAT_ALL_GRAD"] = "1"
    return subprocess.Popen([sys.executable, os.path.join(HARNESS, "run_side.py"), side, out, root],
                            env=env, cwd=HERE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(p: subprocess.Popen, side: str, out: str) -> dict:
    stdout, stderr = p.communicate(timeout=600)
    if p.returncode != 0 or not os.path.exists(out):
        if "TL_COMPAT_IMPORT_FAILED" in stderr and side == "tl":
            pytest.skip("TL-compatibility harness skipped: the reference environment does not import "
                        "(run ../shared/reference/install.sh): " + stderr.strip().splitlines()[-2][-300:])
        raise RuntimeError(f"the {side} side of the harness failed (exit {p.returncode}):\n{stderr[-4000:]}")
    return torch.load(out)


# What a script records about autograd itself (tensor.requires_grad), which the run of every
# script with autograd on changes on purpose.
GRAD_DEPENDENT = (".grad_enabled_output", ".requires_grad")


@pytest.fixture(scope="session")
def sides(tmp_path_factory):
    """(TL's outputs, mechlens's outputs, mechlens's outputs with autograd on in every script):
    run key family/processing/script -> canonical output."""
    root = str(tmp_path_factory.mktemp("tl_compat_models"))
    cache_dir = os.environ.get("MECHLENS_TL_COMPAT_CACHE") or os.path.join(tempfile.gettempdir(),
                                                                           "mechlens-tl-compat-cache")
    os.makedirs(cache_dir, exist_ok=True)
    tl_out = os.path.join(cache_dir, f"tl-{_key()}.pt")
    folders.make_folders(root)  # once, before both sides read them
    ml_out = os.path.join(root, "mechlens.pt")
    tl_proc = None if os.path.exists(tl_out) else _start("tl", tl_out + f".{os.getpid()}.tmp", root)
    ml_proc = _start("mechlens", ml_out, root)
    # (mechlens once more, every script with autograd on, as notebooks that never call
    # torch.set_grad_enabled(False) run: in-place hook edits and the like must still work)
    ml_grad_out = os.path.join(root, "mechlens-grad.pt")
    grad_proc = _start("mechlens", ml_grad_out, root, all_grad=True)
    got = _finish(ml_proc, "mechlens", ml_out)
    got_grad = _finish(grad_proc, "mechlens", ml_grad_out)
    if tl_proc is not None:
        _finish(tl_proc, "tl", tl_out + f".{os.getpid()}.tmp")
        os.replace(tl_out + f".{os.getpid()}.tmp", tl_out)
    want = torch.load(tl_out)
    return want, got, got_grad


@pytest.mark.parametrize("script", _script_names())
def test_script_agrees_with_transformer_lens(sides, script):
    want, got, got_grad = sides
    runs = [k for k in want if k != "__timing__" and k.endswith("/" + script)]
    assert runs, f"{script}: TL ran it nowhere"
    problems = []
    for key in runs:
        if want[key][0] == "error":
            problems.append(f"{key}: the script fails on TL itself ({want[key][1]}: {want[key][2][:200]}); "
                            "fix the script")
            continue
        if key not in got:
            problems.append(f"{key}: not run on mechlens")
            continue
        for line in compare.diff(want[key], got[key], sign_free=compare.sign_free_for(key)):
            problems.append(f"{key}{line}")
        for line in compare.diff(want[key], got_grad.get(key, ("None", None)), sign_free=compare.sign_free_for(key)):
            if not line.split(":")[0].endswith(GRAD_DEPENDENT):
                problems.append(f"{key} (with autograd on){line}")
    assert not problems, "mechlens differs from TransformerLens:\n" + "\n".join(problems[:40])


def test_models_load_where_transformer_lens_loads_them(sides):
    """Each family and flag set loads on mechlens exactly where it loads on TL (TL refuses
    refactor_factored_attn_matrices with rotary embeddings; so must mechlens)."""
    want, got, _ = sides
    tl_failed = {k: v for k, v in want.items() if k.count("/") == 1 and v[0] == "error"}
    ml_failed = {k: v for k, v in got.items() if k.count("/") == 1 and v[0] == "error"}
    only_ml = {k: v for k, v in ml_failed.items() if k not in tl_failed}
    only_tl = sorted(set(tl_failed) - set(ml_failed))
    assert not only_ml, "mechlens could not load: " + "; ".join(f"{k}: {v[1]}: {v[2][:200]}"
                                                                for k, v in only_ml.items())
    assert not only_tl, f"TL refuses these, mechlens loads them: {only_tl}"
