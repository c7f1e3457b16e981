// Generation: greedy tokens equal TransformerLens's (with and without its KV cache),
// the KV cache agrees with recomputation, and hooks keep firing while generating.
#include <gtest/gtest.h>

#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "mechlens/model/generate.h"
#include "test_util.h"
#include "mechlens/core/error.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

class GreedyMatchesTL : public ::testing::TestWithParam<std::string> {};

TEST_P(GreedyMatchesTL, WithAndWithoutKVCache) {
  REQUIRE_GOLDEN();
  const std::string dir = golden_dir() + "/" + GetParam();
  auto tl = SafetensorsFile::open(dir + "/tl_techniques.safetensors");
  at::Tensor prompt = SafetensorsFile::open(dir + "/expected.safetensors")->get("input_ids").slice(0, 0, 1).slice(1, 0, 5);
  for (bool processed : {false, true}) {
    LoadOptions lo;
    if (processed) lo.processing = ProcessingOptions::tl_defaults();
    auto m = load_model(dir, lo);
    const std::string p = processed ? "processed" : "unprocessed";
    for (bool kv : {true, false}) {
      GenerateOptions g;
      g.max_new_tokens = 8;
      g.use_kv_cache = kv;
      at::Tensor out = generate(*m, prompt, g);
      at::Tensor want = tl->get(p + ".generate.greedy.use_past_kv_cache_" + (kv ? "true" : "false"));
      EXPECT_TRUE(at::equal(out, want)) << p << " kv=" << kv << "\n" << out << "\n" << want;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Families, GreedyMatchesTL, ::testing::Values("gpt2", "llama"),
                         [](const auto& info) { return info.param; });

TEST(Generate, KVCacheAgreesWithRecomputationOnEveryFamily) {
  REQUIRE_GOLDEN();
  for (const char* fam : {"gpt2", "gpt_neo", "gpt_neox", "llama", "gptj", "opt", "mistral", "gemma"}) {
    auto m = load_model(golden_dir() + "/" + fam);
    at::Tensor tokens = SafetensorsFile::open(golden_dir() + "/" + fam + "/expected.safetensors")->get("input_ids");
    at::Tensor full = m->forward(tokens);
    // Feed the same tokens through the cache: 5, then 1 at a time.
    KVCache cache;
    ForwardOptions fo;
    fo.kv_cache = &cache;
    std::vector<at::Tensor> parts{m->forward(tokens.slice(1, 0, 5), fo)};
    for (int64_t p = 5; p < tokens.size(1); ++p) parts.push_back(m->forward(tokens.slice(1, p, p + 1), fo));
    EXPECT_CLOSE(at::cat(parts, 1), full, 1e-4, fam);
    GenerateOptions g;
    g.max_new_tokens = 10;
    at::Tensor a = generate(*m, tokens, g);
    g.use_kv_cache = false;
    EXPECT_TRUE(at::equal(a, generate(*m, tokens, g))) << fam;
  }
}

TEST(Generate, HooksFireWhileGeneratingAndSamplingIsSeeded) {
  ModelConfig c;
  c.n_layers = 2, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_mlp = 64, c.d_vocab = 50, c.n_ctx = 32;
  HookedTransformer m(c, random_state_dict(c, 5), "none");
  at::Tensor prompt = at::tensor(std::vector<int64_t>{1, 2, 3}, at::kLong).view({1, 3});
  int calls = 0;
  m.add_hook(names_in({"blocks.1.attn.hook_pattern"}), [&calls](const at::Tensor& x, const HookPoint&) {
    ++calls;
    return x;
  });
  GenerateOptions g;
  g.max_new_tokens = 6;
  g.temperature = 1.0, g.top_k = 10, g.top_p = 0.9, g.seed = 42;
  at::Tensor a = generate(m, prompt, g);
  EXPECT_EQ(calls, 6);
  EXPECT_TRUE(at::equal(a, generate(m, prompt, g)));  // same seed, same tokens
  g.use_kv_cache = false;
  EXPECT_TRUE(at::equal(a, generate(m, prompt, g)));  // cache or not, same sample
  m.reset_hooks();
  g.max_new_tokens = 40;
  EXPECT_THROW(generate(m, prompt, g), Error);  // past n_ctx
}
