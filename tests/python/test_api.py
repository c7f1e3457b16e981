"""The Python API's own contract: hooks that edit the forward pass, backward hooks that
see gradients, weights shared with the C++ model without copies, the names helpers,
checkpoints that round-trip, and bad input that raises one clear Python error."""
import pytest
import torch

import mechlens
from mechlens.utils import get_act_name

from conftest import TOY_CFG as CFG


@pytest.fixture(scope="module")
def toy():
    return mechlens.HookedTransformer.from_config(CFG, seed=1)


def tokens():
    return torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6]])


def test_get_act_name_is_transformer_lens_naming():
    assert get_act_name("resid_pre", 3) == "blocks.3.hook_resid_pre"
    assert get_act_name("pattern", 1) == "blocks.1.attn.hook_pattern"
    assert get_act_name("k6a") == "blocks.6.attn.hook_k"
    assert get_act_name("post", 2) == "blocks.2.mlp.hook_post"
    assert get_act_name("scale", 0, "ln1") == "blocks.0.ln1.hook_scale"
    assert get_act_name("scale") == "ln_final.hook_scale"
    assert get_act_name("embed") == "hook_embed"
    assert get_act_name("attn", 0) == "blocks.0.attn.hook_pattern"  # TL's aliases
    assert get_act_name("mlp_post", 1) == "blocks.1.mlp.hook_post"
    assert get_act_name("attn_logits", 1) == "blocks.1.attn.hook_attn_scores"


def test_forward_hook_edit_changes_downstream_only(toy):
    t = tokens()
    clean_logits, clean = toy.run_with_cache(t)
    seen = {}

    def zero_head(z, hook):
        seen["name"], seen["layer"] = hook.name, hook.layer()
        z[:, :, 2] = 0.0
        return z

    logits = toy.run_with_hooks(t, fwd_hooks=[(get_act_name("z", 1), zero_head)])
    assert seen == {"name": "blocks.1.attn.hook_z", "layer": 1}
    assert not torch.allclose(logits, clean_logits)
    # Layer 1's head 2 wrote z @ W_O into the residual stream; zeroing it removes exactly that.
    delta = clean["z", 1][0, :, 2] @ toy.blocks[1].attn.W_O[2]
    with toy.hooks(fwd_hooks=[(get_act_name("z", 1), zero_head)]):
        _, edited = toy.run_with_cache(t)
    assert torch.allclose(edited["resid_mid", 1][0], clean["resid_mid", 1][0] - delta, atol=1e-5)
    assert torch.equal(edited["resid_post", 0], clean["resid_post", 0])
    # the context removed the hook
    assert torch.equal(toy(t), clean_logits)


def test_hook_returning_none_keeps_activation_and_filters_select(toy):
    t = tokens()
    names = []
    logits = toy.run_with_hooks(t, fwd_hooks=[(lambda n: n.endswith("hook_resid_pre"),
                                               lambda x, hook: names.append(hook.name))])
    assert names == ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"]
    assert torch.allclose(logits, toy(t))


def test_backward_hook_sees_the_gradient(toy):
    t = tokens()
    grads = {}

    def keep(grad, hook):
        grads[hook.name] = grad.clone()

    toy.requires_grad_(True)
    try:
        with toy.hooks(bwd_hooks=[(get_act_name("resid_post", 1), keep)]):
            loss = toy(t, return_type="loss")
            loss.backward()
        g = grads["blocks.1.hook_resid_post"]
        assert g.shape == (1, t.shape[1], CFG["d_model"])
        # d loss / d resid_post[-1] has a closed form through ln_final and W_U: check it.
        _, cache = toy.run_with_cache(t)
        x = cache["resid_post", 1].detach().requires_grad_(True)
        logits = toy(x, start_at_layer=CFG["n_layers"], return_type="logits")
        ref = mechlens.utils.lm_cross_entropy_loss(logits, t)
        (ref_grad,) = torch.autograd.grad(ref, x)
        assert torch.allclose(g, ref_grad, atol=1e-6)
        assert toy.W_E.grad is not None and toy.W_E.grad.abs().sum() > 0
    finally:
        toy.requires_grad_(False)
        toy.reset_hooks()


def test_weights_are_shared_without_copies(toy):
    t = tokens()
    before = toy(t)
    W_E = toy.W_E
    assert W_E.data_ptr() == toy.W_E.data_ptr() == toy.state_dict()["embed.W_E"].data_ptr()
    assert toy.blocks[0].attn.W_Q.data_ptr() == toy.state_dict()["blocks.0.attn.W_Q"].data_ptr()
    saved = W_E[5].clone()
    with torch.no_grad():
        W_E[5] += 1.0  # token 5 is at position 4
    after = toy(t)
    with torch.no_grad():
        W_E[5] = saved
    assert torch.equal(after[:, :4], before[:, :4])
    assert not torch.allclose(after[:, 4:], before[:, 4:])
    assert torch.equal(toy(t), before)


