// Toy models of superposition (Elhage et al. 2022): the ReLU output model
// x' = ReLU(W^T W x + b) per instance, W [instances, features, hidden] (xavier-normal
// over the joint tensor, as the authors' colab), b = 0; each feature is U[0, 1) with
// its instance's probability, else 0; loss = sum over instances of the mean over batch
// and features of importance * (x - x')^2; AdamW lr 1e-3 (weight decay 0.01), batch
// 1024. Many instances train at once as a batch dimension.
#pragma once
#include <ATen/ATen.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mechlens/train/trainer.h"

namespace mechlens {

struct SuperpositionConfig {
  int64_t features = 5, hidden = 2;
  std::vector<double> sparsity = {0.0, 0.7, 0.9, 0.97, 0.98, 0.99};  // S = 1 - feature probability
  int64_t instances = 10;  // per sparsity
  double importance_decay = 0.9;  // importance_i = decay^i
  bool relu = true;               // false: the linear model x' = W^T W x + b
  bool phase_diagram = false;     // 2 features in 1 dimension over a sparsity x importance grid
  int64_t batch = 1024, steps = 10000;
  double lr = 1e-3, weight_decay = 0.01;
  uint64_t seed = 0;
  std::string checkpoint_schedule = "log";
  int checkpoints = 11;
  int64_t save_every = 0;

  void validate(const std::string& where) const;
  nlohmann::json to_json() const;
  static SuperpositionConfig from_json(const nlohmann::json& j, const std::string& where);
  TrainerConfig trainer_config() const;
  // Per instance: feature probability [I] and importance [I, F].
  at::Tensor probabilities() const;
  at::Tensor importances() const;
  std::vector<double> instance_importance_ratio() const;  // phase diagram: importance of feature 1
};

class SuperpositionTask : public TrainTask {
 public:
  explicit SuperpositionTask(const SuperpositionConfig& cfg);
  NamedTensors parameters() override { return {{"W", W_}, {"b", b_}}; }
  at::Tensor loss(int64_t step, Metrics& m) override;
  void evaluate(int64_t step, Metrics& m) override;
  void save_checkpoint(const std::string& dir) override;
  const at::Tensor& W() const { return W_; }
  const at::Tensor& b() const { return b_; }
  // Per-instance loss [I] on a batch.
  at::Tensor instance_loss(const at::Tensor& x) const;
  at::Tensor batch(uint64_t seed, int64_t step, int64_t n) const;

 private:
  SuperpositionConfig cfg_;
  at::Tensor W_, b_, prob_, importance_;
};

// Dimensions per feature D_i = ||W_i||^2 / sum_j (W^_i . W_j)^2 for one instance's
// W [features, hidden]; 0 for features with (near) zero norm. For a tight frame the
// D_i sum to the hidden size.
at::Tensor dimensions_per_feature(const at::Tensor& W);

// The geometry of one instance: "pentagon", "orthogonal2", "two_pairs" (antipodal),
// "antipodal", "dedicated1", "none", or "other_k" with k represented features.
struct Geometry {
  std::string name;
  std::vector<int64_t> represented;  // features with ||W_i|| > 0.5
  std::vector<double> angles_deg;    // of the represented features (hidden = 2), sorted
};
Geometry classify_geometry(const at::Tensor& W);

// Loads checkpoints/step_N/superposition.safetensors.
std::pair<at::Tensor, at::Tensor> load_superposition_checkpoint(const std::string& dir);

nlohmann::json run_superposition(const SuperpositionConfig& cfg, const std::string& run_dir, bool resume);
nlohmann::json analyze_superposition(const std::string& run_dir);

}  // namespace mechlens
