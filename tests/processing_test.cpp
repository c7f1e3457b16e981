// Weight processing keeps log-probabilities (on every family), the TL steps do what
// TL does, and refactor_factored_attn_matrices keeps QK and OV products.
#include <gtest/gtest.h>

#include "mechlens/core/error.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

class ProcessingKeepsLogProbs : public ::testing::TestWithParam<std::string> {};

TEST_P(ProcessingKeepsLogProbs, AllFamilies) {
  REQUIRE_GOLDEN();
  const std::string dir = golden_dir() + "/" + GetParam();
  at::Tensor tokens = SafetensorsFile::open(dir + "/expected.safetensors")->get("input_ids");
  auto raw = load_model(dir);
  LoadOptions tl;
  tl.processing = ProcessingOptions::tl_defaults();
  auto processed = load_model(dir, tl);
  EXPECT_NE(processed->processing().find("fold_ln"), std::string::npos);
  EXPECT_CLOSE(raw->forward(tokens).log_softmax(-1), processed->forward(tokens).log_softmax(-1), 1e-4, "log_softmax");
  const auto& c = processed->cfg();
  EXPECT_TRUE(c.normalization_type == NormType::LNPre || c.normalization_type == NormType::RMSPre)
      << to_string(c.normalization_type);
  // center_unembed: W_U rows sum to zero; fold_value_biases: b_V is zero.
  EXPECT_LT(processed->state_dict().at("unembed.W_U").sum(-1).abs().max().item<double>(), 1e-4);
  EXPECT_EQ(processed->state_dict().at("blocks.0.attn.b_V").abs().max().item<double>(), 0.0);
  if (c.normalization_type == NormType::LNPre) {  // center_writing_weights
    EXPECT_LT(processed->state_dict().at("embed.W_E").mean(-1).abs().max().item<double>(), 1e-5);
    EXPECT_LT(processed->state_dict().at("blocks.1.attn.W_O").mean(-1).abs().max().item<double>(), 1e-5);
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ProcessingKeepsLogProbs,
                         ::testing::Values("gpt2", "gpt_neo", "gpt_neox", "llama", "gptj", "opt", "mistral", "gemma"),
                         [](const auto& info) { return info.param; });

TEST(Processing, RefactorKeepsQKAndOVProducts) {
  REQUIRE_GOLDEN();
  const std::string dir = golden_dir() + "/gpt2";
  at::Tensor tokens = SafetensorsFile::open(dir + "/expected.safetensors")->get("input_ids");
  LoadOptions a, b;
  a.processing = ProcessingOptions::tl_defaults();
  b.processing = ProcessingOptions::parse("tl+refactor");
  auto plain = load_model(dir, a), refac = load_model(dir, b);
  EXPECT_CLOSE(plain->forward(tokens), refac->forward(tokens), 1e-4, "logits");
  const auto& p = plain->state_dict();
  const auto& r = refac->state_dict();
  for (int l = 0; l < 2; ++l) {
    const std::string s = "blocks." + std::to_string(l) + ".attn.";
    auto qk = [&](const StateDict& sd) { return at::matmul(sd.at(s + "W_Q"), sd.at(s + "W_K").transpose(-1, -2)); };
    auto ov = [&](const StateDict& sd) { return at::matmul(sd.at(s + "W_V"), sd.at(s + "W_O")); };
    EXPECT_CLOSE(qk(p), qk(r), 1e-4, "QK");
    EXPECT_CLOSE(ov(p), ov(r), 1e-4, "OV");
    // Balanced factors: W_Q^T W_Q == W_K^T W_K (both diag(S)).
    at::Tensor gq = at::matmul(r.at(s + "W_Q").transpose(-1, -2), r.at(s + "W_Q"));
    at::Tensor bq = r.at(s + "b_Q").unsqueeze(-1) * r.at(s + "b_Q").unsqueeze(-2);
    at::Tensor gk = at::matmul(r.at(s + "W_K").transpose(-1, -2), r.at(s + "W_K"));
    at::Tensor bk = r.at(s + "b_K").unsqueeze(-1) * r.at(s + "b_K").unsqueeze(-2);
    EXPECT_CLOSE(gq + bq, gk + bk, 1e-3, "balanced QK factors");
  }
  LoadOptions rotary;
  rotary.processing = ProcessingOptions::parse("tl+refactor");
  EXPECT_THROW(load_model(golden_dir() + "/gpt_neox", rotary), Error);
}

TEST(Processing, ParseAndDescribe) {
  EXPECT_EQ(ProcessingOptions::parse("none").describe(), "none");
  EXPECT_EQ(ProcessingOptions::parse("tl").describe(),
            "tl (fold_ln, center_writing_weights, center_unembed, fold_value_biases)");
  EXPECT_TRUE(ProcessingOptions::parse("fold_ln,center_unembed").center_unembed);
  EXPECT_THROW(ProcessingOptions::parse("fold"), Error);
}
