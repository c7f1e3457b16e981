// Engine benchmark: median milliseconds of forward, run_with_cache (all hooks) and
// run_with_cache (one hook) on a random-weight model of a preset shape, plus the peak
// extra resident memory of forward and of run_with_cache(one hook), each measured in
// a fresh child process.
#include "engine_bench.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>

#include "mechlens/core/error.h"
#include "mechlens/model/hooked_transformer.h"

namespace mechlens::bench {

namespace {

double median_ms(int warmup, int iters, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

long status_kb(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field, 0) == 0) return std::atol(line.c_str() + std::strlen(field));
  return -1;
}

// Runs fn in a forked child after resetting its peak RSS; returns the peak growth in MiB.
double peak_extra_mib(const std::function<void()>& fn) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    at::set_num_threads(1);
    { std::ofstream("/proc/self/clear_refs") << "5"; }  // reset VmHWM to the current RSS
    long before = status_kb("VmRSS:");
    fn();
    long peak = status_kb("VmHWM:");
    double mib = (peak - before) / 1024.0;
    ssize_t w = ::write(fds[1], &mib, sizeof(mib));
    (void)w;
    ::_exit(0);
  }
  ::close(fds[1]);
  double mib = -1;
  ssize_t r = ::read(fds[0], &mib, sizeof(mib));
  (void)r;
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return mib;
}

}  // namespace

nlohmann::json run_engine_bench(const EngineBenchOptions& o) {
  if (o.batch < 1 || o.seq < 1 || o.iters < 1 || o.warmup < 0) throw Error("bench: batch, seq and iters must be >= 1");
  ModelConfig cfg = ModelConfig::preset(o.config);
  if (o.seq > cfg.n_ctx) throw Error("bench: --seq is longer than n_ctx");
  HookedTransformer model(cfg, random_state_dict(cfg, 0), "none");
  if (!model.hook(o.one_hook)) throw Error("bench: no hook point named " + o.one_hook);
  auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
  at::Tensor tokens = at::randint(cfg.d_vocab, {o.batch, o.seq}, gen, at::kLong);
  at::NoGradGuard no_grad;

  double fwd = median_ms(o.warmup, o.iters, [&] { model.forward(tokens); });
  size_t n_cached = 0;
  double cache_all = median_ms(o.warmup, o.iters, [&] { n_cached = model.run_with_cache(tokens).second.size(); });
  NameFilter one = names_in({o.one_hook});
  double cache_one = median_ms(o.warmup, o.iters, [&] { model.run_with_cache(tokens, one); });

  nlohmann::json j = {{"bench", "engine"},
                      {"config", o.config},
                      {"batch", o.batch},
                      {"seq", o.seq},
                      {"iters", o.iters},
                      {"threads", at::get_num_threads()},
                      {"forward_ms", fwd},
                      {"run_with_cache_all_ms", cache_all},
                      {"run_with_cache_one_ms", cache_one},
                      {"cache_all_over_forward", cache_all / fwd},
                      {"hooks_cached_all", n_cached},
                      {"one_hook", o.one_hook}};
  if (o.memory) {
    at::Tensor hook_tensor = model.run_with_cache(tokens, one).second[o.one_hook];
    j["peak_extra_mib_forward"] = peak_extra_mib([&] { model.forward(tokens); });
    j["peak_extra_mib_cache_one"] = peak_extra_mib([&] { model.run_with_cache(tokens, one); });
    j["one_hook_tensor_mib"] = hook_tensor.numel() * hook_tensor.element_size() / (1024.0 * 1024.0);
  }
  return j;
}

}  // namespace mechlens::bench
