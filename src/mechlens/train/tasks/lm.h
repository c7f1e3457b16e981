// Toy language models on a text corpus: a SentencePiece vocabulary trained on the
// corpus's training documents (small, so a toy model trains fast on 2 cores: a 50k
// unembedding would dominate its cost), then a 1-4 layer transformer (GELU, SoLU or
// attention-only) trained on random windows of the training stream, with held-out loss
// beside unigram and bigram baselines on the same split, and head scores per checkpoint.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/train/trainer.h"

namespace mechlens {

struct LmConfig {
  std::string corpus = "moby-dick";
  int vocab = 2048;
  int layers = 1;
  bool attn_only = false;
  std::string act = "gelu";  // gelu | solu (SoLU with its LayerNorm)
  int d_model = 128, n_heads = 4, d_mlp = 512;
  int64_t n_ctx = 64, batch = 32, steps = 3000;
  double lr = 1e-3, weight_decay = 0.1, grad_clip = 1.0;
  int64_t warmup = 100;
  // The fraction of training windows in which a span of corpus text is repeated at once
  // ([prefix | X | X | suffix], |X| and its offset random), to give induction something
  // to learn. Held-out windows are always plain text.
  double repeat_frac = 0.0;
  double random_repeat_frac = 0.0;
  bool layernorm = true;  // LayerNorm before each block and the unembedding
  double init_std = 0.02;  // std of the weight matrices (GPT-2's 0.02; output projections / sqrt(2 layers))  // windows of <s> + X + X with X random pieces
  uint64_t seed = 0;
  int64_t eval_every = 100;
  std::string checkpoint_schedule = "log";
  int checkpoints = 16;
  int64_t save_every = 0;

  void validate(const std::string& where) const;
  nlohmann::json to_json() const;
  static LmConfig from_json(const nlohmann::json& j, const std::string& where);
  ModelConfig model_config() const;
  TrainerConfig trainer_config() const;
};

// The token streams of a run: SentencePiece trained once into RUN_DIR/tokenizer.model
// (reused when present), documents encoded with <s> at their start and concatenated.
struct LmData {
  at::Tensor train, heldout;  // [n] int64
  at::Tensor heldout_windows; // [w, n_ctx]: non-overlapping windows of the held-out stream
};
LmData prepare_lm_data(const LmConfig& cfg, const std::string& run_dir);

// One training batch, drawn from (seed, step): windows of the training stream, some with
// a text span repeated (repeat_frac), some replaced by <s> + X + X of random pieces
// (random_repeat_frac). weights [batch, n_ctx - 1] (undefined without random windows)
// weigh each next-token loss: 1 in text windows, only the predictable second copy in
// random ones.
struct LmBatch {
  at::Tensor tokens;          // [batch, n_ctx]
  at::Tensor weights;         // [batch, n_ctx - 1] float, or undefined
  at::Tensor random_windows;  // [batch] bool, or undefined
};
LmBatch lm_batch(const LmConfig& cfg, const at::Tensor& train, int64_t step);

// Unigram and bigram (Dirichlet-smoothed towards the unigram, 100 pseudo-counts) losses of
// the training stream's counts on the held-out windows' next tokens.
std::pair<double, double> ngram_baselines(const at::Tensor& train, const at::Tensor& windows, int64_t vocab);

class LmTask : public TrainTask {
 public:
  LmTask(const LmConfig& cfg, const std::string& run_dir);
  NamedTensors parameters() override { return model_->parameters(); }
  at::Tensor loss(int64_t step, Metrics& m) override;
  void evaluate(int64_t step, Metrics& m) override;
  void save_checkpoint(const std::string& dir) override;

 private:
  LmConfig cfg_;
  std::string run_dir_;
  LmData data_;
  std::unique_ptr<HookedTransformer> model_;
};

nlohmann::json run_lm(const LmConfig& cfg, const std::string& run_dir, bool resume);
nlohmann::json analyze_lm(const std::string& run_dir);

}  // namespace mechlens