def test_cache_tensors_share_memory_with_the_cpp_cache(toy):
    _, cache = toy.run_with_cache(tokens())
    a = cache["resid_pre", 1]
    assert a.data_ptr() == cache["blocks.1.hook_resid_pre"].data_ptr()


def test_checkpoint_round_trip(toy, tmp_path):
    t = tokens()
    toy.save(str(tmp_path / "ckpt"))
    again = mechlens.HookedTransformer.from_pretrained_no_processing(str(tmp_path / "ckpt"))
    assert torch.equal(again(t), toy(t))
    assert again.cfg.n_layers == 2 and again.cfg.d_head == 8


def test_process_weights_keeps_the_distribution(toy, tmp_path):
    toy.save(str(tmp_path / "m"))
    m = mechlens.HookedTransformer.from_pretrained_no_processing(str(tmp_path / "m"))
    t = tokens()
    before = m(t).log_softmax(-1)
    m.process_weights_()
    assert torch.allclose(m(t).log_softmax(-1), before, atol=1e-5)
    assert torch.allclose(m.W_U.mean(-1), torch.zeros(CFG["d_model"]), atol=1e-6)  # center_unembed


def test_bad_input_raises_clear_errors(toy, tmp_path):
    with pytest.raises(FileNotFoundError, match="no/such/folder"):
        mechlens.HookedTransformer.from_pretrained("no/such/folder")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{ not json")
    with pytest.raises(ValueError, match="config.json"):
        mechlens.HookedTransformer.from_pretrained(str(bad))
    with pytest.raises(ValueError, match="hook"):
        toy.run_with_cache(tokens(), names_filter="blocks.9.hook_resid_pre")
    with pytest.raises(ValueError):
        toy(torch.tensor([[1, 2, 999]]))  # token id outside the vocabulary
    with pytest.raises(ValueError):
        toy(torch.tensor([[0.5, 1.0]]))
    with pytest.raises(TypeError):
        toy.add_hook(42, lambda x, hook: x)
    with pytest.raises(ValueError, match="return_type"):
        toy(tokens(), return_type="everything")
    with pytest.raises(ValueError, match="hook"):
        toy.run_with_hooks(tokens(), fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, hook: x[:, :1])])
    with pytest.raises(ValueError, match="n_ctx|context|positions"):
        toy(torch.zeros(1, 40, dtype=torch.long))
    _, cache = toy.run_with_cache(tokens())
    with pytest.raises(TypeError):
        mechlens.patching.get_act_patch_resid_pre(toy, tokens(), {"not": "a cache"}, lambda l: l.sum())
    with pytest.raises(ValueError):
        mechlens.patching.get_act_patch_resid_pre(toy, tokens()[:, :5], cache, lambda l: l.sum())
    with pytest.raises(ValueError, match="error_measure"):
        mechlens.head_detector.detect_head(toy, tokens(), "induction_head", error_measure="max")
    # the model still works after every error
    assert toy(tokens()).shape == (1, 8, CFG["d_vocab"])


def test_python_exception_in_a_hook_propagates(toy):
    def boom(x, hook):
        raise RuntimeError("from the hook")

    with pytest.raises(RuntimeError, match="from the hook"):
        toy.run_with_hooks(tokens(), fwd_hooks=[("blocks.0.hook_resid_pre", boom)])
    assert toy(tokens()).shape[1] == 8


def test_patching_with_a_python_metric_matches_a_manual_patch(toy):
    clean = tokens()
    corrupted = clean.clone()
    corrupted[0, 3] = 7
    _, clean_cache = toy.run_with_cache(clean)
    metric = lambda logits: logits[0, -1, 2] - logits[0, -1, 3]  # noqa: E731
    grid = mechlens.patching.get_act_patch_resid_pre(toy, corrupted, clean_cache, metric)
    assert grid.shape == (2, 8)
    for layer, pos in [(0, 3), (1, 3), (1, 6), (0, 0)]:
        def put(x, hook, pos=pos, layer=layer):
            x[:, pos] = clean_cache["resid_pre", layer][:, pos]
            return x
        manual = metric(toy.run_with_hooks(corrupted, fwd_hooks=[(get_act_name("resid_pre", layer), put)]))
        assert abs(grid[layer, pos].item() - manual.item()) < 1e-5
    # attribution patching approximates it and is exact where nothing changes
    approx = mechlens.patching.attribution_patch(toy, corrupted, clean_cache, metric, "resid_pre")
    assert approx.shape == grid.shape
    assert abs(approx[0, 0].item() - metric(toy(corrupted)).item()) < 1e-5


