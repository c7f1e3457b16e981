// `mechlens bench train --task grokking|induction`: a recipe's training loop (the real
// trainer: metrics store, checkpoints, resume state) in a scratch folder, timed.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace mechlens::bench {

struct TrainBenchOptions {
  std::string task = "grokking";
  int64_t p = 113;
  double frac_train = 0.3;
  int64_t epochs = 200;  // grokking
  int64_t steps = 1500;  // induction
  uint64_t seed = 0;
  std::string profile;  // Chrome trace of the ATen ops
};

nlohmann::json run_train_bench(const TrainBenchOptions& o);

}  // namespace mechlens::bench
