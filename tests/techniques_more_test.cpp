// Attribution patching is the first-order term of exact patching; path patching,
// ablation and the IOI dataset behave as defined.
#include <gtest/gtest.h>

#include "mechlens/analysis/ablation.h"
#include "mechlens/analysis/ioi.h"
#include "mechlens/analysis/path_patching.h"
#include "mechlens/analysis/patching.h"
#include "mechlens/analysis/residual.h"
#include "mechlens/core/error.h"
#include "test_util.h"

using namespace mechlens;

namespace {
std::unique_ptr<HookedTransformer> model(int layers, bool attn_only) {
  ModelConfig c;
  c.n_layers = layers, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_mlp = 64, c.d_vocab = 60, c.n_ctx = 16;
  c.attn_only = attn_only;
  return std::make_unique<HookedTransformer>(c, random_state_dict(c, 21), "none");
}
at::Tensor toks(std::vector<int64_t> v) { return at::tensor(v, at::kLong).view({1, -1}); }
}  // namespace

TEST(AttributionPatching, IsTheDirectionalDerivativeOfExactPatching) {
  auto m = model(2, false);
  at::Tensor clean = toks({5, 9, 2, 33, 7, 41, 8, 12}), corrupted = clean.clone();
  corrupted[0][2] = 40;
  ActivationPatching ap(*m, clean, corrupted, PatchMetric{"logit_diff", {7}, {11}});
  for (auto [site, hook, pos, head] : std::vector<std::tuple<std::string, std::string, int64_t, int64_t>>{
           {"resid_pre", "blocks.1.hook_resid_pre", 4, -1}, {"z", "blocks.0.attn.hook_z", 5, 2}}) {
    PatchResult attr = ap.attribution(site, "by_pos");
    const double corr = ap.corrupted_metric();
    const double predicted = (head < 0 ? attr.grid[1][pos] : attr.grid[0][pos][head]).item<double>() - corr;
    // Patch only a small step eps towards the clean value: (metric - corrupted) / eps -> predicted.
    const double eps = 1e-2;
    at::Tensor C = ap.clean_cache()[hook], X = ap.corrupted_cache()[hook];
    at::Tensor logits = m->run_with_hooks(corrupted, {{names_in({hook}), [&](const at::Tensor& a, const HookPoint&) {
                                                         at::Tensor y = a.clone();
                                                         at::Tensor d = y.select(1, pos), c = C.select(1, pos), x = X.select(1, pos);
                                                         if (head >= 0) d = d.select(1, head), c = c.select(1, head), x = x.select(1, head);
                                                         d.copy_(x + eps * (c - x));
                                                         return y;
                                                       }}});
    const double fd = (ap.metric_of_logits(logits) - corr) / eps;
    EXPECT_NEAR(fd, predicted, 2e-2 * std::max(1.0, std::abs(predicted))) << site;
    EXPECT_GT(std::abs(predicted), 1e-4) << site;
  }
}

TEST(PathPatching, OneLayerAttentionOnlyEqualsHeadPatching) {
  // With one attention-only layer the only path from a head is the direct one.
  auto m = model(1, true);
  at::Tensor clean = toks({5, 9, 2, 33, 7, 41, 8, 12}), corrupted = clean.clone();
  corrupted[0][3] = 40;
  ActivationPatching ap(*m, clean, corrupted, PatchMetric{"logit_diff", {7}, {11}});
  PathPatchResult path = path_patch(*m, ap, {});
  EXPECT_CLOSE(path.grid, ap.run("z", "all_pos").grid, 1e-4, "path to logits == z patching");
  EXPECT_EQ(path.receivers, "logits");
}

TEST(PathPatching, SendersCannotReachEarlierReceivers) {
  auto m = model(3, false);
  at::Tensor clean = toks({5, 9, 2, 33, 7, 41, 8, 12}), corrupted = clean.clone();
  corrupted[0][1] = 40;
  ActivationPatching ap(*m, clean, corrupted, PatchMetric{"logit_diff", {7}, {11}});
  PathPatchResult r = path_patch(*m, ap, {Receiver::parse("1.2.q"), Receiver::parse("1.0.v")});
  for (int l = 1; l < 3; ++l)
    for (int h = 0; h < 4; ++h) EXPECT_EQ(r.grid[l][h].item<double>(), r.corrupted_metric) << l << " " << h;
  EXPECT_GT((r.grid[0] - r.corrupted_metric).abs().max().item<double>(), 1e-6);
  EXPECT_THROW(Receiver::parse("1.2.x"), Error);
  EXPECT_THROW(Receiver::parse("garbage"), Error);
}

