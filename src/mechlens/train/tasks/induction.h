// The induction-head phase change (Olsson et al. 2022) in a 2-layer attention-only
// transformer trained on repeated random subsequences: the toy induction architecture
// (d_model 48, 4 heads of 12, learned positions, no LayerNorm, no biases, init
// randn / sqrt(fan)), AdamW betas (0.9, 0.98), a fresh batch per step. Each sequence is
// seq_len uniform random tokens in which a block X of length L ~ U{min_sub..seq_len/2}
// at a random offset is repeated at once ([prefix | X | X | suffix]); the loss is on
// tokens 2..L of the second copy.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/train/trainer.h"

namespace mechlens {

struct InductionConfig {
  int layers = 2;
  int d_model = 48, n_heads = 4;
  int64_t vocab = 64, seq_len = 64, min_sub = 8, max_sub = -1;  // -1: seq_len / 2
  int64_t batch = 64, steps = 1500;
  double lr = 3e-3, weight_decay = 0.01, beta1 = 0.9, beta2 = 0.98;
  uint64_t seed = 1;
  int64_t eval_every = 50;
  int smooth = 25;
  std::string checkpoint_schedule = "linear";
  int checkpoints = 31;
  int64_t save_every = 0;

  int64_t max_sub_len() const { return max_sub > 0 ? max_sub : seq_len / 2; }
  void validate(const std::string& where) const;
  nlohmann::json to_json() const;
  static InductionConfig from_json(const nlohmann::json& j, const std::string& where);
  ModelConfig model_config() const;
  TrainerConfig trainer_config() const;
};

StateDict induction_init(const InductionConfig& cfg);

// One batch of the repeated-subsequence task, drawn from (seed, step) alone.
struct RepeatBatch {
  at::Tensor tokens;     // [batch, seq_len] int64
  at::Tensor loss_mask;  // [batch, seq_len] bool: positions whose token is predicted
};
RepeatBatch repeat_batch(const InductionConfig& cfg, uint64_t seed, int64_t step);

class InductionTask : public TrainTask {
 public:
  explicit InductionTask(const InductionConfig& cfg);
  NamedTensors parameters() override { return model_->parameters(); }
  at::Tensor loss(int64_t step, Metrics& m) override;
  void evaluate(int64_t step, Metrics& m) override;
  void save_checkpoint(const std::string& dir) override;
  HookedTransformer& model() { return *model_; }

 private:
  InductionConfig cfg_;
  std::unique_ptr<HookedTransformer> model_;
};

// Head scores on [X X] sequences (|X| = seq_len / 2): induction (attention from each
// second-copy token to the token after its first occurrence; on repeated random tokens
// this is also the prefix-matching score), previous-token, and the loss on each half.
struct InductionEval {
  at::Tensor induction, prev_token;  // [layers, heads]
  double first_half_loss = 0, second_half_loss = 0;
};
InductionEval induction_eval(HookedTransformer& m, const InductionConfig& cfg);

nlohmann::json run_induction(const InductionConfig& cfg, const std::string& run_dir, bool resume);
nlohmann::json analyze_induction(const std::string& run_dir);

}  // namespace mechlens
