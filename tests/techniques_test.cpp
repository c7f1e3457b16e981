// Techniques against TransformerLens 2.10's own outputs (../shared/golden/<family>/
// tl_techniques.*), on unprocessed and processed weights: residual decompositions,
// logit attribution, circuits, composition scores and head detection.
#include <gtest/gtest.h>

#include <algorithm>

#include "mechlens/analysis/circuits.h"
#include "mechlens/analysis/head_detect.h"
#include "mechlens/analysis/residual.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

struct TechCase {
  std::string family;
  bool processed;
};
// Readable names in test listings.
inline void PrintTo(const TechCase& c, std::ostream* os) { *os << c.family << (c.processed ? " processed" : " unprocessed"); }

class Techniques : public ::testing::TestWithParam<TechCase> {
 protected:
  void SetUp() override {
    if (golden_dir().empty()) GTEST_SKIP() << "../shared/golden is absent: TL technique parity not checked";
    const auto& c = GetParam();
    dir = golden_dir() + "/" + c.family;
    prefix = c.processed ? "processed." : "unprocessed.";
    LoadOptions o;
    if (c.processed) o.processing = ProcessingOptions::tl_defaults();
    model = load_model(dir, o);
    tl = SafetensorsFile::open(dir + "/tl_techniques.safetensors");
    meta = read_json_file(dir + "/tl_techniques.json");
    tokens = SafetensorsFile::open(dir + "/expected.safetensors")->get("input_ids");
  }
  at::Tensor want(const std::string& key) { return tl->get(prefix + key); }
  std::vector<std::string> labels(const std::string& key) {
    return meta["entries"][prefix + key]["labels"].get<std::vector<std::string>>();
  }
  std::string dir, prefix;
  std::unique_ptr<HookedTransformer> model;
  std::shared_ptr<SafetensorsFile> tl;
  json meta;
  at::Tensor tokens;
};

TEST_P(Techniques, ResidualStreamAnalysis) {
  auto [logits, cache] = model->run_with_cache(tokens);
  ResidualAnalysis ra(*model, cache);
  auto acc = ra.accumulated_resid(-1, true, true);
  EXPECT_EQ(acc.labels, labels("accumulated_resid.apply_ln"));
  EXPECT_CLOSE(acc.stack, want("accumulated_resid.apply_ln"), 1e-4, "accumulated_resid apply_ln");
  EXPECT_CLOSE(ra.accumulated_resid(-1, true, false).stack, want("accumulated_resid.no_ln"), 1e-4, "accumulated no_ln");
  auto dec = ra.decompose_resid(-1, false, true);
  EXPECT_EQ(dec.labels, labels("decompose_resid.apply_ln"));
  EXPECT_CLOSE(dec.stack, want("decompose_resid.apply_ln"), 1e-4, "decompose_resid apply_ln");
  auto last = ra.decompose_resid(-1, false, false, -1);
  EXPECT_CLOSE(last.stack, want("decompose_resid.no_ln.last_pos"), 1e-4, "decompose_resid last pos");
  auto heads = ra.stack_head_results(-1, true);
  EXPECT_EQ(heads.labels, labels("stack_head_results.apply_ln"));
  EXPECT_CLOSE(heads.stack, want("stack_head_results.apply_ln"), 1e-4, "stack_head_results");
  auto neurons = ra.stack_neuron_results(-1, -1, 0, 64, true);
  EXPECT_EQ(neurons.labels, labels("stack_neuron_results.apply_ln.last_pos"));
  EXPECT_CLOSE(neurons.stack, want("stack_neuron_results.apply_ln.last_pos"), 1e-4, "stack_neuron_results");
  auto full = ra.get_full_resid_decomposition(-1, false, false, true);
  EXPECT_EQ(full.labels, labels("get_full_resid_decomposition.apply_ln"));
  EXPECT_CLOSE(full.stack, want("get_full_resid_decomposition.apply_ln"), 1e-4, "full decomposition");

  // Identities: the decompositions sum to the residual; head results sum to attn_out - b_O.
  const std::string last_post = "blocks." + std::to_string(model->cfg().n_layers - 1) + ".hook_resid_post";
  EXPECT_CLOSE(ra.decompose_resid().stack.sum(0), cache[last_post], 1e-4, "decompose_resid sums to resid");
  EXPECT_CLOSE(ra.get_full_resid_decomposition().stack.sum(0), cache[last_post], 1e-4, "full decomposition sums");
  const auto& sd = model->state_dict();
  auto l1 = ra.stack_head_results(2);
  at::Tensor attn1 = l1.stack.slice(0, model->cfg().n_heads).sum(0);
  EXPECT_CLOSE(attn1 + sd.at("blocks.1.attn.b_O"), cache["blocks.1.hook_attn_out"], 1e-4, "heads sum to attn_out");
}

