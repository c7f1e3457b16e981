// Hook semantics: editing hooks change downstream values, cached values are what the
// next component consumed, residual identities hold, temporary vs permanent hooks,
// backward hooks, start/stop layers, and idle hook points cost nothing.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "mechlens/core/error.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

namespace {
// A small model that needs no golden files.
std::unique_ptr<HookedTransformer> toy(ModelConfig c = {}) {
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_mlp = 64, c.d_vocab = 50, c.n_ctx = 16;
  return std::make_unique<HookedTransformer>(c, random_state_dict(c, 7), "none");
}
at::Tensor toy_tokens() { return at::tensor(std::vector<int64_t>{3, 1, 4, 1, 5, 9, 2, 6, 7, 8, 10, 11}, at::kLong).view({2, 6}); }
}  // namespace

TEST(Hooks, IdleHookPointReturnsItsInputWithoutCopy) {
  HookPoint hp("x");
  at::Tensor t = at::randn({3, 4});
  at::Tensor y = hp(t);
  EXPECT_TRUE(y.is_same(t));
  int id = hp.add_forward([](const at::Tensor& a, const HookPoint&) { return a * 2; });
  EXPECT_TRUE(at::allclose(hp(t), t * 2));
  hp.remove(id);
  EXPECT_TRUE(hp(t).is_same(t));
}

TEST(Hooks, EditingHookChangesDownstream) {
  auto m = toy();
  at::Tensor tokens = toy_tokens();
  at::Tensor base = m->forward(tokens);
  auto zero_head = [](const at::Tensor& z, const HookPoint&) {
    at::Tensor out = z.clone();
    out.select(2, 1).zero_();
    return out;
  };
  at::Tensor edited = m->run_with_hooks(tokens, {{names_in({"blocks.0.attn.hook_z"}), zero_head}});
  EXPECT_GT((edited - base).abs().max().item<double>(), 1e-3);
  // The hook was temporary: the next run is back to the original.
  EXPECT_TRUE(at::equal(m->forward(tokens), base));
  // A hook returning its input unchanged changes nothing.
  at::Tensor same = m->run_with_hooks(tokens, {{all_names(), [](const at::Tensor& x, const HookPoint&) { return x; }}});
  EXPECT_TRUE(at::equal(same, base));
}

TEST(Hooks, PermanentHooksSurviveResetUnlessAsked) {
  auto m = toy();
  at::Tensor tokens = toy_tokens();
  at::Tensor base = m->forward(tokens);
  m->add_hook(names_in({"blocks.1.hook_resid_pre"}), [](const at::Tensor& x, const HookPoint&) { return x * 0.5; }, true);
  m->add_hook(names_in({"hook_embed"}), [](const at::Tensor& x, const HookPoint&) { return x * 0; }, false);
  at::Tensor both = m->forward(tokens);
  m->reset_hooks();
  at::Tensor perm_only = m->forward(tokens);
  EXPECT_FALSE(at::allclose(perm_only, base));
  EXPECT_FALSE(at::allclose(perm_only, both));
  m->reset_hooks(true);
  EXPECT_TRUE(at::equal(m->forward(tokens), base));
  EXPECT_THROW(m->add_hook(names_in({"no.such.hook"}), [](const at::Tensor& x, const HookPoint&) { return x; }), Error);
}

