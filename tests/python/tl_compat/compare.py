"""Compares two sides' canonical outputs (run_side.canon): kinds (tensor / list / str /
int ...), tensor dtypes and shapes, values to TOL, strings and labels exactly.

    compare.py TL.pt MECHLENS.pt [key-substring]   prints every difference
"""
import sys

import torch

ATOL = 1e-4
RTOL = 1e-4
# Outputs whose columns are singular vectors, so their signs are arbitrary: after
# refactor_factored_attn_matrices, W_V = U S and W_O = Vh^T, and the sign of each singular
# vector pair follows rounding in the processed weights (TL's and mechlens's differ by ~1e-7).
SIGN_FREE = {"refactor": (".W_V", ".W_O", ".OV.A", ".OV.B", ".blocks1.attn.W_Q", ".blocks1.attn.W_K", ".W_Q",
                          ".W_K", ".QK.A", ".QK.B", ".b_Q", ".b_K", ".corner", ".l1h2_AB", ".manual")}


def diff(want, got, path="", out=None, limit=20, sign_free=()):
    """Differences between want (TL) and got (mechlens), as strings. Tensors at paths ending
    in one of sign_free are compared by absolute value."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    kw, kg = want[0], got[0]
    if kw == "error" or kg == "error":
        if kw != kg:
            out.append(f"{path}: TL {'raised ' + want[1] + ': ' + want[2] if kw == 'error' else kw}, mechlens "
                       f"{'raised ' + got[1] + ': ' + got[2] if kg == 'error' else kg}"
                       + ("\n" + got[3] if kg == "error" else ""))
        return out
    if kw != kg:
        out.append(f"{path}: TL gives {kw} {_short(want)}, mechlens {kg} {_short(got)}")
        return out
    if kw in ("tensor", "ndarray"):
        a, b = want[1], got[1]
        if a.dtype != b.dtype:
            out.append(f"{path}: dtype TL {a.dtype}, mechlens {b.dtype}")
        if tuple(a.shape) != tuple(b.shape):
            out.append(f"{path}: shape TL {tuple(a.shape)}, mechlens {tuple(b.shape)}")
            return out
        if a.numel() == 0:
            return out
        if a.dtype == torch.bool or not (a.is_floating_point() or b.is_floating_point()):
            if not torch.equal(a.long(), b.long()):
                n = int((a.long() != b.long()).sum())
                out.append(f"{path}: {n} of {a.numel()} values differ (TL {_head(a)} mechlens {_head(b)})")
            return out
        a, b = a.double(), b.double()
        if sign_free and path.endswith(tuple(sign_free)):
            a, b = a.abs(), b.abs()
        fa, fb = torch.isfinite(a), torch.isfinite(b)
        if not torch.equal(fa, fb) or not torch.equal(a[~fa], b[~fb]):
            out.append(f"{path}: infinities / NaNs at different places")
            return out
        if fa.any():
            err = (a[fa] - b[fa]).abs()
            bad = err > ATOL + RTOL * a[fa].abs()
            if bad.any():
                out.append(f"{path}: max |diff| {err.max().item():.3g} ({int(bad.sum())} of {a.numel()} values; "
                           f"TL {_head(want[1])} mechlens {_head(got[1])})")
        return out
    if kw in ("list", "tuple"):
        if len(want[1]) != len(got[1]):
            out.append(f"{path}: {kw} of {len(want[1])} in TL, {len(got[1])} in mechlens "
                       f"(TL {_short(want)} mechlens {_short(got)})")
            return out
        for i, (a, b) in enumerate(zip(want[1], got[1])):
            diff(a, b, f"{path}[{i}]", out, limit, sign_free)
        return out
    if kw == "dict":
        ka, kb = list(want[1]), list(got[1])
        if set(ka) != set(kb):
            out.append(f"{path}: keys only in TL {sorted(set(ka) - set(kb))[:8]}, only in mechlens "
                       f"{sorted(set(kb) - set(ka))[:8]}")
        elif ka != kb and path.endswith(("shapes", "stored")):
            out.append(f"{path}: key order differs")
        for k in ka:
            if k in got[1]:
                diff(want[1][k], got[1][k], f"{path}.{k}", out, limit, sign_free)
        return out
    if kw == "float":
        a, b = want[1], got[1]
        if not (abs(a - b) <= ATOL + RTOL * abs(a) or (a != a and b != b) or a == b):
            out.append(f"{path}: TL {a!r}, mechlens {b!r}")
        return out
    if kw == "other":
        if want[1] != got[1]:
            out.append(f"{path}: TL type {want[1]}, mechlens type {got[1]}")
        return out
    if want[1] != got[1]:
        out.append(f"{path}: TL {want[1]!r}, mechlens {got[1]!r}")
    return out


def sign_free_for(key: str):
    """The SIGN_FREE paths of a run key (family/processing/script)."""
    parts = key.split("/")
    return SIGN_FREE.get(parts[1], ()) if len(parts) > 2 else ()


def _head(t, n=4):
    return t.reshape(-1)[:n].tolist()


def _short(x):
    s = repr(x[1]) if len(x) > 1 else ""
    return s[:120]


def main():
    want, got = torch.load(sys.argv[1]), torch.load(sys.argv[2])
    sub = sys.argv[3] if len(sys.argv) > 3 else ""
    n_bad = 0
    for key in want:
        if key == "__timing__" or sub not in key:
            continue
        if key not in got:
            print(f"== {key}: not run on mechlens")
            continue
        d = diff(want[key], got[key], sign_free=sign_free_for(key))
        if d:
            n_bad += 1
            print(f"== {key}")
            for line in d:
                print("   " + line)
    print(f"{n_bad} script runs differ")


if __name__ == "__main__":
    main()
