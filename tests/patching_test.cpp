// Activation patching: grids identical to TransformerLens's get_act_patch_* (shape,
// index order, values), batched == unbatched, clean patches restore the clean metric,
// and k/v patching works on grouped-query models (where TransformerLens fails).
#include <gtest/gtest.h>

#include "mechlens/analysis/patching.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "mechlens/tokenize/tokens.h"

#include <map>
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

namespace {
at::Tensor row(const json& j) {
  auto v = j[0].get<std::vector<int64_t>>();
  return at::tensor(v, at::kLong).view({1, -1});
}
}  // namespace

struct PatchCase {
  std::string family;
  bool processed;
};
// Readable names in test listings.
inline void PrintTo(const PatchCase& c, std::ostream* os) { *os << c.family << (c.processed ? " processed" : " unprocessed"); }
class PatchingParity : public ::testing::TestWithParam<PatchCase> {};

TEST_P(PatchingParity, EveryGridMatchesTransformerLens) {
  REQUIRE_GOLDEN();
  const auto& c = GetParam();
  const std::string dir = golden_dir() + "/" + c.family, prefix = c.processed ? "processed." : "unprocessed.";
  LoadOptions o;
  if (c.processed) o.processing = ProcessingOptions::tl_defaults();
  auto model = load_model(dir, o);
  json meta = read_json_file(dir + "/tl_techniques.json");
  auto tl = SafetensorsFile::open(dir + "/tl_techniques.safetensors");
  const auto& in = meta["inputs"]["patching"];
  PatchMetric metric;
  metric.answer = {meta["inputs"]["answer_token"].get<int64_t>()};
  metric.wrong = {meta["inputs"]["wrong_token"].get<int64_t>()};
  ActivationPatching ap(*model, row(in["clean_tokens"]), row(in["corrupted_tokens"]), metric);
  EXPECT_NEAR(ap.clean_metric(), tl->get(prefix + "patching.clean_metric").item<double>(), 1e-4);
  EXPECT_NEAR(ap.corrupted_metric(), tl->get(prefix + "patching.corrupted_metric").item<double>(), 1e-4);

  struct Entry {
    const char* key;
    std::function<PatchResult()> run;
  };
  std::vector<Entry> entries = {
      {"get_act_patch_resid_pre", [&] { return ap.run("resid_pre"); }},
      {"get_act_patch_resid_mid", [&] { return ap.run("resid_mid"); }},
      {"get_act_patch_attn_out", [&] { return ap.run("attn_out"); }},
      {"get_act_patch_mlp_out", [&] { return ap.run("mlp_out"); }},
      {"get_act_patch_attn_head_out_by_pos", [&] { return ap.run("z", "by_pos"); }},
      {"get_act_patch_attn_head_q_by_pos", [&] { return ap.run("q", "by_pos"); }},
      {"get_act_patch_attn_head_k_by_pos", [&] { return ap.run("k", "by_pos"); }},
      {"get_act_patch_attn_head_v_by_pos", [&] { return ap.run("v", "by_pos"); }},
      {"get_act_patch_attn_head_out_all_pos", [&] { return ap.run("z", "all_pos"); }},
      {"get_act_patch_attn_head_q_all_pos", [&] { return ap.run("q", "all_pos"); }},
      {"get_act_patch_attn_head_k_all_pos", [&] { return ap.run("k", "all_pos"); }},
      {"get_act_patch_attn_head_v_all_pos", [&] { return ap.run("v", "all_pos"); }},
      {"get_act_patch_attn_head_pattern_all_pos", [&] { return ap.run("pattern", "all_pos"); }},
      {"get_act_patch_attn_head_pattern_by_pos", [&] { return ap.run("pattern", "by_pos"); }},
      {"get_act_patch_block_every", [&] { return ap.block_every(); }},
      {"get_act_patch_attn_head_all_pos_every", [&] { return ap.head_all_pos_every(); }},
      {"get_act_patch_attn_head_by_pos_every", [&] { return ap.head_by_pos_every(); }},
  };
  int compared = 0;
  for (const auto& e : entries) {
    const std::string key = prefix + "patching." + e.key;
    if (!tl->contains(key)) {
      // TransformerLens failed here (grouped-query k/v); mechlens must still work.
      if (std::string(e.key).find("every") != std::string::npos) {
        EXPECT_THROW(e.run(), Error) << key;
      } else {
        PatchResult r = e.run();
        EXPECT_EQ(r.grid.size(-1), model->cfg().kv_heads()) << key;
        EXPECT_TRUE(at::isfinite(r.grid).all().item<bool>()) << key;
      }
      continue;
    }
    PatchResult r = e.run();
    EXPECT_CLOSE(r.grid, tl->get(key), 1e-4, key);
    ++compared;
  }
  EXPECT_GE(compared, 11);
}

