// Learning-rate schedules and checkpoint schedules: pure functions of the step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mechlens {

struct LrSchedule {
  std::string kind = "constant";  // constant | cosine (both after a linear warm-up)
  double base_lr = 1e-3;
  int64_t warmup_steps = 0;       // lr = base * min(step / warmup, 1), as LambdaLR(min(step/w, 1))
  double min_lr_frac = 0.0;       // cosine decays to base * min_lr_frac at total_steps
  int64_t total_steps = 1;
  void validate(const std::string& where) const;
  // The rate used by the update at `step` (0-based: the first update is step 0).
  double at(int64_t step) const;
};

// Steps (0 = the initial weights, total = the final ones) at which checkpoints are
// saved: `count` of them, linearly or log-spaced (rounded, duplicates removed), always
// including 0 and total.
std::vector<int64_t> checkpoint_steps(const std::string& kind, int count, int64_t total);

}  // namespace mechlens
