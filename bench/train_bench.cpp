// Training benchmark: epochs (or steps) per second of a recipe's training loop, with
// the loss curve beside it so the comparison with the PyTorch baseline
// (../shared/reference/baselines/grokking_torch.py, induction_torch.py) is like for like.
#include "train_bench.h"

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cstdlib>
#include <filesystem>

#include "mechlens/core/error.h"
#include "mechlens/train/metrics_store.h"
#include "mechlens/train/tasks/grokking.h"
#include "mechlens/train/tasks/induction.h"

namespace mechlens::bench {

namespace fs = std::filesystem;

namespace {
std::string scratch() {
  std::string t = (fs::temp_directory_path() / "mechlens-bench-train-XXXXXX").string();
  if (!mkdtemp(t.data())) throw Error("bench train: cannot create a scratch folder");
  return t;
}
nlohmann::json curve(const MetricsStore& s, const std::string& name, int64_t every) {
  nlohmann::json out = nlohmann::json::array();
  for (auto [step, v] : s.series(name))
    if (step % every == 0) out.push_back({step, v});
  return out;
}
}  // namespace

nlohmann::json run_train_bench(const TrainBenchOptions& o) {
  const std::string dir = scratch();
  // --profile FILE: a Chrome trace (chrome://tracing) of every ATen op of the run.
  std::unique_ptr<torch::autograd::profiler::RecordProfile> prof;
  if (!o.profile.empty()) prof = std::make_unique<torch::autograd::profiler::RecordProfile>(o.profile);
  nlohmann::json j = {{"bench", "train"}, {"task", o.task}, {"threads", at::get_num_threads()}};
  try {
    if (o.task == "grokking") {
      GrokkingConfig c;
      c.p = o.p, c.frac_train = o.frac_train, c.epochs = o.epochs, c.seed = o.seed, c.checkpoints = 2;
      c.validate("bench train");
      GrokkingTask task(c);
      TrainResult r = train(task, c.trainer_config(), dir, false);
      MetricsStore s(dir + "/metrics.sqlite");
      j.update({{"p", c.p}, {"frac_train", c.frac_train}, {"epochs_run", r.steps_run}, {"wall_s", r.wall_s},
                {"epochs_per_s", r.steps_run / r.wall_s},
                {"final_train_loss", s.series("train_loss").back().second},
                {"final_test_loss", s.series("test_loss").back().second},
                {"test_curve_every_100", curve(s, "test_loss", 100)}});
    } else if (o.task == "induction") {
      InductionConfig c;
      c.steps = o.steps, c.seed = o.seed, c.checkpoints = 2, c.eval_every = 50;
      c.validate("bench train");
      InductionTask task(c);
      TrainResult r = train(task, c.trainer_config(), dir, false);
      MetricsStore s(dir + "/metrics.sqlite");
      j.update({{"steps_run", r.steps_run}, {"wall_s", r.wall_s}, {"steps_per_s", r.steps_run / r.wall_s},
                {"final_train_loss", s.series("train_loss").back().second},
                {"loss_curve_every_100", curve(s, "train_loss", 100)}});
    } else {
      throw Error("bench train: --task must be grokking or induction");
    }
  } catch (...) {
    prof.reset();
    fs::remove_all(dir);
    throw;
  }
  prof.reset();
  fs::remove_all(dir);
  return j;
}

}  // namespace mechlens::bench
