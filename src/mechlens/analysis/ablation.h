// Ablations and self-repair. Heads (their z), neurons (their hook_post value) and
// whole layers (attn_out / mlp_out) can be zero-, mean- or resample-ablated; the mean
// and the resampled rows come from a reference batch. The self-repair report measures
// every head's direct effect on a logit difference before and after ablating one head,
// so backup heads (e.g. GPT-2 small's backup name movers) stand out.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "mechlens/model/activation_cache.h"
#include "mechlens/model/hooked_transformer.h"

namespace mechlens {

struct AblationTarget {
  std::string kind;   // head | neuron | attn | mlp
  int layer = 0;
  int64_t index = -1; // head or neuron index (unused for attn / mlp)
  static AblationTarget parse(const std::string& spec);  // "L.H" head, "mlp:L", "attn:L", "neuron:L.N"
  std::string hook_name() const;
  std::string label() const;  // L1H2, L3N17, 1_attn_out, 1_mlp_out
};

struct AblationOptions {
  std::string mode = "zero";  // zero | mean | resample
  at::Tensor reference;       // [n, pos] tokens for mean / resample (default: the input itself)
  uint64_t seed = 0;          // resample permutation
};

// A forward hook that ablates the targets sharing one hook name; `batch` is the
// number of rows the hook will see. Throws Error for bad targets or options.
std::vector<ForwardHookSpec> ablation_hooks(HookedTransformer& m, const std::vector<AblationTarget>& targets,
                                            const AblationOptions& opts, int64_t batch);

struct SelfRepairReport {
  AblationTarget ablated;
  std::string mode;
  double logit_diff_clean = 0, logit_diff_ablated = 0;
  at::Tensor direct_before;  // [L, H] each head's direct effect on the logit difference (exact)
  at::Tensor direct_after;   // [L, H] after the ablation
  at::Tensor mlp_before, mlp_after;  // [L] direct effects of MLP layers (zeros if attention-only)
  double ablated_direct_effect = 0;  // the ablated head's direct effect before ablation
  double self_repair = 0;            // how much of that loss the rest of the model made up
  std::vector<std::string> head_labels;
};

// Direct effects at the last position, averaged over the batch, on
// logit[answer] - logit[wrong] (ln_final weight folded, so they add up exactly).
SelfRepairReport self_repair(HookedTransformer& m, const at::Tensor& tokens, const std::vector<int64_t>& answer,
                             const std::vector<int64_t>& wrong, const AblationTarget& head, const AblationOptions& opts);

}  // namespace mechlens
