"""run_with_cache from Python against TransformerLens 2.10.0's own caches: every hook of
every TL family, unprocessed and processed, plus logits and loss."""
import json
import os

import pytest
import torch

from conftest import TL_FAMILIES, assert_close, read_safetensors


@pytest.mark.parametrize("processing", ["unprocessed", "processed"])
@pytest.mark.parametrize("family", TL_FAMILIES)
def test_run_with_cache_matches_transformer_lens(golden, load, family, processing):
    model = load(family, processing)
    tokens = read_safetensors(os.path.join(golden, family, "expected.safetensors"))["input_ids"]
    want = read_safetensors(os.path.join(golden, family, f"tl_cache_{processing}.safetensors"))
    logits, cache = model.run_with_cache(tokens)
    hooks = [k for k in want if k not in ("logits", "loss")]
    assert hooks, "the golden cache holds no hooks"
    for name in hooks:
        assert name in cache, f"{family} {processing}: {name} missing from the cache"
        assert_close(cache[name], want[name], 1e-4, f"{family} {processing} {name}")
    if processing == "processed":  # center_unembed shifts each position's logits by a constant
        assert_close(logits.log_softmax(-1), want["logits"].log_softmax(-1), 1e-4, "log_softmax(logits)")
    else:
        assert_close(logits, want["logits"], 1e-4, "logits")
    loss = model(tokens, return_type="loss")
    assert abs(loss.item() - want["loss"].item()) < 1e-5
    # TL's hook names, in TL's execution order, are exactly the model's hook points.
    order = json.load(open(os.path.join(golden, family, "tl_hook_names.json")))
    order = order[processing]
    assert set(order) <= set(model.hook_dict), sorted(set(order) - set(model.hook_dict))[:5]


def test_cache_keys_by_tl_short_names(load):
    model = load("gpt2")
    tokens = torch.tensor([[1, 2, 3, 4, 5]])
    _, cache = model.run_with_cache(tokens)
    assert torch.equal(cache["resid_pre", 1], cache["blocks.1.hook_resid_pre"])
    assert torch.equal(cache["pattern", -1], cache["blocks.1.attn.hook_pattern"])
    assert torch.equal(cache["blocks.0.attn.hook_k"], cache["k", 0])
    assert torch.equal(cache["k1"], cache["blocks.1.attn.hook_k"])
    assert torch.equal(cache["scale"], cache["ln_final.hook_scale"])
    shape = cache["resid_post", 0].shape
    single = cache.remove_batch_dim()  # in place, as TL's
    assert single is cache and not single.has_batch_dim
    assert single["resid_post", 0].shape == shape[1:]


def test_names_filter_keeps_only_the_named_hooks(load):
    model = load("gpt2")
    tokens = torch.tensor([[1, 2, 3, 4, 5]])
    _, full = model.run_with_cache(tokens)
    _, some = model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_z"))
    assert sorted(some.keys()) == ["blocks.0.attn.hook_z", "blocks.1.attn.hook_z"]
    assert torch.equal(some["z", 1], full["z", 1])
    _, one = model.run_with_cache(tokens, names_filter="blocks.0.hook_resid_post")
    assert list(one.keys()) == ["blocks.0.hook_resid_post"]


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_attention_mask_matches_transformer_lens_padded(golden, load, family):
    """forward / run_with_cache(attention_mask=...) on the golden padded batches give TL's
    logits (every slot) and each sequence's unpadded logits at its real positions; the
    masked loss is TL's lm_cross_entropy_loss with the mask."""
    path = os.path.join(golden, family, "padded.safetensors")
    if not os.path.exists(path):
        pytest.skip(f"{family} has no padded.safetensors")
    pad = read_safetensors(path)
    model = load(family)
    for side in ("left", "right"):
        ids, mask = pad[f"input_ids_{side}"], pad[f"attention_mask_{side}"]
        logits = model(ids, attention_mask=mask)
        assert_close(logits, pad[f"tl_logits_{side}"], 1e-4, f"{family} {side} vs TL")
        out, cache = model.run_with_cache(ids, attention_mask=mask)
        assert_close(out, logits, 1e-6, f"{family} {side} run_with_cache")
        assert cache["blocks.0.hook_resid_pre"].shape[1] == ids.shape[1]
        n = mask.sum(1)
        for i in range(ids.shape[0]):
            k = int(n[i])
            real = logits[i, -k:] if side == "left" else logits[i, :k]
            assert_close(real, pad[f"logits_unpadded_{i}"][0], 1e-4, f"{family} {side} row {i}")
        lp = torch.log_softmax(logits, -1)[:, :-1].gather(-1, ids[:, 1:, None])[..., 0]
        keep = (mask[:, :-1] * mask[:, 1:]).bool()
        want = -(lp * keep).sum() / keep.sum()
        got = model(ids, attention_mask=mask, return_type="loss")
        assert abs(float(got) - float(want)) < 1e-5
