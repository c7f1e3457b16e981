// Residual-stream analysis on a cache, matching TransformerLens's ActivationCache:
// accumulated_resid (logit lens), decompose_resid, stack_head_results,
// stack_neuron_results, apply_ln_to_stack, logit_attrs and
// get_full_resid_decomposition. Stacks are [component, batch, (pos,) d_model] with
// TransformerLens's labels ("0_pre", "embed", "L1H2", "L0N5", "bias", ...).
#pragma once
#include <ATen/ATen.h>

#include <optional>
#include <string>
#include <vector>

#include "mechlens/model/activation_cache.h"
#include "mechlens/model/hooked_transformer.h"

namespace mechlens {

struct ComponentStack {
  at::Tensor stack;                 // [component, batch, (pos,) d_model]
  std::vector<std::string> labels;  // one per component
};

// A position selection as TL's pos_slice: all positions, or one index (negative
// counts from the end) which removes the position axis.
using PosSlice = std::optional<int64_t>;

class ResidualAnalysis {
 public:
  // The cache must hold the hooks the calls need (a full run_with_cache does).
  ResidualAnalysis(const HookedTransformer& model, const ActivationCache& cache);

  // layer -1 means all layers (n_layers): the stack then ends with "final_post".
  ComponentStack accumulated_resid(int layer = -1, bool incl_mid = false, bool apply_ln = false, PosSlice pos = {},
                                   bool mlp_input = false) const;
  ComponentStack decompose_resid(int layer = -1, bool mlp_input = false, bool apply_ln = false, PosSlice pos = {},
                                 bool incl_embeds = true, const std::string& mode = "all") const;
  // Per-head outputs (z @ W_O per head; hook_result when cached).
  ComponentStack stack_head_results(int layer = -1, bool apply_ln = false, PosSlice pos = {}) const;
  // Per-neuron outputs post[..., n] * W_out[n] for neurons [n_begin, n_end) of every layer.
  ComponentStack stack_neuron_results(int layer = -1, PosSlice pos = {}, int64_t n_begin = 0, int64_t n_end = -1,
                                      bool apply_ln = false) const;
  ComponentStack get_full_resid_decomposition(int layer = -1, bool mlp_input = false, bool expand_neurons = false,
                                              bool apply_ln = false, PosSlice pos = {}) const;

  // As TL: centre (LayerNorm models) and divide by the cached scale of the norm that
  // reads the residual at `layer` (-1 / n_layers: ln_final). Weights and biases of the
  // norm are NOT applied.
  at::Tensor apply_ln_to_stack(const at::Tensor& stack, int layer = -1, bool mlp_input = false, PosSlice pos = {}) const;

  // TL's logit_attrs: (apply_ln_to_stack(stack) * (W_U[:, answer] - W_U[:, wrong])).sum(-1).
  // answer / wrong: one id, or one per batch row. wrong may be empty.
  at::Tensor logit_attrs(const at::Tensor& stack, const std::vector<int64_t>& answer,
                         const std::vector<int64_t>& wrong = {}, PosSlice pos = -1) const;

  // Direct logit attribution that sums to the logit (difference) exactly, also on
  // unprocessed weights: the final norm's weight is folded into the direction, and
  // its bias plus b_U make one extra constant. TL's logit_attrs ignores them, so on
  // unprocessed weights its attributions do not sum to the logit difference.
  struct ExactAttribution {
    at::Tensor attrs;      // [component, batch]
    at::Tensor constant;   // [batch]: ln_final.b . direction + b_U[answer] - b_U[wrong]
    at::Tensor total;      // [batch]: attrs.sum(0) + constant == the logit (difference)
    std::string note;      // what was folded, for the user
  };
  ExactAttribution exact_logit_attrs(const at::Tensor& stack, const std::vector<int64_t>& answer,
                                     const std::vector<int64_t>& wrong = {}, PosSlice pos = -1) const;

  // The residual directions of tokens: W_U[:, id] ([d_model] or [batch, d_model]).
  at::Tensor token_directions(const std::vector<int64_t>& ids) const;
  // W_U[:, answer] - W_U[:, wrong] (or just W_U[:, answer] when wrong is empty).
  at::Tensor logit_direction(const std::vector<int64_t>& answer, const std::vector<int64_t>& wrong) const;

 private:
  int resolve_layer(int layer) const;
  const at::Tensor& get(const std::string& name) const;
  at::Tensor head_results(int layer) const;  // [b, p, h, d]

  const HookedTransformer& model_;
  const ActivationCache& cache_;
};

// Applies a PosSlice to `dim` of t.
at::Tensor apply_pos(const at::Tensor& t, PosSlice pos, int64_t dim);

}  // namespace mechlens
