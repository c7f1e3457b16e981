// mechlens verify: every identity holds on every golden family, with the reference
// differences inside their tolerances; a reference that disagrees is reported as failing.
#include <gtest/gtest.h>

#include <cstdlib>

#include "mechlens/analysis/verify.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/safetensors.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

TEST(Verify, EveryGoldenFamilyPasses) {
  REQUIRE_GOLDEN();
  for (const char* fam : {"gpt2", "gpt_neo", "gpt_neox", "llama", "gptj", "opt", "mistral", "gemma", "qwen2", "phi3"}) {
    VerifyOptions o;
    o.reference_dir = golden_dir() + "/" + fam;
    VerifyReport r = verify_model(golden_dir() + "/" + fam, o);
    EXPECT_TRUE(r.ok()) << fam << "\n" << r.table();
    EXPECT_GE(r.checks.size(), 12u) << fam;  // identities + HF reference (+ TL caches)
  }
}

TEST(Verify, ADisagreeingReferenceFails) {
  REQUIRE_GOLDEN();
  char tmpl[] = "/tmp/mechlens_verifyXXXXXX";
  const std::string ref = mkdtemp(tmpl);
  auto exp = SafetensorsFile::open(golden_dir() + "/gpt2/expected.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> ts;
  for (const auto& k : exp->keys()) ts.push_back({k, k == "logits" ? exp->get(k) + 1e-3 : exp->get(k)});
  save_safetensors(ref + "/expected.safetensors", ts);
  VerifyOptions o;
  o.reference_dir = ref;
  VerifyReport r = verify_model(golden_dir() + "/gpt2", o);
  EXPECT_FALSE(r.ok());
  for (const auto& c : r.checks)
    if (c.name == "reference: logits (HF)") EXPECT_NEAR(c.error, 1e-3, 1e-4);
  // The CLI: 1 when a check fails, 0 when all hold, 2 on bad input.
  const std::string bin = MECHLENS_BINARY;
  EXPECT_EQ(std::system((bin + " verify --model " + golden_dir() + "/gpt2 --reference-dir " + ref + " >/dev/null").c_str()), 1 << 8);
  EXPECT_EQ(std::system((bin + " verify --model " + golden_dir() + "/gpt2 >/dev/null").c_str()), 0);
  EXPECT_EQ(std::system((bin + " verify --model " + ref + "/none 2>/dev/null").c_str()), 2 << 8);
  std::system(("rm -rf " + ref).c_str());
}
