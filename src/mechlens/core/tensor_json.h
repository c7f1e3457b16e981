// Results as JSON: a tensor of any rank as nested arrays of numbers (what the CLI's
// --json, the explorer's API and saved reports print).
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

namespace mechlens {

// A 0-d tensor is a number; rank r gives arrays nested r deep. Values as float64.
nlohmann::json to_json(const at::Tensor& t);

}  // namespace mechlens
