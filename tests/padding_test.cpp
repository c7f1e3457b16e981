// Ragged batches and what memory a run takes: padded batches (left and right) give each
// sequence its unpadded logits at its real positions and TransformerLens's logits
// everywhere; the masked loss is the mean over real next tokens; rope_scaling follows
// its formulas; masks and rotary tables are sized by the run, not by n_ctx.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "mechlens/model/components.h"
#include "mechlens/model/generate.h"
#include "mechlens/tokenize/tokens.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

namespace {

// Real positions of row i: right padding the first n_i, left padding the last n_i.
at::Tensor real_part(const at::Tensor& x, int64_t row, int64_t n, bool left) {
  const int64_t p = x.size(1);
  return left ? x[row].slice(0, p - n, p) : x[row].slice(0, 0, n);
}

}  // namespace

class PaddedGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(PaddedGolden, LeftAndRightPaddingMatchUnpaddedHFAndTL) {
  REQUIRE_GOLDEN();
  const std::string dir = golden_dir() + "/" + GetParam();
  if (!file_exists(dir + "/padded.safetensors")) GTEST_SKIP() << dir << " has no padded.safetensors";
  auto model = load_model(dir);
  auto pad = SafetensorsFile::open(dir + "/padded.safetensors");
  std::vector<at::Tensor> alone;
  for (int i = 0; pad->contains("input_ids_unpadded_" + std::to_string(i)); ++i)
    alone.push_back(pad->get("logits_unpadded_" + std::to_string(i)));
  ASSERT_EQ(alone.size(), 3u);
  for (const bool left : {false, true}) {
    const std::string side = left ? "left" : "right";
    at::Tensor ids = pad->get("input_ids_" + side), mask = pad->get("attention_mask_" + side);
    ForwardOptions o;
    o.attention_mask = mask;
    at::Tensor logits = model->forward(ids, o);
    at::Tensor n = mask.sum(1);
    for (int64_t i = 0; i < ids.size(0); ++i) {
      const int64_t ni = n[i].item<int64_t>();
      EXPECT_CLOSE(real_part(logits, i, ni, left), alone[i][0], 1e-4, side << " row " << i << " vs unpadded");
      EXPECT_CLOSE(real_part(logits, i, ni, left), real_part(pad->get("logits_" + side), i, ni, left), 1e-4,
                   side << " row " << i << " vs HF padded");
    }
    // TransformerLens's semantics hold at pad slots too (pads' positions, embeddings and
    // fully masked query rows), so its logits match everywhere.
    if (pad->contains("tl_logits_" + side)) EXPECT_CLOSE(logits, pad->get("tl_logits_" + side), 1e-4, side << " vs TL");
    // The same batch from ragged rows through pad_token_rows.
    std::vector<std::vector<int64_t>> rows;
    for (size_t i = 0; i < alone.size(); ++i) rows.push_back(to_vector(pad->get("input_ids_unpadded_" + std::to_string(i))));
    TokenBatch b = pad_token_rows(rows, left ? PaddingSide::Left : PaddingSide::Right, model->cfg().eos_token_id);
    EXPECT_TRUE(at::equal(b.attention_mask, mask.to(at::kLong))) << side;
    EXPECT_TRUE(at::equal(b.tokens, ids)) << side;
  }
}

INSTANTIATE_TEST_SUITE_P(Families, PaddedGolden, ::testing::Values("gpt2", "llama"),
                         [](const auto& info) { return info.param; });

// The masked loss is TransformerLens's: mean over positions whose token and next token
// are both real, which is the token-weighted mean of the sequences' own losses.
TEST(Padding, MaskedLossIsTheMeanOverRealNextTokens) {
  ModelConfig c = ModelConfig::preset("gpt2-tiny");
  c.d_vocab = 97, c.n_layers = 1, c.d_model = 32, c.d_head = 8, c.d_mlp = 64, c.eos_token_id = 0;
  HookedTransformer m(c, random_state_dict(c, 3));
  std::vector<std::vector<int64_t>> rows = {{5, 9, 13, 2, 7}, {4, 8}, {1, 2, 3}};
  double sum = 0;
  int64_t count = 0;
  for (const auto& r : rows) {
    at::Tensor t = at::tensor(r, at::kLong).view({1, -1});
    at::Tensor per = HookedTransformer::per_token_loss(m.forward(t), t);
    sum += per.sum().item<double>(), count += per.numel();
  }
  for (PaddingSide side : {PaddingSide::Right, PaddingSide::Left}) {
    TokenBatch b = pad_token_rows(rows, side, 0);
    ForwardOptions o;
    o.attention_mask = b.attention_mask;
    at::Tensor logits = m.forward(b.tokens, o);
    EXPECT_NEAR(HookedTransformer::loss(logits, b.tokens, b.attention_mask).item<double>(), sum / count, 1e-5);
    at::Tensor last = last_real_positions(b.attention_mask, 3, b.tokens.size(1));
    EXPECT_EQ(to_vector(last), side == PaddingSide::Right ? std::vector<int64_t>({4, 1, 2})
                                                          : std::vector<int64_t>({4, 4, 4}));
  }
  // An all-ones mask changes nothing.
  TokenBatch eq = pad_token_rows({{1, 2, 3}, {4, 5, 6}}, PaddingSide::Right, 0);
  EXPECT_FALSE(eq.attention_mask.defined());
  ForwardOptions ones;
  ones.attention_mask = at::ones({2, 3}, at::kLong);
  EXPECT_CLOSE(m.forward(eq.tokens, ones), m.forward(eq.tokens), 1e-6, "all-ones mask");
  ones.attention_mask = at::ones({2, 4}, at::kLong);
  EXPECT_THROW(m.forward(eq.tokens, ones), Error);
}

