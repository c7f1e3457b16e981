// mechlens's own checkpoint format round-trips exactly, for converted HF models and
// for toy models of any config.
#include <gtest/gtest.h>

#include <cstdlib>

#include "mechlens/core/error.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

namespace {
std::string temp_dir() {
  char tmpl[] = "/tmp/mechlens_ckptXXXXXX";
  return mkdtemp(tmpl);
}
void expect_roundtrip(const HookedTransformer& m, const at::Tensor& tokens) {
  const std::string dir = temp_dir();
  save_checkpoint(m, dir);
  auto back = load_model(dir);
  EXPECT_EQ(back->cfg().to_json().dump(), m.cfg().to_json().dump());
  EXPECT_EQ(back->processing(), m.processing());
  ASSERT_EQ(back->state_dict().size(), m.state_dict().size());
  for (const auto& [name, t] : m.state_dict()) EXPECT_TRUE(at::equal(back->state_dict().at(name), t)) << name;
  auto& mm = const_cast<HookedTransformer&>(m);
  EXPECT_TRUE(at::equal(back->forward(tokens), mm.forward(tokens)));
  std::system(("rm -rf " + dir).c_str());
}
}  // namespace

TEST(Checkpoint, ToyModelsOfAnyConfigRoundTrip) {
  at::Tensor tokens = at::tensor(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, at::kLong).view({1, 6});
  for (int layers = 1; layers <= 4; ++layers) {
    ModelConfig c;
    c.attn_only = true, c.n_layers = layers, c.d_model = 32, c.n_heads = 4, c.d_head = 8, c.d_vocab = 20, c.n_ctx = 8;
    HookedTransformer m(c, random_state_dict(c, layers), "none");
    expect_roundtrip(m, tokens);
  }
  for (ActFn act : {ActFn::Gelu, ActFn::SoluLn, ActFn::Relu, ActFn::GeluNew, ActFn::Silu}) {
    ModelConfig c;
    c.n_layers = 1, c.d_model = 16, c.n_heads = 2, c.d_head = 8, c.d_mlp = 32, c.d_vocab = 20, c.n_ctx = 8;
    c.act_fn = act;
    HookedTransformer m(c, random_state_dict(c, 3), "none");
    expect_roundtrip(m, tokens);
    if (act == ActFn::SoluLn) {
      auto [logits, cache] = m.run_with_cache(tokens);
      EXPECT_TRUE(cache.contains("blocks.0.mlp.hook_mid"));
      EXPECT_TRUE(cache.contains("blocks.0.mlp.ln.hook_normalized"));
    }
  }
}

TEST(Checkpoint, ConvertedAndProcessedModelsRoundTrip) {
  REQUIRE_GOLDEN();
  at::Tensor tokens = SafetensorsFile::open(golden_dir() + "/llama/expected.safetensors")->get("input_ids");
  expect_roundtrip(*load_model(golden_dir() + "/llama"), tokens);
  LoadOptions tl;
  tl.processing = ProcessingOptions::tl_defaults();
  expect_roundtrip(*load_model(golden_dir() + "/gpt2", tl), tokens);
}

TEST(Checkpoint, MismatchedWeightsAreRejected) {
  ModelConfig c;
  c.n_layers = 1, c.d_model = 16, c.n_heads = 2, c.d_head = 8, c.d_mlp = 32, c.d_vocab = 20, c.n_ctx = 8;
  StateDict sd = random_state_dict(c, 1);
  sd["blocks.0.attn.W_Q"] = at::zeros({2, 16, 4});
  EXPECT_THROW(HookedTransformer(c, sd, "none"), Error);
  sd = random_state_dict(c, 1);
  sd.erase("unembed.b_U");
  EXPECT_THROW(HookedTransformer(c, sd, "none"), Error);
  // A checkpoint whose config says 2 layers but holds 1 layer of weights.
  HookedTransformer m(c, random_state_dict(c, 1), "none");
  const std::string dir = temp_dir();
  save_checkpoint(m, dir);
  json j = read_json_file(dir + "/mechlens.json");
  j["config"]["n_layers"] = 2;
  write_file_atomic(dir + "/mechlens.json", j.dump());
  EXPECT_THROW(load_model(dir), Error);
  std::system(("rm -rf " + dir).c_str());
}
