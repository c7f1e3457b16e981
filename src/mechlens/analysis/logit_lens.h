// The logit lens (nostalgebraist): the residual stream after every layer, put through
// the final norm with its own scale and the unembedding, as log-probabilities.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "mechlens/analysis/residual.h"
#include "mechlens/model/hooked_transformer.h"

namespace mechlens {

struct LogitLens {
  std::vector<std::string> labels;  // "0_pre", "1_pre", ..., "final_post" (with "_mid" when incl_mid)
  at::Tensor log_probs;             // [component, batch, vocab] at `pos`, or [component, batch, pos, vocab]
};
// tokens [batch, pos]; pos: one position (negative from the end) or all ({}).
LogitLens logit_lens(HookedTransformer& m, const at::Tensor& tokens, bool incl_mid = false, PosSlice pos = -1);

// One component of a lens at one position (log_probs [component, batch, vocab]): its
// top-k tokens in batch row `row` and, for an answer token (>= 0), the answer's
// log-probability and rank (how many tokens score higher; 0 = the top token).
struct LensReading {
  std::string label;
  std::vector<int64_t> top_ids;
  std::vector<double> top_log_probs;
  double answer_log_prob = 0;
  int64_t answer_rank = -1;  // -1 without an answer
};
std::vector<LensReading> lens_readings(const LogitLens& lens, int64_t k, int64_t answer = -1, int64_t row = 0);

struct LogitLensTop {
  std::vector<std::string> labels;
  at::Tensor ids, log_probs;  // [component, batch, pos, k]
};
// The top-k tokens at every layer and position, one component at a time (memory
// [batch, pos, vocab], not [component, batch, pos, vocab]).
LogitLensTop logit_lens_top(HookedTransformer& m, const at::Tensor& tokens, int64_t k, bool incl_mid = false);

}  // namespace mechlens
