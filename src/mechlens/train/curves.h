// Reading curves (step, value): moving averages and first crossings, shared by the
// recipes' analyses.
#pragma once
#include <nlohmann/json.hpp>

#include "mechlens/train/report.h"

namespace mechlens {

// Mean over each window of w consecutive points, labelled with the window's last step.
Series moving_average(const Series& s, int w);
// The first step whose value is < th (>= th), or null.
nlohmann::json first_below(const Series& s, double th);
nlohmann::json first_at_least(const Series& s, double th);
// The largest fall s[i] - s[i + w] and the step midway through it ({null, null} if too short).
std::pair<nlohmann::json, nlohmann::json> steepest_drop(const Series& s, int w);

}  // namespace mechlens
