#include "mechlens/train/curves.h"

namespace mechlens {

Series moving_average(const Series& s, int w) {
  Series out;
  if (w < 1) return s;
  double acc = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    acc += s[i].second;
    if (i >= static_cast<size_t>(w)) acc -= s[i - w].second;
    if (i + 1 >= static_cast<size_t>(w)) out.push_back({s[i].first, acc / w});
  }
  return out;
}

nlohmann::json first_below(const Series& s, double th) {
  for (auto [x, v] : s)
    if (v < th) return x;
  return nullptr;
}

nlohmann::json first_at_least(const Series& s, double th) {
  for (auto [x, v] : s)
    if (v >= th) return x;
  return nullptr;
}

std::pair<nlohmann::json, nlohmann::json> steepest_drop(const Series& s, int w) {
  if (w < 1 || s.size() <= static_cast<size_t>(w)) return {nullptr, nullptr};
  double best = -1e300;
  int64_t at = 0;
  for (size_t i = 0; i + w < s.size(); ++i)
    if (s[i].second - s[i + w].second > best) best = s[i].second - s[i + w].second, at = s[i + w / 2].first;
  return {best, at};
}

}  // namespace mechlens