INSTANTIATE_TEST_SUITE_P(TL, PatchingParity,
                         ::testing::Values(PatchCase{"gpt2", false}, PatchCase{"gpt2", true}, PatchCase{"llama", false},
                                           PatchCase{"llama", true}),
                         [](const auto& info) {
                           return info.param.family + (info.param.processed ? "_processed" : "_unprocessed");
                         });

namespace {
std::unique_ptr<HookedTransformer> toy(bool gqa) {
  ModelConfig c;
  c.n_layers = 3, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_mlp = 64, c.d_vocab = 60, c.n_ctx = 16;
  if (gqa) {
    c.n_key_value_heads = 2, c.positional_embedding_type = PosEmbed::Rotary;
    c.normalization_type = NormType::RMS;
    c.gated_mlp = true, c.act_fn = ActFn::Silu;
  }
  return std::make_unique<HookedTransformer>(c, random_state_dict(c, 11), "none");
}
}  // namespace

TEST(Patching, BatchedEqualsUnbatchedOnEverySite) {
  for (bool gqa : {false, true}) {
    auto m = toy(gqa);
    at::Tensor clean = at::tensor(std::vector<int64_t>{5, 9, 2, 33, 7, 41, 8, 12, 3, 19, 5, 9, 2, 33, 7, 41}, at::kLong).view({2, 8});
    at::Tensor corrupted = clean.clone();
    corrupted[0][3] = 50, corrupted[1][5] = 51;
    for (const char* kind : {"logit_diff", "logit_diff_norm", "loss", "prob"}) {
      PatchMetric metric{kind, {7, 8}, {11, 12}};
      ActivationPatching ap(*m, clean, corrupted, metric);
      ap.token_budget = 40;  // force several chunks
      for (auto [site, mode] : std::vector<std::pair<std::string, std::string>>{
               {"resid_pre", "by_pos"}, {"resid_mid", "by_pos"}, {"resid_post", "by_pos"}, {"attn_out", "by_pos"},
               {"mlp_out", "by_pos"}, {"z", "by_pos"}, {"q", "by_pos"}, {"k", "by_pos"}, {"v", "all_pos"},
               {"z", "all_pos"}, {"pattern", "by_pos"}, {"pattern", "all_pos"}, {"pattern", "dest_src"}}) {
        if (mode == "dest_src" && std::string(kind) != "logit_diff") continue;  // 768 reference runs each
        PatchResult a = ap.run(site, mode, true), b = ap.run(site, mode, false);
        EXPECT_CLOSE(a.grid, b.grid, 2e-5, (gqa ? "gqa " : "") << kind << " " << site << " " << mode);
        if (site == "resid_pre") EXPECT_GT(a.skipped, 0);  // positions before the first corruption
      }
    }
  }
}

TEST(Patching, CleanActivationsEverywhereRestoreTheCleanMetric) {
  auto m = toy(false);
  at::Tensor clean = at::tensor(std::vector<int64_t>{5, 9, 2, 33, 7, 41, 8, 12}, at::kLong).view({1, 8});
  at::Tensor corrupted = clean.clone();
  corrupted[0][2] = 40;
  ActivationPatching ap(*m, clean, corrupted, PatchMetric{"logit_diff", {7}, {11}});
  for (int l = 0; l < m->cfg().n_layers; ++l) {
    for (const std::string site : {"hook_resid_pre", "hook_resid_post"}) {
      const std::string name = "blocks." + std::to_string(l) + "." + site;
      at::Tensor cl = ap.clean_cache()[name];
      at::Tensor logits = m->run_with_hooks(corrupted, {{names_in({name}), [cl](const at::Tensor&, const HookPoint&) { return cl; }}});
      EXPECT_NEAR(ap.metric_of_logits(logits), ap.clean_metric(), 1e-4) << name;
    }
  }
  // Every head's z and every MLP output together.
  std::vector<ForwardHookSpec> hooks;
  for (const auto& name : m->hook_names())
    if (name.find("attn.hook_z") != std::string::npos || name.find("hook_mlp_out") != std::string::npos) {
      at::Tensor cl = ap.clean_cache()[name];
      hooks.push_back({names_in({name}), [cl](const at::Tensor&, const HookPoint&) { return cl; }});
    }
  hooks.push_back({names_in({"hook_embed"}), [&](const at::Tensor&, const HookPoint&) { return ap.clean_cache()["hook_embed"]; }});
  EXPECT_NEAR(ap.metric_of_logits(m->run_with_hooks(corrupted, hooks)), ap.clean_metric(), 1e-4);
  EXPECT_GT(std::abs(ap.clean_metric() - ap.corrupted_metric()), 1e-3);
}