// ---- rope_scaling against its formulas ------------------------------------------------------

namespace {
ModelConfig rope_cfg(RopeScaling s, double factor) {
  ModelConfig c;
  c.positional_embedding_type = PosEmbed::Rotary;
  c.d_head = 16, c.n_heads = 2, c.d_model = 32, c.n_ctx = 256, c.rotary_base = 10000;
  c.rope_scaling = s, c.rope_factor = factor;
  return c;
}
std::vector<double> plain_inv_freq(int dim, double base) {
  std::vector<double> f;
  for (int i = 0; i < dim; i += 2) f.push_back(1.0 / std::pow(base, double(i) / dim));
  return f;
}
}  // namespace

TEST(RopeScaling, LinearDividesPositionsByTheFactor) {
  ModelConfig c = rope_cfg(RopeScaling::Linear, 4.0);
  RotaryTables r;
  r.init(c);
  auto [cos, sin] = r.upto(64);
  auto f = plain_inv_freq(16, 10000);
  for (int t : {0, 1, 7, 63})
    for (int i = 0; i < 8; ++i) {
      EXPECT_NEAR(cos[t][i].item<double>(), std::cos(t / 4.0 * f[i]), 2e-6);
      EXPECT_NEAR(sin[t][i + 8].item<double>(), std::sin(t / 4.0 * f[i]), 2e-6);
    }
}

TEST(RopeScaling, DynamicRaisesTheBaseOnlyPastTheOriginalContext) {
  ModelConfig c = rope_cfg(RopeScaling::Dynamic, 2.0);
  c.rope_original_n_ctx = 32;
  RotaryTables r;
  r.init(c);
  auto plain = plain_inv_freq(16, 10000);
  at::Tensor short_run = r.inv_freq(32);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(short_run[i].item<double>(), plain[i], 1e-7);
  const int n = 100;
  const double base = 10000 * std::pow(2.0 * n / 32 - 1.0, 16.0 / 14.0);
  auto want = plain_inv_freq(16, base);
  at::Tensor long_run = r.inv_freq(n);
  for (int i = 0; i < 8; ++i) EXPECT_NEAR(long_run[i].item<double>() / want[i], 1.0, 1e-5) << i;
  auto [cos, sin] = r.upto(n);
  EXPECT_NEAR(cos[n - 1][3].item<double>(), std::cos((n - 1) * want[3]), 1e-4);
}

TEST(RopeScaling, Llama3KeepsHighDividesLowAndBlendsTheMiddle) {
  ModelConfig c = rope_cfg(RopeScaling::Llama3, 8.0);
  c.d_head = 128, c.d_model = 256, c.rotary_base = 500000, c.rope_low_freq_factor = 1, c.rope_high_freq_factor = 4;
  c.rope_original_n_ctx = 8192;
  RotaryTables r;
  r.init(c);
  at::Tensor got = r.inv_freq(16);
  auto f = plain_inv_freq(128, 500000);
  int high = 0, low = 0, mid = 0;
  for (int i = 0; i < 64; ++i) {
    const double wavelen = 2 * M_PI / f[i];
    double want;
    if (wavelen < 8192 / 4.0) want = f[i], ++high;
    else if (wavelen > 8192 / 1.0) want = f[i] / 8, ++low;
    else {
      const double s = (8192 / wavelen - 1) / (4 - 1);
      want = (1 - s) * f[i] / 8 + s * f[i], ++mid;
    }
    EXPECT_NEAR(got[i].item<double>() / want, 1.0, 1e-5) << i;
  }
  EXPECT_GT(high, 0);
  EXPECT_GT(low, 0);
  EXPECT_GT(mid, 0);
}

