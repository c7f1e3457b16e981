// Engine benchmark: median milliseconds of forward, run_with_cache (all hooks) and
// run_with_cache (one hook) on a random-weight model of a preset shape, plus the peak
// tensor memory of forward and of run_with_cache(one hook), counted exactly by a
// wrapping CPU allocator.
#include "engine_bench.h"

#include "counting_allocator.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
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

// Peak live tensor bytes above what was live before fn ran, in MiB.
double peak_extra_mib(CountingAllocator& alloc, const std::function<void()>& fn) {
  const int64_t before = alloc.live();
  alloc.reset_peak();
  fn();
  return (alloc.peak() - before) / (1024.0 * 1024.0);
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
    CountingAllocator& alloc = CountingAllocator::install();
    double hook_mib = 0;
    {
      at::Tensor t = model.run_with_cache(tokens, one).second[o.one_hook];
      hook_mib = t.numel() * t.element_size() / (1024.0 * 1024.0);
    }
    const double fwd_mib = peak_extra_mib(alloc, [&] { model.forward(tokens); });
    const double one_mib = peak_extra_mib(alloc, [&] { model.run_with_cache(tokens, one); });
    j["peak_tensor_mib_forward"] = fwd_mib;
    j["peak_tensor_mib_cache_one"] = one_mib;
    j["one_hook_tensor_mib"] = hook_mib;
    j["cache_one_within_forward_plus_hook"] = one_mib <= fwd_mib + hook_mib + 1e-9;
  }
  return j;
}

}  // namespace mechlens::bench
