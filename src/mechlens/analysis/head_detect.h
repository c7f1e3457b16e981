// Head detectors. detect_head follows TransformerLens's head_detector: a [pos, pos]
// detection pattern (previous-token, duplicate-token, induction, or a custom one) is
// compared with every head's attention on one sequence, by "mul" (share of the head's
// attention that falls on the pattern) or "abs" (1 - mean |pattern - attention| * pos,
// rounded to 3 decimals). Plus the induction score on repeated random tokens and the
// prefix-matching score of Olsson et al. 2022.
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "mechlens/model/hooked_transformer.h"

namespace mechlens {

at::Tensor previous_token_pattern(const at::Tensor& tokens);   // tokens [pos] -> [pos, pos]
at::Tensor duplicate_token_pattern(const at::Tensor& tokens);
at::Tensor induction_pattern(const at::Tensor& tokens);
// "previous_token_head" / "previous", "duplicate_token_head" / "duplicate",
// "induction_head" / "induction".
at::Tensor detection_pattern(const std::string& name, const at::Tensor& tokens);

struct DetectOptions {
  bool exclude_bos = false;
  bool exclude_current_token = false;
  std::string error_measure = "mul";  // mul | abs
};

// tokens: [pos] or [1, pos]. Returns [n_layers, n_heads].
at::Tensor detect_head(HookedTransformer& m, const at::Tensor& tokens, const at::Tensor& pattern,
                       const DetectOptions& opts = {});

// A BOS token followed by `half` random tokens repeated twice: [1, 1 + 2 * half].
at::Tensor repeated_random_tokens(const HookedTransformer& m, int64_t half, uint64_t seed, int64_t bos);

// Mean attention from each token of the second repeat to the token after its earlier
// occurrence (the induction stripe), per head: [L, H]. On repeated random tokens this
// is also Olsson et al. 2022's prefix-matching score. tokens as repeated_random_tokens.
at::Tensor induction_scores(HookedTransformer& m, const at::Tensor& repeated);

}  // namespace mechlens
