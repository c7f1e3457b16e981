"""The techniques from Python against TransformerLens 2.10.0 (tl_techniques.*, gpt2 and
llama, unprocessed and processed): residual-stream methods of the cache, OV / QK
circuits and composition scores, head detection, per-token loss, generation, and
every get_act_patch_* grid with a Python lambda as the metric and with the named fast
path (both batched and, for one site, TL's one-forward-per-patch)."""
import json
import os

import pytest
import torch

import mechlens
from conftest import assert_close, read_safetensors

FAMILIES = ["gpt2", "llama"]
PROCESSINGS = ["unprocessed", "processed"]


def golden_case(golden, family):
    spec = json.load(open(os.path.join(golden, family, "tl_techniques.json")))
    want = read_safetensors(os.path.join(golden, family, "tl_techniques.safetensors"))
    return spec, want


def entries(spec, processing, prefix):
    return {k: v for k, v in spec["entries"].items()
            if v["processing"] == processing and k.startswith(f"{processing}.{prefix}")}


@pytest.mark.parametrize("processing", PROCESSINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_residual_stream_methods(golden, load, family, processing):
    spec, want = golden_case(golden, family)
    model = load(family, processing)
    tokens = torch.tensor(spec["inputs"]["input_ids"]["value"])
    _, cache = model.run_with_cache(tokens)
    answer, wrong = spec["inputs"]["answer_token"], spec["inputs"]["wrong_token"]
    checked = 0
    for key, e in spec["entries"].items():
        if e["processing"] != processing or not e["function"].startswith("ActivationCache."):
            continue
        fn, args = e["function"].split(".", 1)[1], dict(e["args"])
        if fn == "logit_attrs":
            stack, _ = cache.decompose_resid(layer=None, apply_ln=False, pos_slice=-1, return_labels=True)
            got = cache.logit_attrs(stack, args["tokens"], args.get("incorrect_tokens"), pos_slice=-1)
        else:
            if "neuron_slice" in args:
                args["neuron_slice"] = slice(*args["neuron_slice"])
            got, labels = getattr(cache, fn)(**args)
            assert labels == e["labels"], f"{key}: labels differ"
        assert_close(got, want[key], 1e-4, key)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("processing", PROCESSINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_circuits_and_composition(golden, load, family, processing):
    spec, want = golden_case(golden, family)
    model = load(family, processing)
    p = processing
    assert_close(model.OV.S, want[f"{p}.OV.S"], 1e-4, "OV.S")
    assert_close(model.QK.S, want[f"{p}.QK.S"], 1e-4, "QK.S")
    assert_close(model.OV[0, 0].AB, want[f"{p}.OV.L0H0.AB"], 1e-4, "OV[0,0].AB")
    assert_close(model.QK[0, 0].AB, want[f"{p}.QK.L0H0.AB"], 1e-4, "QK[0,0].AB")
    for name in ("OV", "QK"):
        eig = getattr(model, name)[0, 0].eigenvalues
        # Same multiset of eigenvalues (LAPACK's order is not part of the contract).
        got = sorted(zip(eig.real.tolist(), eig.imag.tolist()))
        ref = sorted(zip(want[f"{p}.{name}.L0H0.eigenvalues.real"].tolist(),
                         want[f"{p}.{name}.L0H0.eigenvalues.imag"].tolist()))
        for (gr, gi), (rr, ri) in zip(got, ref):
            assert abs(gr - rr) < 1e-3 and abs(gi - ri) < 1e-3, f"{name} eigenvalues {got} vs {ref}"
    for mode in ("Q", "K", "V"):
        assert_close(model.all_composition_scores(mode), want[f"{p}.all_composition_scores.{mode}"], 1e-4,
                     f"composition {mode}")


@pytest.mark.parametrize("processing", PROCESSINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_head_detector_loss_and_generate(golden, load, family, processing):
    spec, want = golden_case(golden, family)
    model = load(family, processing)
    p = processing
    seq = torch.tensor(spec["inputs"]["repeated_sequence"]["tokens"])
    hd = mechlens.head_detector
    for name in hd.HEAD_NAMES:
        pattern = getattr(hd, f"get_{name}_detection_pattern")(seq)
        assert_close(pattern, want[f"{p}.detection_pattern.{name}"], 0, f"{name} pattern")
        for variant in ("default", "exclude_bos", "abs"):
            key = f"{p}.detect_head.{name}.{variant}"
            kw = {k: v for k, v in spec["entries"][key]["args"].items() if k not in ("seq", "detection_pattern")}
            assert_close(hd.detect_head(model, seq, name, **kw), want[key], 1e-4, key)
    loss = model(seq, return_type="loss", loss_per_token=True)
    assert_close(loss, want[f"{p}.loss_per_token.repeated_sequence"], 1e-4, "loss_per_token")
    prompt = torch.tensor(spec["inputs"]["generate"]["prompt_tokens"])
    for kv in ("true", "false"):
        got = model.generate(prompt, max_new_tokens=8, use_past_kv_cache=kv == "true", prepend_bos=False,
                             do_sample=False, stop_at_eos=False, return_type="tensor", verbose=False)
        assert torch.equal(got, want[f"{p}.generate.greedy.use_past_kv_cache_{kv}"]), f"generate kv={kv}"


@pytest.mark.parametrize("processing", PROCESSINGS)
@pytest.mark.parametrize("family", FAMILIES)
def test_activation_patching_grids(golden, load, family, processing):
    spec, want = golden_case(golden, family)
    model = load(family, processing)
    p = processing
    inp = spec["inputs"]["patching"]
    clean, corrupted = torch.tensor(inp["clean_tokens"]), torch.tensor(inp["corrupted_tokens"])
    answer, wrong = spec["inputs"]["answer_token"], spec["inputs"]["wrong_token"]
    _, clean_cache = model.run_with_cache(clean)
    lam = lambda logits: logits[0, -1, answer] - logits[0, -1, wrong]  # noqa: E731 (TL's own metric)
    named = mechlens.metrics.logit_diff(answer, wrong)
    assert abs(lam(model(clean)).item() - want[f"{p}.patching.clean_metric"].item()) < 1e-4
    assert abs(named(model(corrupted)).item() - want[f"{p}.patching.corrupted_metric"].item()) < 1e-4
    grids = entries(spec, p, "patching.get_act_patch_")
    assert len(grids) >= 9
    for key in grids:
        fn = getattr(mechlens.patching, key.rsplit(".", 1)[1])
        assert_close(fn(model, corrupted, clean_cache, lam), want[key], 1e-4, key + " (lambda metric)")
        assert_close(fn(model, corrupted, clean_cache, named), want[key], 1e-4, key + " (named metric)")
    key = f"{p}.patching.get_act_patch_resid_pre"
    got = mechlens.patching.get_act_patch_resid_pre(model, corrupted, clean_cache, lam, batched=False)
    assert_close(got, want[key], 1e-4, key + " (one forward per patch)")