// An HF config with rope_scaling loads with it; unknown types are a clear error.
TEST(RopeScaling, ReadFromHFConfig) {
  char tmpl[] = "/tmp/mechlens_ropeXXXXXX";
  const std::string dir = mkdtemp(tmpl);
  json hf = {{"model_type", "llama"}, {"hidden_size", 32}, {"num_hidden_layers", 1}, {"num_attention_heads", 2},
             {"intermediate_size", 64}, {"vocab_size", 50}, {"max_position_embeddings", 64},
             {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                               {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 16}}}};
  ModelConfig c;
  c.normalization_type = NormType::RMS, c.gated_mlp = true, c.act_fn = ActFn::Silu, c.d_model = 32, c.n_heads = 2;
  c.d_head = 16, c.d_mlp = 64, c.d_vocab = 50, c.n_ctx = 64, c.n_layers = 1, c.positional_embedding_type = PosEmbed::Rotary;
  StateDict sd = random_state_dict(c, 1);
  std::vector<std::pair<std::string, at::Tensor>> ts = {{"model.embed_tokens.weight", sd.at("embed.W_E")},
                                                        {"model.norm.weight", at::ones({32})},
                                                        {"lm_head.weight", sd.at("unembed.W_U").t().contiguous()}};
  const std::string s = "model.layers.0.";
  for (const char* n : {"q_proj", "k_proj", "v_proj"}) ts.push_back({s + "self_attn." + n + ".weight", at::randn({32, 32})});
  ts.push_back({s + "self_attn.o_proj.weight", at::randn({32, 32})});
  for (const char* n : {"gate_proj", "up_proj"}) ts.push_back({s + "mlp." + n + ".weight", at::randn({64, 32})});
  ts.push_back({s + "mlp.down_proj.weight", at::randn({32, 64})});
  ts.push_back({s + "input_layernorm.weight", at::ones({32})});
  ts.push_back({s + "post_attention_layernorm.weight", at::ones({32})});
  save_safetensors(dir + "/model.safetensors", ts);
  write_file_atomic(dir + "/config.json", hf.dump());
  auto m = load_model(dir);
  EXPECT_EQ(m->cfg().rope_scaling, RopeScaling::Llama3);
  EXPECT_EQ(m->cfg().rope_original_n_ctx, 16);
  EXPECT_EQ(m->forward(at::tensor({1, 2, 3}, at::kLong).view({1, 3})).size(2), 50);
  hf["rope_scaling"] = {{"type", "yarn"}, {"factor", 4.0}};
  write_file_atomic(dir + "/config.json", hf.dump());
  EXPECT_THROW(load_model(dir), Error);
  std::system(("rm -rf " + dir).c_str());
}

// ---- memory sized by the run -------------------------------------------------------------------

namespace {
int64_t rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}
}  // namespace

// n_ctx 32,768 and 16 layers: a per-layer [n_ctx, n_ctx] mask would be 16 GiB and the
// rotary tables 2 MiB a layer. Built and run on a short prompt, the model takes about
// its weights.
TEST(Memory, LongContextModelRunsAShortPromptInItsWeightSize) {
  for (PosEmbed pe : {PosEmbed::Rotary, PosEmbed::Standard}) {
    ModelConfig c;
    c.n_layers = 16, c.d_model = 64, c.n_heads = 4, c.d_head = 16, c.d_mlp = 128, c.d_vocab = 100, c.n_ctx = 32768;
    c.positional_embedding_type = pe;
    c.attn_types.assign(16, AttnType::Global);
    c.attn_types[3] = AttnType::Local, c.window_size = 4;
    const int64_t before = rss_bytes();
    int64_t weight_bytes = 0;
    {
      HookedTransformer m(c, random_state_dict(c, 0));
      for (const auto& [n, t] : m.parameters()) weight_bytes += t.numel() * t.element_size();
      at::NoGradGuard g;
      at::Tensor logits = m.forward(at::randint(0, 100, {2, 12}, at::kLong));
      EXPECT_EQ(logits.size(1), 12);
      const int64_t used = rss_bytes() - before;
      EXPECT_LT(used, weight_bytes + (64 << 20)) << "RSS grew by " << used << " for " << weight_bytes << " weight bytes";
    }
  }
}

// Greedy generation from a left-padded batch continues each prompt as it would alone,
// with and without the key/value cache; right padding is refused.
TEST(Padding, LeftPaddedGenerationEqualsEachPromptAlone) {
  for (PosEmbed pe : {PosEmbed::Standard, PosEmbed::Rotary}) {
    ModelConfig c;
    c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_mlp = 64, c.d_vocab = 61, c.n_ctx = 32;
    c.positional_embedding_type = pe;
    HookedTransformer m(c, random_state_dict(c, 5));
    std::vector<std::vector<int64_t>> rows = {{5, 9, 13, 2, 7}, {4, 8}, {1, 2, 3}};
    TokenBatch b = pad_token_rows(rows, PaddingSide::Left, 0);
    for (bool kv : {true, false}) {
      GenerateOptions o;
      o.max_new_tokens = 6, o.use_kv_cache = kv, o.attention_mask = b.attention_mask;
      at::Tensor out = generate(m, b.tokens, o);
      GenerateOptions alone = o;
      alone.attention_mask = at::Tensor();
      for (size_t i = 0; i < rows.size(); ++i) {
        at::Tensor want = generate(m, at::tensor(rows[i], at::kLong).view({1, -1}), alone);
        EXPECT_TRUE(at::equal(out[i].slice(0, b.tokens.size(1)), want[0].slice(0, rows[i].size())))
            << "row " << i << (kv ? " kv" : " no kv");
      }
    }
    GenerateOptions right;
    right.attention_mask = pad_token_rows(rows, PaddingSide::Right, 0).attention_mask;
    EXPECT_THROW(generate(m, pad_token_rows(rows, PaddingSide::Right, 0).tokens, right), Error);
  }
}
