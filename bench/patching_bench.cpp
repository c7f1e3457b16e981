// Patching benchmark: median seconds of the batched exact sweep over a random-weight
// model of a preset shape; attribution patching's time and its correlation with the
// exact grid; optionally the unbatched sweep (TransformerLens's algorithm, in C++) and
// the largest difference between the two grids.
#include "patching_bench.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>

#include "mechlens/analysis/patching.h"
#include "mechlens/core/error.h"
#include "mechlens/model/hooked_transformer.h"

namespace mechlens::bench {

nlohmann::json run_patching_bench(const PatchingBenchOptions& o) {
  if (o.batch < 1 || o.seq < 2 || o.iters < 1) throw Error("bench: batch >= 1, seq >= 2, iters >= 1");
  ModelConfig cfg = ModelConfig::preset(o.config);
  if (o.seq > cfg.n_ctx) throw Error("bench: --seq is longer than n_ctx");
  HookedTransformer model(cfg, random_state_dict(cfg, 0), "none");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(2);
  at::Tensor clean = at::randint(cfg.d_vocab, {o.batch, o.seq}, gen, at::kLong);
  // Corrupt two positions of every row (as in the golden patching case).
  at::Tensor corrupted = clean.clone();
  for (int64_t r = 0; r < o.batch; ++r)
    for (int64_t p : {int64_t(o.seq / 5), int64_t(o.seq - 2)})
      corrupted[r][p] = (clean[r][p].item<int64_t>() + cfg.d_vocab / 2) % cfg.d_vocab;
  PatchMetric metric{"logit_diff", {7}, {11}};
  auto now = [] { return std::chrono::steady_clock::now(); };
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };

  auto t0 = now();
  ActivationPatching ap(model, clean, corrupted, metric);
  const double setup_s = secs(t0, now());
  std::vector<double> times;
  PatchResult r;
  for (int i = 0; i < o.iters; ++i) {
    auto a = now();
    r = ap.run(o.site, o.mode, true);
    times.push_back(secs(a, now()));
  }
  std::sort(times.begin(), times.end());
  auto a = now();
  PatchResult attr = ap.attribution(o.site, o.mode);
  const double attr_s = secs(a, now());
  nlohmann::json j = {{"bench", "patching"},
                      {"config", o.config},
                      {"batch", o.batch},
                      {"seq", o.seq},
                      {"site", o.site},
                      {"mode", o.mode},
                      {"threads", at::get_num_threads()},
                      {"patches", r.patches},
                      {"skipped_identical", r.skipped},
                      {"sweep_s", times[times.size() / 2]},
                      {"setup_s", setup_s},
                      {"attribution_s", attr_s},
                      {"attribution_correlation", grid_correlation(attr.grid, r.grid)}};
  if (o.reference) {
    auto b = now();
    PatchResult ref = ap.run(o.site, o.mode, false);
    j["unbatched_s"] = secs(b, now());
    j["max_abs_diff_vs_unbatched"] = (ref.grid - r.grid).abs().max().item<double>();
    j["speedup_vs_unbatched"] = j["unbatched_s"].get<double>() / j["sweep_s"].get<double>();
  }
  return j;
}

}  // namespace mechlens::bench
