// Path patching (Wang et al. 2022; Goldowsky-Dill et al. 2023): the effect of each
// sender head's clean output reaching the receivers ONLY directly, with everything
// else in between frozen at its corrupted value. Receivers are heads' query, key or
// value inputs, or the logits (the sender's direct path through the residual stream).
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "mechlens/analysis/patching.h"

namespace mechlens {

struct Receiver {
  int layer = 0;
  int64_t head = 0;
  std::string input = "q";  // q | k | v
  static Receiver parse(const std::string& spec);  // "L.H.q"
};

struct PathPatchResult {
  at::Tensor grid;  // [n_layers, n_heads]: the metric with sender (l, h)'s path patched
  std::vector<std::string> sender_labels;
  std::string receivers;  // "logits" or "L5H1.q, ..."
  double clean_metric = 0, corrupted_metric = 0;
};

// Uses the patching object's caches and metric. Senders that cannot reach a receiver
// (same or later layer) keep the corrupted metric.
PathPatchResult path_patch(HookedTransformer& m, ActivationPatching& ap, const std::vector<Receiver>& receivers);

}  // namespace mechlens