TEST(Ablation, ZeroMeanResampleAndSelfRepairAccounting) {
  auto m = model(2, false);
  at::Tensor t = toks({5, 9, 2, 33, 7, 41, 8, 12});
  AblationTarget head = AblationTarget::parse("1.2");
  EXPECT_EQ(head.label(), "L1H2");
  EXPECT_EQ(AblationTarget::parse("mlp:0").hook_name(), "blocks.0.hook_mlp_out");
  EXPECT_EQ(AblationTarget::parse("neuron:1.7").label(), "L1N7");
  EXPECT_THROW(AblationTarget::parse("1-2"), Error);
  // Zero ablation through the hook equals zeroing z by hand.
  at::Tensor a = m->run_with_hooks(t, ablation_hooks(*m, {head}, {}, 1));
  at::Tensor b = m->run_with_hooks(t, {{names_in({"blocks.1.attn.hook_z"}), [](const at::Tensor& z, const HookPoint&) {
                                          at::Tensor y = z.clone();
                                          y.select(2, 2).zero_();
                                          return y;
                                        }}});
  EXPECT_TRUE(at::equal(a, b));
  // Mean over a reference made of the input itself changes nothing.
  AblationOptions mean{"mean", t};
  EXPECT_CLOSE(m->run_with_hooks(t, ablation_hooks(*m, {head, AblationTarget::parse("mlp:0")}, mean, 1)), m->forward(t),
               1e-6, "mean over itself");
  AblationOptions resample{"resample", at::cat({t, t}), 3};
  EXPECT_CLOSE(m->run_with_hooks(t, ablation_hooks(*m, {AblationTarget::parse("neuron:0.5")}, resample, 1)), m->forward(t),
               1e-6, "resample from identical rows");
  EXPECT_THROW(ablation_hooks(*m, {AblationTarget::parse("5.0")}, {}, 1), Error);

  SelfRepairReport r = self_repair(*m, t, {7}, {11}, head, {});
  EXPECT_EQ(r.direct_after[1][2].item<double>(), 0.0);  // a zeroed head has no direct effect
  // Heads before the ablated layer write the same vectors; only the final norm's scale
  // (read from each run) differs, so their direct effects change by one common factor.
  at::Tensor ratio = r.direct_after[0] / r.direct_before[0];
  EXPECT_LT((ratio - ratio[0]).abs().max().item<double>(), 1e-4);
  at::Tensor last = a.select(1, a.size(1) - 1);
  EXPECT_NEAR(r.logit_diff_ablated, (last[0][7] - last[0][11]).item<double>(), 1e-5);
  EXPECT_NEAR(r.self_repair, (r.logit_diff_ablated - r.logit_diff_clean) + r.ablated_direct_effect, 1e-5);
}

TEST(IOI, DatasetFollowsThePaperAndEvaluationIsPerPrompt) {
  auto tok = gpt2_tokenizer();
  auto prompts = make_ioi_dataset(*tok, 20, 7, true);
  ASSERT_EQ(prompts.size(), 20u);
  int abba = 0;
  for (const auto& p : prompts) {
    abba += p.order == "ABBA";
    EXPECT_EQ(p.tokens.front(), 50256);  // BOS
    EXPECT_EQ(p.io_token, tok->encode(" " + p.io)[0]);
    EXPECT_NE(p.io, p.s);
    // The prompt mentions IO once and S twice; the first name is IO in ABBA.
    auto count = [](const std::string& t, const std::string& w) {
      int n = 0;
      for (size_t i = t.find(w); i != std::string::npos; i = t.find(w, i + 1)) ++n;
      return n;
    };
    EXPECT_GE(count(p.text, p.s), 2) << p.text;
    const size_t first_io = p.text.find(p.io), first_s = p.text.find(p.s);
    EXPECT_EQ(p.order == "ABBA", first_io < first_s) << p.text;
    EXPECT_EQ(p.text.find(p.io, first_io + 1), std::string::npos) << p.text;
    EXPECT_EQ(p.corrupted.find(" " + p.io + " "), std::string::npos) << p.corrupted;
  }
  EXPECT_EQ(abba, 10);
  ModelConfig c = ModelConfig::preset("gpt2-tiny");
  c.n_layers = 1;
  HookedTransformer m(c, random_state_dict(c, 1), "none");
  IOIResult r = evaluate_ioi(m, prompts);
  for (size_t i : {size_t(0), size_t(7)}) {
    at::Tensor logits = m.forward(at::tensor(prompts[i].tokens, at::kLong).view({1, -1}));
    at::Tensor last = logits[0][logits.size(1) - 1];
    EXPECT_NEAR(r.logit_diffs[i], (last[prompts[i].io_token] - last[prompts[i].s_token]).item<double>(), 1e-4);
  }
  double mean = 0;
  for (double d : r.logit_diffs) mean += d / r.logit_diffs.size();
  EXPECT_NEAR(r.mean_logit_diff, mean, 1e-9);
}

TEST(LogitLens, FinalLayerReadsTheModelsOwnLogits) {
  auto m = model(2, false);
  at::Tensor t = toks({5, 9, 2, 33, 7, 41, 8, 12});
  auto [logits, cache] = m->run_with_cache(t);
  ResidualAnalysis ra(*m, cache);
  ComponentStack acc = ra.accumulated_resid(-1, true, false, -1);
  EXPECT_EQ(acc.labels.back(), "final_post");
  at::Tensor lens = m->unembed(acc.stack);  // [component, batch, vocab]
  EXPECT_CLOSE(lens[lens.size(0) - 1], logits.select(1, -1), 1e-5, "final lens == logits");
  EXPECT_EQ(lens.size(0), 5);  // 0_pre, 0_mid, 1_pre, 1_mid, final_post
}