TEST(Patching, BadArgumentsAreErrors) {
  auto m = toy(false);
  at::Tensor t = at::zeros({1, 4}, at::kLong);
  EXPECT_THROW(ActivationPatching(*m, t, at::zeros({1, 5}, at::kLong), PatchMetric{"logit_diff", {1}, {2}}), Error);
  EXPECT_THROW(ActivationPatching(*m, t, t, PatchMetric{"logit_diff", {1000}, {2}}), Error);
  EXPECT_THROW(ActivationPatching(*m, t, t, PatchMetric{"accuracy", {1}, {2}}), Error);
  ActivationPatching ap(*m, t, t, PatchMetric{"logit_diff", {1}, {2}});
  EXPECT_THROW(ap.run("resid_sideways"), Error);
  EXPECT_THROW(ap.run("z", "dest_src"), Error);
}

// A ragged batch, padded left or right with its attention mask, patches as each prompt
// alone: the grid entry of a position is the mean over rows of that row's own grid at
// the same token (the corrupted metric where the row has no such token: a pad slot),
// for positions (resid_pre, attn_out) and for heads over all positions (z). Batched and
// one-forward-per-patch runs agree.
TEST(Patching, RaggedBatchEqualsEachPromptAlone) {
  for (bool gqa : {false, true}) {  // gqa: the LLaMA-like toy (rotary positions)
    auto m = toy(gqa);
    std::vector<std::vector<int64_t>> clean = {{5, 9, 2, 33, 7, 41, 8}, {12, 3, 19, 5}, {9, 2, 33, 7, 41}};
    std::vector<std::vector<int64_t>> corrupted = clean;
    corrupted[0][3] = 50, corrupted[1][1] = 51, corrupted[2][2] = 52;
    const std::vector<int64_t> answer = {7, 8, 9}, wrong = {11, 12, 13};
    // Each prompt alone.
    std::vector<std::map<std::string, PatchResult>> alone(3);
    const std::vector<std::pair<std::string, std::string>> sites = {{"resid_pre", "by_pos"}, {"attn_out", "by_pos"},
                                                                     {"z", "all_pos"}};
    for (int r = 0; r < 3; ++r) {
      auto t = [](const std::vector<int64_t>& v) { return at::tensor(v, at::kLong).view({1, -1}); };
      ActivationPatching ap(*m, t(clean[r]), t(corrupted[r]), PatchMetric{"logit_diff", {answer[r]}, {wrong[r]}});
      for (const auto& [site, mode] : sites) alone[r][site] = ap.run(site, mode);
    }
    for (PaddingSide side : {PaddingSide::Right, PaddingSide::Left}) {
      TokenBatch c = pad_token_rows(clean, side, 0), x = pad_token_rows(corrupted, side, 0);
      const int64_t S = c.tokens.size(1);
      ActivationPatching ap(*m, c.tokens, x.tokens, PatchMetric{"logit_diff", answer, wrong}, c.attention_mask);
      ap.token_budget = 30;  // several chunks and p0 groups
      double corrupted_mean = 0, clean_mean = 0;
      for (int r = 0; r < 3; ++r)
        corrupted_mean += alone[r]["resid_pre"].corrupted_metric / 3, clean_mean += alone[r]["resid_pre"].clean_metric / 3;
      EXPECT_NEAR(ap.corrupted_metric(), corrupted_mean, 1e-5);
      EXPECT_NEAR(ap.clean_metric(), clean_mean, 1e-5);
      for (const auto& [site, mode] : sites) {
        PatchResult a = ap.run(site, mode, true), b = ap.run(site, mode, false);
        const std::string what = std::string(gqa ? "gqa " : "") + (side == PaddingSide::Left ? "left " : "right ") + site;
        EXPECT_CLOSE(a.grid, b.grid, 2e-5, what << " batched vs unbatched");
        at::Tensor want = at::zeros_like(a.grid);
        for (int r = 0; r < 3; ++r) {
          const int64_t n = static_cast<int64_t>(clean[r].size()), shift = side == PaddingSide::Left ? S - n : 0;
          const at::Tensor& g = alone[r][site].grid;
          if (mode == "all_pos") {
            want += g / 3;
            continue;
          }
          for (int64_t p = 0; p < S; ++p) {
            const int64_t q = p - shift;
            at::Tensor col = q >= 0 && q < n ? g.select(1, q) : at::full({g.size(0)}, alone[r][site].corrupted_metric);
            want.select(1, p) += col / 3;
          }
        }
        EXPECT_CLOSE(a.grid, want, 2e-5, what << " vs each prompt alone");
      }
    }
  }
}
