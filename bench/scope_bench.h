// `mechlens bench scope`: building the neuron index vs a plain forward over the same
// batches, on a random-weight model of a preset shape.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace mechlens::bench {

struct ScopeBenchOptions {
  std::string config = "gpt2-small";
  int64_t tokens = 20000;
  int64_t ctx = 64;
  int64_t batch = 8;
  int64_t top_k = 20;
};

nlohmann::json run_scope_bench(const ScopeBenchOptions& o);

}  // namespace mechlens::bench
