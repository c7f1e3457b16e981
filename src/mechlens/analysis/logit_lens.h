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

struct LogitLensTop {
  std::vector<std::string> labels;
  at::Tensor ids, log_probs;  // [component, batch, pos, k]
};
// The top-k tokens at every layer and position, one component at a time (memory
// [batch, pos, vocab], not [component, batch, pos, vocab]).
LogitLensTop logit_lens_top(HookedTransformer& m, const at::Tensor& tokens, int64_t k, bool incl_mid = false);

}  // namespace mechlens
