"""The Python API's overhead, measured side by side with the CLI in one session.

Runs `mechlens bench engine` and `mechlens bench patching` (the C++ numbers), then the
same work through `import mechlens` on the same random-weight model (same preset, same
seed): forward, run_with_cache (all hooks / one hook), and the resid_pre patching sweep
(clean run_with_cache + get_act_patch_resid_pre with a named metric, and with a Python
lambda metric). Prints one JSON line with the ratios Python / CLI. With --tl, also runs
TransformerLens itself (../shared/reference/baselines/tl_bench.py, same shape, same
session) and adds the ratios mechlens-from-Python / TransformerLens.

    PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py [--config gpt2-small] [--tl]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def median_ms(fn, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    t = []
    for _ in range(iters):
        a = time.perf_counter()
        fn()
        t.append((time.perf_counter() - a) * 1e3)
    return statistics.median(t)


def cli(binary: str, *args: str) -> dict:
    out = subprocess.run([binary, "bench", *args, "--json"], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="gpt2-small")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=20)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--patch-iters", type=int, default=3)
    ap.add_argument("--binary", default=os.path.join(ROOT, "build", "mechlens"))
    ap.add_argument("--tl", action="store_true", help="also time TransformerLens (../shared/reference)")
    a = ap.parse_args()
    threads = int(os.environ.get("MECHLENS_THREADS", os.cpu_count() or 1))
    env_note = {"threads": threads, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "")}

    import mechlens

    torch.set_num_threads(threads)
    shape = ["--config", a.config, "--batch", str(a.batch), "--seq", str(a.seq)]
    c_engine = cli(a.binary, "engine", *shape, "--iters", str(a.iters))
    c_patch = cli(a.binary, "patching", *shape, "--site", "resid_pre", "--iters", str(a.patch_iters))

    model = mechlens.HookedTransformer.from_config(a.config, seed=0)
    vocab = model.cfg.d_vocab
    tokens = torch.randint(vocab, (a.batch, a.seq), generator=torch.Generator().manual_seed(1))
    one = c_engine["one_hook"]
    with torch.no_grad():
        fwd = median_ms(lambda: model(tokens), 2, a.iters)
        cache_all = median_ms(lambda: model.run_with_cache(tokens), 2, a.iters)
        cache_one = median_ms(lambda: model.run_with_cache(tokens, names_filter=one), 2, a.iters)

    clean = torch.randint(vocab, (a.batch, a.seq), generator=torch.Generator().manual_seed(2))
    corrupted = clean.clone()
    for p in (a.seq // 5, a.seq - 2):
        corrupted[:, p] = (clean[:, p] + vocab // 2) % vocab
    named = mechlens.metrics.logit_diff(7, 11)

    def sweep(metric):
        _, cache = model.run_with_cache(clean)
        return mechlens.patching.get_act_patch_resid_pre(model, corrupted, cache, metric)

    lam = lambda logits: (logits[:, -1, 7] - logits[:, -1, 11]).mean()  # noqa: E731
    py_named_s = median_ms(lambda: sweep(named), 0, a.patch_iters) / 1e3
    py_lambda_s = median_ms(lambda: sweep(lam), 0, 1) / 1e3
    grid_named, grid_lambda = sweep(named), sweep(lam)
    cli_patch_s = c_patch["sweep_s"] + c_patch["setup_s"]
    tl = {}
    if a.tl:
        ref = os.path.join(ROOT, "..", "shared", "reference")
        env = dict(os.environ, PYTHONPATH=os.path.join(ref, "site"), PYTHONNOUSERSITE="1", HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", TQDM_DISABLE="1")
        out = subprocess.run([sys.executable, os.path.join(ref, "baselines", "tl_bench.py"), "--preset", a.config,
                              "--batch", str(a.batch), "--seq", str(a.seq), "--threads", str(threads)],
                             check=True, capture_output=True, text=True, env=env)
        t = json.loads(out.stdout.strip().splitlines()[-1])
        tl = {"tl_forward_ms": t["forward_ms"], "tl_run_with_cache_all_ms": t["run_with_cache_all_ms"],
              "tl_patch_sweep_s": t["patch_sweep_s"],
              "py_over_tl_forward": fwd / t["forward_ms"],
              "py_over_tl_run_with_cache_all": cache_all / t["run_with_cache_all_ms"],
              "py_lambda_over_tl_patch": py_lambda_s / t["patch_sweep_s"],
              "py_named_over_tl_patch": py_named_s / t["patch_sweep_s"]}

    print(json.dumps({
        "bench": "python_overhead", "config": a.config, "batch": a.batch, "seq": a.seq, **env_note,
        "cli_forward_ms": c_engine["forward_ms"], "py_forward_ms": fwd,
        "forward_ratio": fwd / c_engine["forward_ms"],
        "cli_run_with_cache_all_ms": c_engine["run_with_cache_all_ms"], "py_run_with_cache_all_ms": cache_all,
        "run_with_cache_all_ratio": cache_all / c_engine["run_with_cache_all_ms"],
        "cli_run_with_cache_one_ms": c_engine["run_with_cache_one_ms"], "py_run_with_cache_one_ms": cache_one,
        "run_with_cache_one_ratio": cache_one / c_engine["run_with_cache_one_ms"],
        "cli_patch_setup_plus_sweep_s": cli_patch_s, "py_patch_named_s": py_named_s,
        "patch_named_ratio": py_named_s / cli_patch_s,
        "py_patch_lambda_s": py_lambda_s, "patch_lambda_over_named": py_lambda_s / py_named_s,
        "lambda_vs_named_max_abs_diff": (grid_named - grid_lambda).abs().max().item(), **tl,
    }))


if __name__ == "__main__":
    sys.exit(main())
