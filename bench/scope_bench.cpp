// Tokens per second of `scope build`'s streaming pass against model.forward over the
// same batches (run first, then the build), plus the fixed costs of the logit effects
// (W_out W_U over the whole vocabulary) and of writing the SQLite file.
#include "scope_bench.h"

#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <unistd.h>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/model/weights.h"
#include "mechlens/scope/index_build.h"

namespace mechlens::bench {

nlohmann::json run_scope_bench(const ScopeBenchOptions& o) {
  ModelConfig cfg = ModelConfig::preset(o.config);
  HookedTransformer m(cfg, random_state_dict(cfg, 0));
  const int64_t docs_n = std::max<int64_t>(1, o.tokens / o.ctx);
  at::manual_seed(1);
  at::Tensor docs = at::randint(cfg.d_vocab, {docs_n, o.ctx}, at::kLong);
  at::NoGradGuard no_grad;
  using clock = std::chrono::steady_clock;
  m.forward(docs.slice(0, 0, std::min(docs_n, o.batch)));  // warm-up
  const auto t0 = clock::now();
  for (int64_t i = 0; i < docs_n; i += o.batch) m.forward(docs.slice(0, i, std::min(docs_n, i + o.batch)));
  const double forward_s = std::chrono::duration<double>(clock::now() - t0).count();

  const std::string out = "/tmp/mechlens_bench_scope_" + std::to_string(::getpid()) + ".db";
  std::remove(out.c_str());
  ScopeBuildOptions so;
  so.top_k = o.top_k, so.batch = o.batch, so.progress = false;
  ScopeBuildStats st = build_neuron_index(m, docs, vocab_strings(nullptr, cfg.d_vocab), {{"kind", "tokens"}, {"name", "random"}}, "", out, so);
  std::remove(out.c_str());
  const double n_tok = static_cast<double>(docs_n * o.ctx);
  return {{"bench", "scope"},
          {"config", o.config},
          {"tokens", docs_n * o.ctx},
          {"ctx", o.ctx},
          {"batch", o.batch},
          {"top_k", o.top_k},
          {"threads", at::get_num_threads()},
          {"forward_s", forward_s},
          {"forward_tokens_per_s", n_tok / forward_s},
          {"index_pass_s", st.pass_s},
          {"index_tokens_per_s", n_tok / st.pass_s},
          {"pass_over_forward", st.pass_s / forward_s},
          {"logit_effects_s", st.logit_effects_s},
          {"write_s", st.write_s},
          {"total_over_forward", (st.pass_s + st.logit_effects_s + st.write_s) / forward_s}};
}

}  // namespace mechlens::bench
