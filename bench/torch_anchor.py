#!/usr/bin/python3
"""Python anchor for `mechlens bench engine`: the same GPT-2-small-shaped forward in
plain PyTorch eager (Debian's torch 1.13), timed the same way. TransformerLens itself
cannot be installed here (no PyPI), so this is a lower bound on what TL costs: TL runs
the same ops plus its hook and einops overhead. Prints one JSON line.

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_anchor.py --batch 2 --seq 20
"""
import argparse, json, math, statistics, time

import torch
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=2)
p.add_argument("--seq", type=int, default=20)
p.add_argument("--iters", type=int, default=10)
p.add_argument("--threads", type=int, default=2)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(0)
L, D, H, DH, M, V, C = 12, 768, 12, 64, 3072, 50257, 1024
g = lambda *s, fan: torch.randn(*s) / math.sqrt(fan)
W = dict(E=torch.randn(V, D) * 0.5, P=torch.randn(C, D) * 0.5, U=g(D, V, fan=D))
blocks = [dict(Q=g(H, D, DH, fan=D), K=g(H, D, DH, fan=D), Vv=g(H, D, DH, fan=D), O=g(H, DH, D, fan=H * DH),
               i=g(D, M, fan=D), o=g(M, D, fan=M)) for _ in range(L)]
tokens = torch.randint(V, (a.batch, a.seq))
mask = torch.tril(torch.ones(a.seq, a.seq, dtype=torch.bool))


def ln(x):
    x = x - x.mean(-1, keepdim=True)
    return x / (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()


def forward(cache=None):
    keep = (lambda n, t: cache.__setitem__(n, t)) if cache is not None else (lambda n, t: None)
    x = W["E"][tokens] + W["P"][: a.seq]
    for l, b in enumerate(blocks):
        keep(f"{l}.resid_pre", x)
        h = ln(x)
        q = torch.einsum("bpd,hdk->bphk", h, b["Q"]); k = torch.einsum("bpd,hdk->bphk", h, b["K"])
        v = torch.einsum("bpd,hdk->bphk", h, b["Vv"])
        s = torch.einsum("bqhk,bphk->bhqp", q, k) / 8.0
        s = s.masked_fill(~mask, float("-inf")); pat = s.softmax(-1)
        z = torch.einsum("bhqp,bphk->bqhk", pat, v)
        attn = torch.einsum("bqhk,hkd->bqd", z, b["O"])
        for n, t in (("q", q), ("k", k), ("v", v), ("scores", s), ("pattern", pat), ("z", z), ("attn_out", attn)):
            keep(f"{l}.{n}", t)
        x = x + attn
        pre = ln(x) @ b["i"]; post = F.gelu(pre, approximate="tanh")
        keep(f"{l}.pre", pre); keep(f"{l}.post", post)
        x = x + post @ b["o"]
    return ln(x) @ W["U"]


def median_ms(fn):
    for _ in range(2):
        fn()
    ts = []
    for _ in range(a.iters):
        t = time.perf_counter(); fn(); ts.append((time.perf_counter() - t) * 1000)
    return statistics.median(ts)


with torch.no_grad():
    fwd = median_ms(forward)
    cache_all = median_ms(lambda: forward({}))
print(json.dumps({"bench": "torch_anchor", "torch": torch.__version__, "batch": a.batch, "seq": a.seq,
                  "threads": a.threads, "forward_ms": fwd, "cache_all_ms": cache_all}))
