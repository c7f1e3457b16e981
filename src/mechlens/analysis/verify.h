// A parity report for a model folder: identities that must hold whatever the weights
// (the residual stream adds up, weight processing keeps log-probabilities, the KV cache
// and padding change nothing), each with its measured error and a tolerance, and, given
// a golden folder (../shared/golden's layout: expected.safetensors, tl_cache_*), the
// difference of every reference tensor. Run it on a new checkpoint before trusting a
// result from it.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace mechlens {

struct VerifyCheck {
  std::string name;     // e.g. "resid_pre + attn_out = resid_mid"
  double error = 0;     // max abs difference measured
  double tolerance = 0;
  bool ok() const { return error <= tolerance; }
};

struct VerifyOptions {
  std::string reference_dir;  // optional golden folder
  int64_t seq = 12;           // length of the random test prompts (capped by n_ctx)
  uint64_t seed = 0;
};

struct VerifyReport {
  std::vector<VerifyCheck> checks;
  bool ok() const;
  nlohmann::json to_json() const;
  std::string table() const;  // one line per check, aligned
};

// Throws mechlens::Error naming the folder for unreadable models or references.
VerifyReport verify_model(const std::string& model_dir, const VerifyOptions& opts = {});

}  // namespace mechlens
