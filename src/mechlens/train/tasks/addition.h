// n-digit addition (Nanda et al.'s 5-digit toy model): a4..a0 + b4..b0 = c5..c0, most
// significant digit first, c5 the leading carry; 1 layer, d_model 128, 4 heads, d_mlp
// 512, ReLU, no LayerNorm, the authors' init; the loss is the mean of the per-answer-digit
// cross-entropies (float64), each digit predicted from the position before it. A fresh
// batch per step (infinite data). Each answer digit has its own phase change.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/train/trainer.h"

namespace mechlens {

struct AdditionConfig {
  int digits = 5;
  int d_model = 128, n_heads = 4, d_mlp = 512;
  int64_t batch = 64, steps = 3000;
  double lr = 1e-3, weight_decay = 1.0, beta1 = 0.9, beta2 = 0.98;
  int64_t warmup = 10;
  uint64_t seed = 0;
  int64_t eval_every = 50;
  int smooth = 25;
  std::string checkpoint_schedule = "linear";
  int checkpoints = 31;
  int64_t save_every = 0;

  int64_t n_ctx() const { return 3 * digits + 3; }  // a + b = c (c has digits + 1)
  void validate(const std::string& where) const;
  nlohmann::json to_json() const;
  static AdditionConfig from_json(const nlohmann::json& j, const std::string& where);
  ModelConfig model_config() const;
  TrainerConfig trainer_config() const;
};

// [batch, 3 * digits + 3] sequences of random sums, drawn from (seed, step) alone.
at::Tensor addition_batch(const AdditionConfig& cfg, uint64_t seed, int64_t step, int64_t batch);
// Per-answer-digit cross-entropy [digits + 1] (leading carry first) of a batch, float64.
at::Tensor per_digit_loss(HookedTransformer& m, const AdditionConfig& cfg, const at::Tensor& tokens);

class AdditionTask : public TrainTask {
 public:
  explicit AdditionTask(const AdditionConfig& cfg);
  NamedTensors parameters() override { return model_->parameters(); }
  at::Tensor loss(int64_t step, Metrics& m) override;
  void evaluate(int64_t step, Metrics& m) override;
  void save_checkpoint(const std::string& dir) override;

 private:
  AdditionConfig cfg_;
  std::unique_ptr<HookedTransformer> model_;
  at::Tensor test_;
};

// "c5" .. "c0": the name of answer digit i (0 = the leading carry).
std::string answer_digit_name(const AdditionConfig& cfg, int i);

nlohmann::json run_addition(const AdditionConfig& cfg, const std::string& run_dir, bool resume);
nlohmann::json analyze_addition(const std::string& run_dir);

}  // namespace mechlens
