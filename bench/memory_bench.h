// `mechlens bench memory`: the resident memory of a random model of a real shape
// against its weight bytes.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace mechlens::bench {

struct MemoryBenchOptions {
  std::string config = "gpt2-xl";  // a preset: gpt2-xl, pythia-1.4b, llama-3-8b, mistral-7b, ...
  std::string dtype = "bfloat16";
  int batch = 2;
  int seq = 64;
  int threads = 2;
};

nlohmann::json run_memory_bench(const MemoryBenchOptions& o);

}  // namespace mechlens::bench
