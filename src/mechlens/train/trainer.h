// The training loop every recipe shares: libtorch optimizer, warm-up / constant / cosine
// learning rate, gradient clipping, evaluation every N steps, checkpoints on a linear or
// log-spaced schedule, metrics in metrics.sqlite, a progress bar, and --resume after a
// kill -9 at any moment with no step lost or repeated.
//
// The run folder:
//   config.json          the recipe's settings (written by the recipe)
//   state.safetensors    every parameter and the optimizer's moments after `next_step`
//                        updates (metadata), rewritten atomically every few seconds
//   checkpoints/step_N/  mechlens checkpoints after N updates (N = 0 is the init)
//   metrics.sqlite       training metrics per step (+ analyses per checkpoint)
//   metrics.jsonl        the same training metrics as JSON lines, written at the end
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mechlens/train/optimizer.h"
#include "mechlens/train/schedule.h"

namespace mechlens {

using Metrics = std::map<std::string, double>;

// What a recipe plugs into the trainer.
class TrainTask {
 public:
  virtual ~TrainTask() = default;
  // Every storage of the model (trainable ones require grad; the rest are saved in the
  // resume state too). Names are stable across runs.
  virtual NamedTensors parameters() = 0;
  // The loss of the update at `step`, on the batch that step owns (drawn from the seed
  // and the step number alone, so a resumed run sees the same batches). May add metrics.
  virtual at::Tensor loss(int64_t step, Metrics& m) = 0;
  // Held-out metrics of the model after `step` updates.
  virtual void evaluate(int64_t step, Metrics& m) {}
  // Stop after this step's update (e.g. the test loss is below a threshold).
  virtual bool should_stop(const Metrics& eval) { return false; }
  // Writes a checkpoint of the current weights into `dir` (created), atomically per file.
  virtual void save_checkpoint(const std::string& dir) = 0;
};

struct TrainerConfig {
  OptimizerConfig optim;
  std::string schedule = "constant";  // constant | cosine
  int64_t warmup_steps = 0;
  double min_lr_frac = 0.0;
  int64_t steps = 1000;
  double grad_clip = 0.0;             // max global norm; 0 = off
  std::string checkpoint_schedule = "log";  // linear | log
  int checkpoints = 20;
  int64_t eval_every = 0;             // 0 = only at the end
  int64_t log_every = 100;            // plain progress lines when stderr is not a terminal
  int64_t save_every = 0;             // resume-state period in steps; 0 = every save_every_s seconds
  double save_every_s = 10.0;
  std::string label = "train";
  void validate(const std::string& where) const;
};

struct TrainResult {
  int64_t steps_run = 0;    // updates done in total (including before a resume)
  int64_t start_step = 0;   // where this invocation started (0 unless resumed)
  bool stopped_early = false;
  double wall_s = 0;        // this invocation's training loop
  std::vector<int64_t> checkpoint_steps;
};

// Runs (or, with resume, continues) training in run_dir. Throws Error naming the file
// on a corrupt or mismatched resume state.
TrainResult train(TrainTask& task, const TrainerConfig& cfg, const std::string& run_dir, bool resume);

// Starts a run folder: writes config.json into a new (or empty) `run_dir`; refuses one
// that already holds a run (continue it with resume instead).
void start_run(const std::string& run_dir, const nlohmann::json& config);
// Whether run_dir already holds a run (its config.json or resume state).
bool holds_run(const std::string& run_dir);
// The config.json of a run folder to resume; throws Error naming the file.
nlohmann::json resume_run(const std::string& run_dir);

// "checkpoints/step_000120" under run_dir.
std::string checkpoint_dir(const std::string& run_dir, int64_t step);
// The checkpoint steps present in run_dir, sorted.
std::vector<int64_t> list_checkpoints(const std::string& run_dir);

}  // namespace mechlens