TEST(Hooks, CachedValuesAreWhatTheNextComponentConsumed) {
  auto m = toy();
  at::Tensor tokens = toy_tokens();
  auto [logits, cache] = m->run_with_cache(tokens);
  const auto& sd = m->state_dict();
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    // q is computed from the cached normalized input.
    at::Tensor q = at::einsum("bpd,hdk->bphk", {cache[b + "ln1.hook_normalized"], sd.at(b + "attn.W_Q")}) + sd.at(b + "attn.b_Q");
    EXPECT_CLOSE(q, cache[b + "attn.hook_q"], 1e-5, "q from normalized");
    // the pattern is the softmax of the cached scores, z the pattern applied to v.
    EXPECT_CLOSE(at::softmax(cache[b + "attn.hook_attn_scores"], -1), cache[b + "attn.hook_pattern"], 1e-6, "pattern");
    at::Tensor z = at::einsum("bhqk,bkhd->bqhd", {cache[b + "attn.hook_pattern"], cache[b + "attn.hook_v"]});
    EXPECT_CLOSE(z, cache[b + "attn.hook_z"], 1e-5, "z");
    // mlp_out from hook_post.
    at::Tensor mlp_out = at::matmul(cache[b + "mlp.hook_post"], sd.at(b + "mlp.W_out")) + sd.at(b + "mlp.b_out");
    EXPECT_CLOSE(mlp_out, cache[b + "hook_mlp_out"], 1e-5, "mlp_out");
    // residual identities
    EXPECT_CLOSE(cache[b + "hook_resid_pre"] + cache[b + "hook_attn_out"], cache[b + "hook_resid_mid"], 1e-5, "resid_mid");
    EXPECT_CLOSE(cache[b + "hook_resid_mid"] + cache[b + "hook_mlp_out"], cache[b + "hook_resid_post"], 1e-5, "resid_post");
  }
  EXPECT_CLOSE(cache["blocks.0.hook_resid_post"], cache["blocks.1.hook_resid_pre"], 0, "resid handoff");
  at::Tensor unembed = at::matmul(cache["ln_final.hook_normalized"], sd.at("unembed.W_U")) + sd.at("unembed.b_U");
  EXPECT_CLOSE(unembed, logits, 1e-5, "logits from ln_final");
  // Replacing an activation with its own cached value reproduces the run exactly.
  at::Tensor cached = cache["blocks.1.hook_resid_mid"];
  at::Tensor patched = m->run_with_hooks(tokens, {{names_in({"blocks.1.hook_resid_mid"}),
                                                   [cached](const at::Tensor&, const HookPoint&) { return cached; }}});
  EXPECT_TRUE(at::equal(patched, logits));
}

TEST(Hooks, ParallelBlockIdentity) {
  ModelConfig c;
  c.parallel_attn_mlp = true;
  c.positional_embedding_type = PosEmbed::Rotary;
  c.rotary_dim = 4;
  auto m = toy(c);
  auto [logits, cache] = m->run_with_cache(toy_tokens());
  EXPECT_FALSE(cache.contains("blocks.0.hook_resid_mid"));
  for (int l = 0; l < 2; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    EXPECT_CLOSE(cache[b + "hook_resid_pre"] + cache[b + "hook_attn_out"] + cache[b + "hook_mlp_out"],
                 cache[b + "hook_resid_post"], 1e-5, "parallel resid_post");
    // The MLP reads resid_pre (through ln2), not resid_pre + attn_out.
    at::Tensor x = cache[b + "hook_resid_pre"];
    x = x - x.mean(-1, true);
    at::Tensor normed = x / (x.pow(2).mean(-1, true) + 1e-5).sqrt() * m->state_dict().at(b + "ln2.w") + m->state_dict().at(b + "ln2.b");
    EXPECT_CLOSE(normed, cache[b + "ln2.hook_normalized"], 1e-5, "ln2 input is resid_pre");
  }
}

TEST(Hooks, OptionalHooksFollowTheirFlagsAndKeepOutputs) {
  ModelConfig c;
  auto plain = toy(c);
  c.use_attn_result = c.use_split_qkv_input = c.use_hook_mlp_in = true;
  auto flagged = toy(c);
  at::Tensor tokens = toy_tokens();
  auto [l1, c1] = plain->run_with_cache(tokens);
  auto [l2, c2] = flagged->run_with_cache(tokens);
  EXPECT_CLOSE(l1, l2, 1e-4, "optional hooks do not change the output");
  for (const char* n : {"blocks.0.attn.hook_result", "blocks.0.hook_q_input", "blocks.0.hook_k_input",
                        "blocks.0.hook_v_input", "blocks.0.hook_mlp_in"}) {
    EXPECT_FALSE(c1.contains(n)) << n;
    EXPECT_TRUE(c2.contains(n)) << n;
  }
  EXPECT_EQ(c2["blocks.0.attn.hook_result"].sizes(), (std::vector<int64_t>{2, 6, 4, 32}));
  // head results sum to attn_out minus b_O
  EXPECT_CLOSE(c2["blocks.1.attn.hook_result"].sum(2) + flagged->state_dict().at("blocks.1.attn.b_O"),
               c2["blocks.1.hook_attn_out"], 1e-5, "sum of head results");
  // Editing the query input of one head changes only through q.
  at::Tensor edited = flagged->run_with_hooks(tokens, {{names_in({"blocks.0.hook_q_input"}), [](const at::Tensor& x, const HookPoint&) {
                                                          return x * 0;
                                                        }}});
  EXPECT_FALSE(at::allclose(edited, l2));
}

