// `mechlens bench engine`: forward and run_with_cache timings on random weights.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace mechlens::bench {

struct EngineBenchOptions {
  std::string config = "gpt2-small";
  int batch = 2;
  int seq = 20;
  int iters = 10;
  int warmup = 2;
  std::string one_hook = "blocks.6.hook_resid_post";
  bool memory = true;
};

nlohmann::json run_engine_bench(const EngineBenchOptions& o);

}  // namespace mechlens::bench
