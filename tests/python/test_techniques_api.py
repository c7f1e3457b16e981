"""Ablation, self-repair, IOI and the training lab from Python, each checked against an
identity or a manual computation with hooks."""
import pytest
import torch

import mechlens
from mechlens.utils import get_act_name

from conftest import TOY_CFG as CFG


@pytest.fixture(scope="module")
def toy():
    return mechlens.HookedTransformer.from_config(CFG, seed=3)


def tokens():
    return torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6], [2, 7, 1, 8, 2, 8, 1, 8]])


def test_zero_ablating_a_head_is_zeroing_its_z(toy):
    def zero(z, hook):
        z[:, :, 2] = 0
        return z

    want = toy.run_with_hooks(tokens(), fwd_hooks=[(get_act_name("z", 1), zero)])
    got = mechlens.ablation.ablate(toy, tokens(), "1.2")
    assert torch.allclose(got, want, atol=1e-6)
    assert not torch.allclose(got, toy(tokens()))


def test_mean_ablating_a_layer_uses_the_reference_mean(toy):
    ref = torch.randint(0, CFG["d_vocab"], (6, 8), generator=torch.Generator().manual_seed(0))
    _, rc = toy.run_with_cache(ref)
    mean = rc["mlp_out", 0].mean(0)

    def put(x, hook):
        return mean.expand_as(x).clone()

    want = toy.run_with_hooks(tokens(), fwd_hooks=[(get_act_name("mlp_out", 0), put)])
    got = mechlens.ablation.ablate(toy, tokens(), ["mlp:0"], mode="mean", reference=ref)
    assert torch.allclose(got, want, atol=1e-5)


def test_self_repair_report_identities(toy):
    r = mechlens.ablation.self_repair(toy, tokens(), answer=7, wrong=11 % CFG["d_vocab"], head="0.1")
    assert r["direct_before"].shape == (2, 4) and r["direct_after"].shape == (2, 4)
    assert r["ablated"] == "L0H1"
    assert abs(r["ablated_direct_effect"] - r["direct_before"][0, 1].item()) < 1e-6
    assert abs(r["direct_after"][0, 1].item()) < 1e-6  # a zeroed head writes nothing
    # The clean logit difference is the model's own.
    logits = toy(tokens())[:, -1]
    ld = (logits[:, 7] - logits[:, 11]).mean().item()
    assert abs(r["logit_diff_clean"] - ld) < 1e-5
    with pytest.raises(ValueError):
        mechlens.ablation.self_repair(toy, tokens(), 7, 11, head="9.9")


def test_ioi_dataset_and_evaluation_match_a_manual_forward():
    model = mechlens.HookedTransformer.from_config("gpt2-tiny", seed=0, tokenizer=mechlens._C.gpt2_tokenizer())
    prompts = mechlens.ioi.make_ioi_dataset(model, n=6, seed=1)
    assert len(prompts) == 6 and {p.order for p in prompts} == {"ABBA", "BABA"}
    p = prompts[0]
    assert model.to_single_token(" " + p.io) == p.io_token and model.to_single_token(" " + p.s) == p.s_token
    assert model.to_tokens(p.text)[0].tolist() == p.tokens
    r = mechlens.ioi.evaluate(model, prompts)
    logits = model(torch.tensor([p.tokens]))[0, -1]
    assert abs(r["logit_diffs"][0] - (logits[p.io_token] - logits[p.s_token]).item()) < 1e-4
    assert abs(r["mean_logit_diff"] - sum(r["logit_diffs"]) / 6) < 1e-9
    assert r["accuracy"] == sum(d > 0 for d in r["logit_diffs"]) / 6


def test_training_a_recipe_resumes_and_loads_its_checkpoints(tmp_path):
    run = tmp_path / "grok"
    d = mechlens.train.defaults("grokking")
    assert d["p"] == 113
    with pytest.raises(ValueError, match="no_such_setting"):
        mechlens.train.grokking(str(run), no_such_setting=1)
    s = mechlens.train.grokking(str(run), p=11, frac_train=0.5, epochs=30, d_model=16, n_heads=2, d_mlp=32,
                                eval_every=10, checkpoints=3, checkpoint_schedule="linear")
    assert s["recipe"] == "grokking" and s["epochs_run"] == 30
    steps = mechlens.train.checkpoints(str(run))
    assert steps[0] == 0 and steps[-1] == 30 and steps == s["checkpoints"]
    with pytest.raises(ValueError, match="already holds a run"):
        mechlens.train.grokking(str(run), p=11)
    last, first = mechlens.train.load_checkpoint(str(run)), mechlens.train.load_checkpoint(str(run), 0)
    assert last.cfg.d_model == 16 and last.cfg.d_vocab == 12 and last.cfg.n_layers == 1
    x = torch.tensor([[a, b, 11] for a in range(11) for b in range(11)])
    assert not torch.allclose(last(x), first(x))
    # Same settings, same seed: the same run, bit for bit.
    twin = tmp_path / "twin"
    mechlens.train.grokking(str(twin), p=11, frac_train=0.5, epochs=30, d_model=16, n_heads=2, d_mlp=32,
                            eval_every=10, checkpoints=3, checkpoint_schedule="linear")
    assert torch.equal(mechlens.train.load_checkpoint(str(twin))(x), last(x))
    again = mechlens.train.grokking(str(run), resume=True)
    assert again["epochs_run"] == 30 and again["final"] == s["final"]
    with pytest.raises(ValueError):
        mechlens.train.load_checkpoint(str(run), step=7)
