// Weight processing exactly as TransformerLens's from_pretrained performs it:
// fold_ln, center_writing_weights, center_unembed, fold_value_biases and (optional)
// refactor_factored_attn_matrices. Each keeps the model's log-probabilities the same.
#pragma once
#include <string>

#include "mechlens/model/config.h"
#include "mechlens/model/weights.h"

namespace mechlens {

struct ProcessingOptions {
  bool fold_ln = false;
  bool center_writing_weights = false;
  bool center_unembed = false;
  bool fold_value_biases = false;
  bool refactor_factored_attn_matrices = false;

  static ProcessingOptions none() { return {}; }
  // TransformerLens's from_pretrained defaults.
  static ProcessingOptions tl_defaults() { return {true, true, true, true, false}; }
  // "none", "tl" (from_pretrained defaults), "tl+refactor", or a comma-separated list
  // of the option names. Throws mechlens::Error for anything else.
  static ProcessingOptions parse(const std::string& s);
  bool any() const;
  // "none" or "tl (fold_ln, center_writing_weights, center_unembed, fold_value_biases)".
  std::string describe() const;
};

// Rewrites cfg and sd in place. fold_ln turns LN into LNPre and RMS into RMSPre.
// Steps TransformerLens skips are skipped the same way (centering writing weights
// needs LayerNorm; RMS folding folds no biases).
void process_weights(ModelConfig& cfg, StateDict& sd, const ProcessingOptions& opts);

}  // namespace mechlens