TEST(Hooks, OptionalHooksCanBeSwitchedOnLater) {
  auto m = toy();
  at::Tensor tokens = toy_tokens();
  at::Tensor before = m->forward(tokens);
  EXPECT_EQ(m->hook("blocks.0.attn.hook_result"), nullptr);
  m->set_optional_hooks(true, false, true, true);
  ASSERT_NE(m->hook("blocks.0.attn.hook_result"), nullptr);
  auto [after, cache] = m->run_with_cache(tokens);
  EXPECT_CLOSE(after, before, 1e-5, "same output");
  EXPECT_TRUE(cache.contains("blocks.1.hook_mlp_in"));
  EXPECT_EQ(cache["blocks.1.hook_attn_in"].sizes(), (std::vector<int64_t>{2, 6, 4, 32}));
  // Order as TransformerLens: attn_in before ln1, mlp_in before ln2.
  auto names = m->hook_names();
  auto at = [&](const std::string& n) { return std::find(names.begin(), names.end(), n) - names.begin(); };
  EXPECT_LT(at("blocks.0.hook_attn_in"), at("blocks.0.ln1.hook_scale"));
  EXPECT_LT(at("blocks.0.hook_mlp_in"), at("blocks.0.ln2.hook_scale"));
}

TEST(Hooks, BackwardHooksSeeGradients) {
  auto m = toy();
  at::Tensor tokens = toy_tokens();
  at::Tensor seen;
  m->add_backward_hook(names_in({"blocks.0.hook_resid_post"}), [&seen](const at::Tensor& g, const HookPoint&) {
    seen = g.clone();
    return std::optional<at::Tensor>();
  });
  // Gradients need a leaf that requires grad: make the embedding output require it.
  at::Tensor resid_post;
  m->add_hook(names_in({"hook_embed"}), [](const at::Tensor& x, const HookPoint&) { return x.detach().requires_grad_(true); });
  m->add_hook(names_in({"blocks.0.hook_resid_post"}), [&resid_post](const at::Tensor& x, const HookPoint&) {
    resid_post = x;
    return x;
  });
  at::Tensor logits = m->forward(tokens);
  at::Tensor loss = HookedTransformer::loss(logits, tokens);
  at::Tensor expected = torch::autograd::grad({loss}, {resid_post}, {}, true)[0];
  loss.backward();
  m->reset_hooks();
  ASSERT_TRUE(seen.defined());
  EXPECT_CLOSE(seen, expected, 1e-6, "backward hook gradient");
  EXPECT_GT(seen.abs().max().item<double>(), 0);
}

TEST(Hooks, StartAndStopAtLayer) {
  auto m = toy();
  at::Tensor tokens = toy_tokens();
  auto [logits, cache] = m->run_with_cache(tokens);
  ForwardOptions stop;
  stop.stop_at_layer = 1;
  at::Tensor resid = m->forward(tokens, stop);
  EXPECT_CLOSE(resid, cache["blocks.1.hook_resid_pre"], 0, "stop_at_layer returns resid_pre");
  ForwardOptions start;
  start.start_at_layer = 1;
  auto [from_mid, partial] = m->run_with_cache(resid, all_names(), start);
  EXPECT_CLOSE(from_mid, logits, 1e-6, "start_at_layer continues the run");
  EXPECT_FALSE(partial.contains("blocks.0.hook_resid_pre"));
  EXPECT_TRUE(partial.contains("blocks.1.hook_resid_pre"));
  auto [_, only] = m->run_with_cache(tokens, names_matching("hook_pattern$"));
  EXPECT_EQ(only.names(), (std::vector<std::string>{"blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"}));
}

TEST(Hooks, OutOfRangeTokensAreErrors) {
  auto m = toy();
  EXPECT_THROW(m->forward(at::tensor(std::vector<int64_t>{1, 50}, at::kLong).view({1, 2})), Error);
  EXPECT_THROW(m->forward(at::tensor(std::vector<int64_t>{-1, 2}, at::kLong).view({1, 2})), Error);
  EXPECT_THROW(m->forward(at::zeros({1, 17}, at::kLong)), Error);
  EXPECT_THROW(m->forward(at::zeros({1, 3}, at::kFloat)), Error);
}
