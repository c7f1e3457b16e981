// Grokking on modular addition (Nanda et al. 2023): the authors' task, split, model,
// init and training loop, and the analyses that run over its checkpoints.
//   task   (a + b) mod p, input [a, b, =] with '=' = token p; loss at the last position
//   split  pairs (a, b) in row-major order, Python's random.seed(seed); random.shuffle;
//          the first int(frac_train * p^2) train
//   model  1 layer, d_model 128, 4 heads of 32, d_mlp 512, ReLU, no LayerNorm, learned
//          positions, no attention or unembedding biases; init randn / sqrt(fan) in the
//          authors' parameter order after torch.manual_seed(seed)
//   train  AdamW lr 1e-3, weight decay 1, betas (0.9, 0.98), warm-up min(step / 10, 1),
//          full batch, cross-entropy in float64
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/train/trainer.h"

namespace mechlens {

struct GrokkingConfig {
  int64_t p = 113;
  double frac_train = 0.5;
  uint64_t seed = 0;
  int64_t epochs = 2000;
  double lr = 1e-3, weight_decay = 1.0, beta1 = 0.9, beta2 = 0.98;
  int64_t warmup = 10;
  int64_t eval_every = 10;
  double stop_test_loss = -1;  // stop once an evaluated test loss is below this (> 0)
  int d_model = 128, n_heads = 4, d_mlp = 512;
  bool float64_loss = true;
  std::string checkpoint_schedule = "linear";
  int checkpoints = 41;
  int64_t save_every = 0;  // resume-state period in epochs (0: every 10 s)

  void validate(const std::string& where) const;
  nlohmann::json to_json() const;
  static GrokkingConfig from_json(const nlohmann::json& j, const std::string& where);
  ModelConfig model_config() const;
  TrainerConfig trainer_config() const;
};

// The authors' initial weights in TransformerLens layout (zero attention and unembed biases).
StateDict grokking_init(const GrokkingConfig& cfg);

struct ModularData {
  at::Tensor train_x, train_y, test_x, test_y;  // [n, 3] int64, [n] int64
  at::Tensor all_x, all_y;                      // every (a, b), row a * p + b
  at::Tensor is_train;                          // [p * p] bool, per row of all_x
};
ModularData modular_addition_data(int64_t p, double frac_train, uint64_t seed);

// Cross-entropy of logits [n, c] against labels [n], computed in float64 when asked.
at::Tensor cross_entropy(const at::Tensor& logits, const at::Tensor& labels, bool float64);

class GrokkingTask : public TrainTask {
 public:
  explicit GrokkingTask(const GrokkingConfig& cfg);
  NamedTensors parameters() override { return model_->parameters(); }
  at::Tensor loss(int64_t step, Metrics& m) override;
  void evaluate(int64_t step, Metrics& m) override;
  bool should_stop(const Metrics& eval) override;
  void save_checkpoint(const std::string& dir) override;
  HookedTransformer& model() { return *model_; }

 private:
  GrokkingConfig cfg_;
  ModularData data_;
  std::unique_ptr<HookedTransformer> model_;
};

// Trains (or resumes) a grokking run in run_dir, then analyses it. Returns the summary.
nlohmann::json run_grokking(const GrokkingConfig& cfg, const std::string& run_dir, bool resume);
// Runs the analyses over every checkpoint of run_dir into its metrics.sqlite and
// rewrites summary.json (and report.html); returns the summary.
nlohmann::json analyze_grokking(const std::string& run_dir);

}  // namespace mechlens
