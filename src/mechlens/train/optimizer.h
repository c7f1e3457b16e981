// libtorch's own optimizers (torch::optim AdamW, Adam, SGD) behind a small interface, so
// only optimizer.cpp pays for <torch/torch.h>. The optimizer updates the model's
// storages in place; its moments can be saved and restored exactly for --resume.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mechlens/model/weights.h"

namespace mechlens {

struct OptimizerConfig {
  std::string kind = "adamw";  // adamw | adam | sgd
  double lr = 1e-3;
  double weight_decay = 0.0;   // decoupled for adamw; L2 added to the gradient for adam and sgd
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double momentum = 0.0;       // sgd
  void validate(const std::string& where) const;
};

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

class Optimizer {
 public:
  // `params` are leaves that require grad; their names key the saved state.
  Optimizer(const OptimizerConfig& cfg, NamedTensors params);
  ~Optimizer();
  void zero_grad();
  // Clips the global gradient norm to max_norm (when > 0); returns the norm before clipping.
  double clip_grad_norm(double max_norm);
  // One update with learning rate lr.
  void step(double lr);
  // Moments and step counts as tensors named "<param>.exp_avg" & co.
  StateDict state() const;
  // Restores what state() returned; throws Error naming `where` on a mismatch.
  void load_state(const StateDict& s, const std::string& where);
  const NamedTensors& params() const { return params_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  OptimizerConfig cfg_;
  NamedTensors params_;
};

}  // namespace mechlens
