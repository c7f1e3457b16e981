#include "mechlens/train/schedule.h"

#include <algorithm>
#include <cmath>

#include "mechlens/core/error.h"

namespace mechlens {

void LrSchedule::validate(const std::string& where) const {
  if (kind != "constant" && kind != "cosine") fail(where, "schedule must be constant or cosine, not " + kind);
  if (warmup_steps < 0) fail(where, "warm-up steps must be >= 0");
  if (!(min_lr_frac >= 0 && min_lr_frac <= 1)) fail(where, "min lr fraction must lie in [0, 1]");
  if (total_steps < 1) fail(where, "the number of steps must be >= 1");
}

double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step < warmup_steps) return base_lr * static_cast<double>(step) / warmup_steps;
  if (kind == "constant") return base_lr;
  const double span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double t = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
  return base_lr * (min_lr_frac + (1 - min_lr_frac) * 0.5 * (1 + std::cos(M_PI * t)));
}

std::vector<int64_t> checkpoint_steps(const std::string& kind, int count, int64_t total) {
  if (kind != "linear" && kind != "log") throw Error("checkpoint schedule must be linear or log, not " + kind);
  if (count < 2) throw Error("need at least 2 checkpoints (the first and the last)");
  std::vector<int64_t> s{0, total};
  for (int i = 1; i < count - 1; ++i) {
    const double f = static_cast<double>(i) / (count - 1);
    s.push_back(kind == "linear" ? std::llround(f * total)
                                 : std::llround(std::pow(static_cast<double>(total), f)));  // 1 .. total
  }
  std::sort(s.begin(), s.end());
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

}  // namespace mechlens