def test_tl_style_construction_and_state_dict_loading():
    cfg = mechlens.HookedTransformerConfig(n_layers=2, d_model=32, n_ctx=16, d_head=8, d_vocab=50, act_fn="gelu",
                                           normalization_type="LN", seed=5)
    assert cfg.n_heads == 4 and cfg.d_mlp == 128
    a = mechlens.HookedTransformer(cfg)
    b = mechlens.HookedTransformer(mechlens.HookedTransformerConfig(cfg.to_dict(), seed=6))
    t = tokens()
    assert not torch.allclose(a(t), b(t))
    sd = dict(a.state_dict())
    sd["blocks.0.attn.IGNORE"] = torch.tensor(-1e5)  # TL's buffers load as they are (ignored)
    sd["blocks.1.attn.mask"] = torch.ones(16, 16, dtype=torch.bool)
    b.load_state_dict(sd)
    assert torch.equal(b(t), a(t))
    with pytest.raises(ValueError, match="does not have"):
        b.load_state_dict({"blocks.7.attn.W_Q": torch.zeros(1)})
    partial = {"embed.W_E": torch.zeros_like(a.W_E)}
    b.load_state_dict(partial, strict=False)
    assert torch.equal(b.W_E, torch.zeros_like(a.W_E)) and torch.equal(b.W_U, a.W_U)


def test_ln_final_unembed_stack_activation_and_head_results(toy):
    t = tokens()
    logits, cache = toy.run_with_cache(t)
    last = cache["resid_post", CFG["n_layers"] - 1]
    assert torch.allclose(toy.unembed(toy.ln_final(last)), logits, atol=1e-5)
    stacked = cache.stack_activation("resid_pre")
    assert stacked.shape == (2, 1, 8, 32) and torch.equal(stacked[1], cache["resid_pre", 1])
    cache.compute_head_results()
    for l in range(CFG["n_layers"]):
        summed = cache["result", l].sum(-2) + toy.blocks[l].attn.b_O
        assert torch.allclose(summed, cache["attn_out", l], atol=1e-5)


def test_tl_module_conventions_without_the_reference():
    """What test_tl_compat checks against TL, in the parts that need no reference install."""
    toy = mechlens.HookedTransformer.from_config(CFG, seed=1)
    t = tokens()
    # parameters require grad, as a torch.nn.Module's; in-place hook edits of q / k / v (views
    # of one fused projection in the engine) still work with autograd on
    assert all(p.requires_grad for p in toy.parameters())

    def zero_v(v, hook):
        v[:, :, 1] = 0.0

    with torch.enable_grad():
        loss = toy.run_with_hooks(t, return_type="loss", fwd_hooks=[(get_act_name("v", 0), zero_v)])
        loss.backward()
    assert toy.W_E.grad is not None and toy.W_E.grad.abs().sum() > 0
    toy.zero_grad(set_to_none=True)
    assert toy.W_E.grad is None
    with torch.no_grad():
        assert torch.allclose(loss, toy.run_with_hooks(t, return_type="loss",
                                                       fwd_hooks=[(get_act_name("v", 0), zero_v)]))
        # return_type="both" is TL's Output named tuple
        both = toy(t, return_type="both")
        assert type(both).__name__ == "Output" and torch.equal(both.logits, toy(t))
        # negative stop_at_layer / start_at_layer index from the end, as in TL
        resid = toy(t, stop_at_layer=-1)
        assert torch.allclose(toy(resid, start_at_layer=-1), toy(t), atol=1e-5)
    # FactoredMatrix is TL's: U diag(S) Vh^T == AB with Vh [..., rdim, mdim]
    fm = toy.OV[1, 2]
    assert isinstance(fm, mechlens.FactoredMatrix) and fm.Vh.shape == (CFG["d_model"], CFG["d_head"])
    assert torch.allclose(fm.U @ fm.S.diag_embed() @ fm.Vh.T, fm.AB, atol=1e-5)
    assert isinstance(toy.QK, mechlens.FactoredMatrix) and toy.QK.shape == (2, 4, CFG["d_model"], CFG["d_model"])
    # a switched-off optional hook point is not an error (it never fires), as in TL
    fired = []
    toy.run_with_hooks(t, fwd_hooks=[("blocks.0.attn.hook_result", lambda x, hook: fired.append(1))])
    assert fired == []
    # the cache is a dict of the C++ tensors; remove_batch_dim works in place
    _, cache = toy.run_with_cache(t[:1])
    assert isinstance(cache.cache_dict, dict) and cache.remove_batch_dim() is cache
    assert cache["resid_pre", 0].shape == (8, CFG["d_model"])


def test_tied_unembedding_gets_its_own_copy(load):
    """TL copies GPT-2's tied W_U; an edit of W_E must not change W_U."""
    model = load("gpt2", "unprocessed")
    W_U = model.W_U.clone()
    assert model.W_U.data_ptr() != model.W_E.data_ptr()
    with torch.no_grad():
        saved = model.W_E[3].clone()
        model.W_E[3] += 1.0
        assert torch.equal(model.W_U, W_U)
        model.W_E[3] = saved
    assert model.cfg.tie_word_embeddings is False
