// `mechlens bench patching`: the full layers x positions activation-patching sweep.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace mechlens::bench {

struct PatchingBenchOptions {
  std::string config = "gpt2-small";
  int batch = 2;
  int seq = 20;
  std::string site = "resid_pre";
  std::string mode = "by_pos";
  int iters = 3;
  bool reference = false;  // also time the unbatched, one-forward-per-index sweep and compare
};

nlohmann::json run_patching_bench(const PatchingBenchOptions& o);

}  // namespace mechlens::bench
