// Parity with TransformerLens 2.10.0: every cache tensor, hook names in execution
// order, logits and loss, for from_pretrained_no_processing ("unprocessed") and
// from_pretrained defaults ("processed": fold_ln, center_writing_weights,
// center_unembed, fold_value_biases).
#include <gtest/gtest.h>

#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

struct TLCase {
  std::string family;
  bool processed;
};
// Readable names in test listings.
inline void PrintTo(const TLCase& c, std::ostream* os) { *os << c.family << (c.processed ? " processed" : " unprocessed"); }

class TLParity : public ::testing::TestWithParam<TLCase> {};

TEST_P(TLParity, EveryCacheTensor) {
  REQUIRE_GOLDEN();
  const auto& c = GetParam();
  const std::string dir = golden_dir() + "/" + c.family;
  const std::string which = c.processed ? "processed" : "unprocessed";
  LoadOptions opts;
  opts.processing = c.processed ? ProcessingOptions::tl_defaults() : ProcessingOptions::none();
  auto model = load_model(dir, opts);
  auto tl = SafetensorsFile::open(dir + "/tl_cache_" + which + ".safetensors");
  at::Tensor tokens = SafetensorsFile::open(dir + "/expected.safetensors")->get("input_ids");
  auto [logits, cache] = model->run_with_cache(tokens);

  // Same hook names, same execution order.
  json names = read_json_file(dir + "/tl_hook_names.json")[which];
  EXPECT_EQ(cache.names(), names.get<std::vector<std::string>>());

  int compared = 0;
  for (const auto& key : tl->keys()) {
    if (key == "logits" || key == "loss") continue;
    ASSERT_TRUE(cache.contains(key)) << key;
    EXPECT_CLOSE(cache[key], tl->get(key), 1e-4, key);
    ++compared;
  }
  EXPECT_EQ(compared, static_cast<int>(names.size()));
  EXPECT_CLOSE(logits, tl->get("logits"), 1e-4, "logits");
  EXPECT_NEAR(HookedTransformer::loss(logits, tokens).item<double>(), tl->get("loss").item<double>(), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Families, TLParity,
                         ::testing::Values(TLCase{"gpt2", false}, TLCase{"gpt2", true}, TLCase{"gpt_neox", false},
                                           TLCase{"gpt_neox", true}, TLCase{"llama", false}, TLCase{"llama", true},
                                           TLCase{"qwen2", false}, TLCase{"qwen2", true}, TLCase{"phi3", false},
                                           TLCase{"phi3", true}),
                         [](const auto& info) {
                           return info.param.family + (info.param.processed ? "_processed" : "_unprocessed");
                         });