TEST_P(Techniques, LogitAttribution) {
  auto [logits, cache] = model->run_with_cache(tokens);
  ResidualAnalysis ra(*model, cache);
  at::Tensor stack = ra.decompose_resid(-1, false, false, -1).stack;
  EXPECT_CLOSE(ra.logit_attrs(stack, {7}, {11}), want("logit_attrs.answer_minus_wrong"), 1e-3, "answer - wrong");
  EXPECT_CLOSE(ra.logit_attrs(stack, {7}), want("logit_attrs.answer"), 1e-3, "answer");
  EXPECT_CLOSE(ra.logit_attrs(stack, {7, 11}, {11, 7}), want("logit_attrs.per_batch_tokens"), 1e-3, "per batch");
  // mechlens's exact attribution sums to the real logit difference, processed or not.
  auto exact = ra.exact_logit_attrs(stack, {7}, {11});
  at::Tensor last = logits.select(1, logits.size(1) - 1);
  at::Tensor diff = last.select(-1, 7) - last.select(-1, 11);
  EXPECT_CLOSE(exact.total, diff, 1e-4, "exact attribution sums to the logit difference");
}

TEST_P(Techniques, CircuitsAndComposition) {
  const auto& c = model->cfg();
  FactoredMatrix ov = ov_circuit(*model), qk = qk_circuit(*model);
  EXPECT_CLOSE(ov.S(), want("OV.S"), 1e-3, "OV singular values");
  EXPECT_CLOSE(qk.S(), want("QK.S"), 1e-3, "QK singular values");
  EXPECT_CLOSE(ov[0][0].AB(), want("OV.L0H0.AB"), 1e-4, "OV AB");
  EXPECT_CLOSE(qk[0][0].AB(), want("QK.L0H0.AB"), 1e-4, "QK AB");
  EXPECT_CLOSE(qk[0][0].corner(3), want("QK.L0H0.AB").slice(0, 0, 3).slice(1, 0, 3), 1e-4, "QK corner");
  EXPECT_NEAR(ov[0][0].norm().item<double>(), want("OV.L0H0.AB").norm().item<double>(), 1e-3);
  for (const char* which : {"OV", "QK"}) {
    at::Tensor ev = (std::string(which) == "OV" ? ov : qk)[0][0].eigenvalues();
    // Compare as multisets: sort both by (real, imag).
    auto sorted = [](at::Tensor re, at::Tensor im) {
      std::vector<std::pair<double, double>> v;
      for (int64_t i = 0; i < re.numel(); ++i) v.push_back({re[i].item<double>(), im[i].item<double>()});
      std::sort(v.begin(), v.end());
      return v;
    };
    auto a = sorted(at::real(ev), at::imag(ev));
    auto b = sorted(want(std::string(which) + ".L0H0.eigenvalues.real"), want(std::string(which) + ".L0H0.eigenvalues.imag"));
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_NEAR(a[i].first, b[i].first, 1e-3) << which << " eigenvalue " << i;
      EXPECT_NEAR(std::abs(a[i].second), std::abs(b[i].second), 1e-3) << which << " eigenvalue " << i;
    }
  }
  for (const char* mode : {"Q", "K", "V"})
    EXPECT_CLOSE(all_composition_scores(*model, mode), want(std::string("all_composition_scores.") + mode), 1e-3,
                 "composition " << mode);
  EXPECT_EQ(ov.S().sizes(), (std::vector<int64_t>{c.n_layers, c.n_heads, c.d_head}));
  // Singular directions of the full OV circuit: unit vectors over the vocabulary.
  FactoredMatrix full = full_ov_circuit(*model)[1][2];
  auto d = singular_vector_tokens(full, 0, c.d_vocab);
  EXPECT_NEAR(d.singular_value, full.S()[0].item<double>(), 1e-6);
  double in2 = 0, out2 = 0;
  for (const auto& t : d.inputs) in2 += t.score * t.score;
  for (const auto& t : d.outputs) out2 += t.score * t.score;
  EXPECT_NEAR(in2, 1.0, 1e-4);
  EXPECT_NEAR(out2, 1.0, 1e-4);
  EXPECT_GT(d.outputs.front().score, 0);
}

TEST_P(Techniques, HeadDetection) {
  at::Tensor rep = at::tensor(meta["inputs"]["repeated_sequence"]["tokens"][0].get<std::vector<int64_t>>(), at::kLong);
  for (const char* name : {"previous_token_head", "duplicate_token_head", "induction_head"}) {
    at::Tensor pattern = detection_pattern(name, rep);
    EXPECT_CLOSE(pattern, want(std::string("detection_pattern.") + name), 0, name << " pattern");
    DetectOptions d;
    EXPECT_CLOSE(detect_head(*model, rep, pattern, d), want(std::string("detect_head.") + name + ".default"), 1e-3,
                 name << " default");
    d.exclude_bos = true;
    EXPECT_CLOSE(detect_head(*model, rep, pattern, d), want(std::string("detect_head.") + name + ".exclude_bos"), 1e-3,
                 name << " exclude_bos");
    DetectOptions a;
    a.error_measure = "abs";
    EXPECT_CLOSE(detect_head(*model, rep, pattern, a), want(std::string("detect_head.") + name + ".abs"), 1e-3,
                 name << " abs");
  }
  at::Tensor logits = model->forward(rep.unsqueeze(0));
  EXPECT_CLOSE(HookedTransformer::per_token_loss(logits, rep.unsqueeze(0)), want("loss_per_token.repeated_sequence"), 1e-4,
               "per-token loss");
}

INSTANTIATE_TEST_SUITE_P(TL, Techniques,
                         ::testing::Values(TechCase{"gpt2", false}, TechCase{"gpt2", true}, TechCase{"llama", false},
                                           TechCase{"llama", true}),
                         [](const auto& info) {
                           return info.param.family + (info.param.processed ? "_processed" : "_unprocessed");
                         });
