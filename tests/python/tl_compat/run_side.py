"""Runs every TL-style script on one side and saves the outputs.

    run_side.py tl|mechlens OUT.pt FOLDERS_ROOT [script,...]

TL: run with the reference environment (source ../shared/reference/env.sh). TL_COMPAT_ALL_GRAD=1
runs every script with autograd on (default: the non-gradient scripts under torch.no_grad()).
mechlens: PYTHONPATH=build/python. The scripts' source is exec'd as it is for TL and with
"transformer_lens" replaced by "mechlens" for mechlens. Outputs are canonicalised (see
canon) so that types, not only values, are compared."""
import os
import sys
import time
import traceback

os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch  # noqa: E402

torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tl_compat import folders  # noqa: E402

PROCESSINGS = ("unprocessed", "processed")
# More from_pretrained flag sets, run with a few scripts only (name -> from_pretrained kwargs)
VARIANTS = {
    "refactor": dict(refactor_factored_attn_matrices=True),
    "no_center": dict(center_writing_weights=False, center_unembed=False, fold_value_biases=False),
}
VARIANT_SCRIPTS = ("weight_values", "factored_matrices", "forward_return_types", "cache_resid_methods",
                   "exploratory_logit_diff")


def canon(x):
    """x as nested ("kind", value) pairs that torch.save writes and compare.py reads."""
    import numpy as np

    if isinstance(x, torch.Tensor):
        return ("tensor", x.detach().cpu().clone())
    if isinstance(x, np.ndarray):
        return ("ndarray", torch.from_numpy(np.array(x)))
    if isinstance(x, (bool, np.bool_)):
        return ("bool", bool(x))
    if isinstance(x, (int, np.integer)):
        return ("int", int(x))
    if isinstance(x, (float, np.floating)):
        return ("float", float(x))
    if isinstance(x, str):
        return ("str", x)
    if x is None:
        return ("None", None)
    if isinstance(x, torch.dtype):
        return ("dtype", str(x))
    if isinstance(x, torch.Size):
        return ("list", [canon(v) for v in x])
    if isinstance(x, list):
        return ("list", [canon(v) for v in x])
    if isinstance(x, tuple):
        return ("tuple", [canon(v) for v in x])
    if isinstance(x, dict):
        return ("dict", {str(k): canon(v) for k, v in x.items()})
    return ("other", type(x).__name__, repr(x)[:200])


def load_scripts(side: str):
    src = open(os.path.join(HERE, "scripts.py")).read()
    if side == "mechlens":
        src = src.replace("transformer_lens", "mechlens")
    ns = {"__name__": f"tl_compat_scripts_{side}"}
    exec(compile(src, os.path.join(HERE, "scripts.py"), "exec"), ns)
    return ns["SCRIPTS"], ns["ONLY"], ns["GRAD"]


def run(side: str, root: str, only=None) -> dict:
    if side == "tl":
        from tl_compat import load_tl as loader
    else:
        from tl_compat import load_ml as loader
    scripts, only_runs, grad = load_scripts(side)
    fams = folders.make_folders(root)
    out = {"__timing__": {}}
    for fam, folder in fams.items():
        for proc in PROCESSINGS + tuple(VARIANTS):
            t0 = time.time()
            try:
                model = loader.load(folder, proc != "unprocessed", **VARIANTS.get(proc, {}))
            except Exception as e:  # noqa: BLE001
                out[f"{fam}/{proc}"] = ("error", type(e).__name__, str(e)[:500], traceback.format_exc()[-2000:])
                continue
            out["__timing__"][f"{fam}/{proc}/load"] = time.time() - t0
            for name, fn in scripts.items():
                if only and name not in only:
                    continue
                if name in only_runs and (fam, proc) not in only_runs[name]:
                    continue
                if proc in VARIANTS and name not in VARIANT_SCRIPTS:
                    continue
                t0 = time.time()
                torch.manual_seed(0)
                try:
                    with torch.enable_grad() if name in grad or os.environ.get("TL_COMPAT_ALL_GRAD") else torch.no_grad():
                        res = canon(fn(model))
                except Exception as e:  # noqa: BLE001
                    res = ("error", type(e).__name__, str(e)[:500], traceback.format_exc()[-2000:])
                finally:
                    try:
                        model.reset_hooks()
                    except Exception:  # noqa: BLE001
                        pass
                out[f"{fam}/{proc}/{name}"] = res
                out["__timing__"][f"{fam}/{proc}/{name}"] = time.time() - t0
    return out


IMPORT_FAILED = "TL_COMPAT_IMPORT_FAILED"


def main():
    side, dst, root = sys.argv[1], sys.argv[2], sys.argv[3]
    try:
        __import__("transformer_lens" if side == "tl" else "mechlens")
    except Exception:  # noqa: BLE001  (the environment, not the code under test)
        sys.stderr.write(traceback.format_exc())
        sys.stderr.write(f"\n{IMPORT_FAILED}\n")
        sys.exit(3)
    only = set(sys.argv[4].split(",")) if len(sys.argv) > 4 and sys.argv[4] else None
    res = run(side, root, only)
    torch.save(res, dst)


if __name__ == "__main__":
    main()
