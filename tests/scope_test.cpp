// The neuron index against brute force: every neuron's top-k documents, statistics,
// histogram and logit effects equal what a full activation cache gives.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "mechlens/core/error.h"
#include "mechlens/model/weights.h"
#include "mechlens/scope/index_build.h"
#include "mechlens/scope/neuron_index.h"
#include "mechlens/scope/neuron_stats.h"
#include "test_util.h"

namespace mechlens {
namespace {

ModelConfig small_config(const std::string& act) {
  ModelConfig c;
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_mlp = 48, c.d_vocab = 50, c.n_ctx = 32;
  c.act_fn = parse_act_fn(act, "small_config"), c.model_name = "scope-test-" + act;
  return c;
}

std::string temp_path(const std::string& name) {
  std::string p = ::testing::TempDir() + "/mechlens_scope_" + name + "_" + std::to_string(::getpid()) + ".db";
  std::remove(p.c_str());
  std::remove((p + ".partial").c_str());
  return p;
}

std::vector<std::string> plain_vocab(int64_t v) {
  std::vector<std::string> out;
  for (int64_t i = 0; i < v; ++i) out.push_back("t" + std::to_string(i));
  return out;
}

// Brute force: the activations of every document, in the same batches as the build.
at::Tensor all_acts(HookedTransformer& m, const at::Tensor& docs, const std::string& hook, int64_t batch) {
  std::vector<at::Tensor> parts;
  for (int64_t i = 0; i < docs.size(0); i += batch) {
    auto [logits, cache] = m.run_with_cache(docs.slice(0, i, std::min(docs.size(0), i + batch)), names_in({hook}));
    parts.push_back(cache.at(hook).to(at::kFloat));
  }
  return at::cat(parts, 0);  // [D, ctx, n]
}

void check_index(const std::string& act, int64_t D, int64_t ctx, int64_t k, int64_t batch) {
  at::NoGradGuard no_grad;
  ModelConfig cfg = small_config(act);
  HookedTransformer m(cfg, random_state_dict(cfg, 7));
  at::manual_seed(3);
  at::Tensor docs = at::randint(cfg.d_vocab, {D, ctx}, at::kLong);
  const std::string out = temp_path(act);
  ScopeBuildOptions o;
  o.top_k = k, o.batch = batch, o.progress = false, o.logit_k = 4;
  build_neuron_index(m, docs, plain_vocab(cfg.d_vocab), {{"kind", "tokens"}, {"name", "random"}}, "", out, o);
  NeuronIndex idx(out);
  ASSERT_EQ(idx.n_layers(), cfg.n_layers);
  ASSERT_EQ(idx.n_neurons(), cfg.d_mlp);
  EXPECT_EQ(idx.build()["hook"], neuron_hook_name(cfg, 0));
  for (int l = 0; l < cfg.n_layers; ++l) {
    at::Tensor A = all_acts(m, docs, neuron_hook_name(cfg, l), batch);
    at::Tensor full = all_acts(m, docs, neuron_hook_name(cfg, l), D);  // one batch: float rounding only
    EXPECT_CLOSE(A, full, 1e-5, "batched vs one-batch activations");
    at::Tensor WU = m.state_dict().at("unembed.W_U");
    at::Tensor eff = m.state_dict().at("blocks." + std::to_string(l) + ".mlp.W_out").matmul(WU);  // [n, vocab]
    for (int64_t n = 0; n < cfg.d_mlp; ++n) {
      NeuronRecord r = idx.neuron(l, n);
      at::Tensor a = A.select(2, n);  // [D, ctx]
      // Top-k documents: by max over positions, ties to the earlier document; pos = first argmax.
      std::vector<std::pair<double, int64_t>> docmax;
      for (int64_t d = 0; d < D; ++d) docmax.push_back({a[d].max().item<double>(), d});
      std::stable_sort(docmax.begin(), docmax.end(), [](auto& x, auto& y) { return x.first > y.first; });
      ASSERT_EQ(static_cast<int64_t>(r.examples.size()), std::min(k, D));
      for (size_t i = 0; i < r.examples.size(); ++i) {
        const auto& e = r.examples[i];
        const int64_t d = docmax[i].second;
        EXPECT_EQ(e.doc, d) << "L" << l << "N" << n << " rank " << i;
        EXPECT_EQ(e.act, docmax[i].first);
        int64_t first = 0;
        while (a[d][first].item<double>() != docmax[i].first) ++first;
        EXPECT_EQ(e.pos, first);
        ASSERT_EQ(static_cast<int64_t>(e.acts.size()), ctx);
        for (int64_t p = 0; p < ctx; ++p) EXPECT_EQ(e.acts[p], a[d][p].item<float>());
        EXPECT_EQ(e.tokens, std::vector<int64_t>(docs[d].data_ptr<int64_t>(), docs[d].data_ptr<int64_t>() + ctx));
      }
      // Statistics.
      at::Tensor flat = a.reshape(-1).to(at::kDouble);
      EXPECT_EQ(r.max_act, flat.max().item<double>());
      EXPECT_EQ(r.min_act, flat.min().item<double>());
      EXPECT_NEAR(r.mean, flat.mean().item<double>(), 1e-12 * std::max(1.0, std::abs(r.mean)));
      EXPECT_EQ(r.frac_positive, (flat > 0).sum().item<double>() / static_cast<double>(D * ctx));
      // Histogram: counts in [edges[i], edges[i+1]) of the exact values.
      ASSERT_EQ(r.edges.size(), r.counts.size() + 1);
      EXPECT_LE(r.edges.front(), r.min_act);
      EXPECT_GT(r.edges.back(), r.max_act);
      EXPECT_GT(r.counts.front(), 0);
      EXPECT_GT(r.counts.back(), 0);
      for (size_t b = 0; b < r.counts.size(); ++b) {
        const int64_t want = ((flat >= r.edges[b]) & (flat < r.edges[b + 1])).sum().item<int64_t>();
        EXPECT_EQ(r.counts[b], want) << "L" << l << "N" << n << " bin " << b;
      }
      // Logit effects: the top and bottom of W_out W_U.
      auto [tv, ti] = eff[n].topk(4);
      auto [bv, bi] = eff[n].topk(4, 0, false);
      ASSERT_EQ(r.top.size(), 4u);
      ASSERT_EQ(r.bottom.size(), 4u);
      for (int64_t i = 0; i < 4; ++i) {
        EXPECT_EQ(r.top[i].id, ti[i].item<int64_t>());
        EXPECT_NEAR(r.top[i].value, tv[i].item<double>(), 1e-5);
        EXPECT_EQ(r.bottom[i].id, bi[i].item<int64_t>());
      }
    }
  }
  EXPECT_THROW(idx.neuron(cfg.n_layers, 0), Error);
  EXPECT_THROW(idx.neuron(0, cfg.d_mlp), Error);
  EXPECT_THROW(idx.neuron(-1, 0), Error);
  // A second build onto an existing index is refused, not overwritten.
  EXPECT_THROW(build_neuron_index(m, docs, plain_vocab(cfg.d_vocab), {{"kind", "tokens"}}, "", out, o), Error);
  std::remove(out.c_str());
}

TEST(Scope, GeluIndexMatchesBruteForce) { check_index("gelu", 37, 12, 5, 8); }
// SoLU reads hook_mid; fewer documents than k.
TEST(Scope, SoluIndexReadsHookMid) { check_index("solu_ln", 3, 9, 5, 2); }

TEST(Scope, HistogramMergesExactly) {
  // Values that force R to double several times between batches.
  NeuronAccumulator acc(2, 4, {3, 16});
  std::vector<at::Tensor> batches = {at::tensor({0.01f, -0.02f, 0.0f, 0.03f, 1e-30f, -1e-30f, 0.5f, 0.25f}).view({1, 4, 2}),
                                     at::tensor({7.5f, -3.0f, 0.1f, 2.0f, -8.0f, 0.0f, 1.0f, -1.0f}).view({1, 4, 2}),
                                     at::tensor({100.0f, 0.2f, -64.0f, 0.3f, 1.0f, 0.4f, 3.0f, -0.4f}).view({1, 4, 2})};
  for (int i = 0; i < 3; ++i) acc.add(batches[i], i);
  at::Tensor all = at::cat(batches, 0).to(at::kDouble);
  for (int n = 0; n < 2; ++n) {
    at::Tensor v = all.select(2, n).reshape(-1);
    const int64_t e = acc.hist_exponent()[n].item<int64_t>();
    const double R = std::ldexp(1.0, static_cast<int>(e));
    EXPECT_GT(R, v.abs().max().item<double>());
    EXPECT_LE(R / 2, v.abs().max().item<double>());  // the smallest power of two above max |x|
    for (int64_t b = 0; b < 16; ++b) {
      const double lo = -R + b * 2 * R / 16, hi = -R + (b + 1) * 2 * R / 16;
      EXPECT_EQ(acc.hist_counts()[n][b].item<int64_t>(), ((v >= lo) & (v < hi)).sum().item<int64_t>()) << n << " " << b;
    }
  }
  EXPECT_EQ(acc.top_doc()[0][0].item<int64_t>(), 2);  // 100.0
  EXPECT_EQ(acc.top_pos()[0][0].item<int64_t>(), 0);
}

TEST(Scope, NonFiniteActivationsAreAnError) {
  NeuronAccumulator acc(2, 2, {2, 16});
  EXPECT_THROW(acc.add(at::tensor({1.0f, NAN, 0.0f, 2.0f}).view({1, 2, 2}), 0), Error);
  EXPECT_THROW(acc.add(at::tensor({1.0f, INFINITY, 0.0f, 2.0f}).view({1, 2, 2}), 0), Error);
}

TEST(Scope, AFinishedButUnrenamedBuildIsRenamed) {
  // Killed between its last commit and the rename: the rerun only renames it.
  at::NoGradGuard no_grad;
  ModelConfig cfg = small_config("gelu");
  HookedTransformer m(cfg, random_state_dict(cfg, 7));
  at::Tensor docs = at::randint(cfg.d_vocab, {6, 5}, at::kLong);
  const std::string out = temp_path("rename");
  ScopeBuildOptions o;
  o.progress = false;
  build_neuron_index(m, docs, plain_vocab(cfg.d_vocab), {{"kind", "tokens"}}, "", out, o);
  const std::string bytes = read_file(out);
  ASSERT_EQ(std::rename(out.c_str(), (out + ".partial").c_str()), 0);
  build_neuron_index(m, docs, plain_vocab(cfg.d_vocab), {{"kind", "tokens"}}, "", out, o);
  EXPECT_EQ(read_file(out), bytes);
  EXPECT_FALSE(file_exists(out + ".partial"));
  std::remove(out.c_str());
}

TEST(Scope, MissingOrForeignIndexIsAnError) {
  EXPECT_THROW(NeuronIndex("/nonexistent/index.db"), Error);
  const std::string p = temp_path("garbage");
  write_file_atomic(p, "this is not a database at all, just some bytes............................");
  EXPECT_THROW(NeuronIndex{p}, Error);
  std::remove(p.c_str());
}

TEST(Scope, AttentionOnlyModelsHaveNoNeurons) {
  ModelConfig c = small_config("gelu");
  c.attn_only = true;
  EXPECT_THROW(neuron_hook_name(c, 0), Error);
}

}  // namespace
}  // namespace mechlens
