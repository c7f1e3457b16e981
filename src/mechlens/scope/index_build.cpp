#include "mechlens/scope/index_build.h"

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <unistd.h>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/model/hook_names.h"
#include "mechlens/scope/neuron_index.h"
#include "mechlens/scope/neuron_stats.h"
#include "mechlens/train/progress.h"

namespace mechlens {

using nlohmann::json;

std::string neuron_hook_name(const ModelConfig& cfg, int layer) {
  if (cfg.attn_only) fail("", "the model is attention-only: it has no MLP neurons to index");
  const bool solu = cfg.act_fn == ActFn::SoluLn;
  return act_name(solu ? "mid" : "post", layer);
}

namespace {
// FNV-1a, 64 bits.
struct Fnv {
  uint64_t h = 1469598103934665603ULL;
  void mix(const void* p, size_t n) {
    const auto* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  }
  void mix(const at::Tensor& t) {
    at::Tensor c = t.detach().contiguous().cpu();
    mix(c.data_ptr(), c.numel() * c.element_size());
  }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};
std::string bytes_fingerprint(const at::Tensor& t) {
  Fnv f;
  f.mix(t.to(at::kLong));
  return f.hex();
}
}  // namespace

std::string model_fingerprint(const HookedTransformer& m) {
  Fnv f;
  for (const auto& [name, t] : m.parameters()) {
    f.mix(name.data(), name.size());
    f.mix(t);
  }
  return f.hex();
}

std::vector<std::string> vocab_strings(const Tokenizer* tok, int64_t d_vocab) {
  std::vector<int64_t> ids(d_vocab);
  for (int64_t i = 0; i < d_vocab; ++i) ids[i] = i;
  if (tok) return tok->to_str_tokens(ids);
  std::vector<std::string> out;
  for (int64_t i : ids) out.push_back("<" + std::to_string(i) + ">");
  return out;
}

at::Tensor corpus_windows(const Tokenizer& tok, const Corpus& corpus, int64_t ctx, int64_t max_tokens) {
  if (ctx < 2) fail("", "ctx must be at least 2");
  const bool bos = tok.bos_id >= 0;
  const int64_t body = bos ? ctx - 1 : ctx;
  std::vector<int64_t> flat;
  int64_t n_docs = 0;
  for (const auto& text : corpus.docs) {
    auto ids = tok.encode(text);
    for (size_t at = 0; at + body <= ids.size(); at += body) {
      if (max_tokens >= 0 && (n_docs + 1) * ctx > max_tokens) break;
      if (bos) flat.push_back(tok.bos_id);
      flat.insert(flat.end(), ids.begin() + at, ids.begin() + at + body);
      ++n_docs;
    }
    if (max_tokens >= 0 && (n_docs + 1) * ctx > max_tokens) break;
  }
  if (n_docs == 0) fail(corpus.name, "no document has " + std::to_string(body) + " tokens: nothing to index");
  return at::tensor(flat, at::kLong).view({n_docs, ctx});
}

namespace {

std::vector<LogitEffects> logit_effects(const HookedTransformer& m, int64_t k) {
  const auto& sd = m.state_dict();
  const std::string W_U = param_name("W_U");
  auto it = sd.find(W_U);
  if (it == sd.end()) fail("", "the model has no " + W_U);
  at::Tensor WU = it->second.to(at::kFloat);
  k = std::min<int64_t>(k, WU.size(1));
  std::vector<LogitEffects> out;
  for (int l = 0; l < m.cfg().n_layers; ++l) {
    at::Tensor Wout = sd.at(param_name("W_out", l)).to(at::kFloat);  // [d_mlp, d_model]
    std::vector<at::Tensor> ti, tv, bi, bv;
    for (int64_t s = 0; s < Wout.size(0); s += 256) {
      at::Tensor e = Wout.slice(0, s, s + 256).matmul(WU);  // [chunk, vocab]
      auto [v1, i1] = e.topk(k, 1, true, true);
      auto [v2, i2] = e.topk(k, 1, false, true);
      ti.push_back(i1), tv.push_back(v1), bi.push_back(i2), bv.push_back(v2);
    }
    out.push_back({at::cat(ti), at::cat(tv), at::cat(bi), at::cat(bv)});
  }
  return out;
}

}  // namespace

ScopeBuildStats build_neuron_index(HookedTransformer& m, const at::Tensor& docs, const std::vector<std::string>& vocab,
                        const json& source, const std::string& model_dir, const std::string& out,
                        const ScopeBuildOptions& o) {
  const ModelConfig& cfg = m.cfg();
  if (docs.dim() != 2 || docs.size(0) == 0) fail("", "documents must be a non-empty [docs, ctx] array");
  m.check_tokens(docs);
  if (o.top_k < 1 || o.batch < 1) fail("", "top_k and batch must be positive");
  if (file_exists(out)) fail(out, "already exists (delete it to rebuild)");
  const int64_t D = docs.size(0), ctx = docs.size(1);
  std::vector<std::string> hooks;
  for (int l = 0; l < cfg.n_layers; ++l) hooks.push_back(neuron_hook_name(cfg, l));
  const int64_t n = cfg.d_mlp;

  std::error_code ec;
  const std::string abs_dir = model_dir.empty() ? "" : std::filesystem::absolute(model_dir, ec).lexically_normal().string();
  json build = {{"model_name", cfg.model_name}, {"model_dir", abs_dir}, {"config", cfg.to_json()},
                {"fingerprint", model_fingerprint(m)}, {"processing", m.processing()}, {"source", source},
                {"ctx", ctx}, {"top_k", o.top_k}, {"bins", o.bins}, {"batch", o.batch}, {"hook", hooks[0]},
                {"n_layers", cfg.n_layers}, {"n_neurons", n}, {"n_docs", D}, {"n_tokens", D * ctx},
                {"logit_k", o.logit_k}, {"docs_fingerprint", bytes_fingerprint(docs)}};

  const std::string partial = out + ".partial";
  NeuronStatsOptions so{o.top_k, o.bins};
  std::vector<NeuronAccumulator> acc;
  for (int l = 0; l < cfg.n_layers; ++l) acc.emplace_back(n, ctx, so);
  int64_t done = 0;
  NeuronIndexWriter w(partial);
  auto prev = w.build_meta();
  if (prev && *prev != build)
    fail(partial, "is an unfinished build of another model, corpus or setting; delete it to start over");
  if (prev && w.complete()) {  // killed between its last commit and the rename
    if (std::rename(partial.c_str(), out.c_str()) != 0) fail(out, "cannot rename " + partial + " into place");
    return {};
  }
  if (prev) done = w.load_state(acc);
  else w.begin(build, docs, vocab);
  if (done > 0 && o.progress) std::fprintf(stderr, "scope: resuming %s after %lld of %lld documents\n", partial.c_str(),
                                           static_cast<long long>(done), static_cast<long long>(D));
  ScopeBuildStats stats;
  stats.resumed_docs = done;
  using clock = std::chrono::steady_clock;
  auto secs = [](clock::time_point a, clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  const auto t0 = clock::now();
  at::NoGradGuard no_grad;
  const int64_t batches = (D + o.batch - 1) / o.batch;
  Progress bar("scope", batches, done / o.batch, std::max<int64_t>(1, batches / 10));
  auto last_save = std::chrono::steady_clock::now();
  int64_t first = 0;
  std::vector<ForwardHookSpec> specs;
  for (int l = 0; l < cfg.n_layers; ++l)
    specs.push_back({names_in({hooks[l]}), [&acc, &first, l](const at::Tensor& a, const HookPoint&) {
                       acc[l].add(a, first);
                       return a;
                     }});
  ForwardOptions fo;
  fo.stop_at_layer = cfg.n_layers;  // no unembedding: only the MLPs are read
  for (first = done; first < D; first += o.batch) {
    at::Tensor b = docs.slice(0, first, std::min(D, first + o.batch));
    m.run_with_hooks(b, specs, {}, fo);
    const int64_t finished = std::min(D, first + o.batch);
    if (o.progress) bar.update((finished + o.batch - 1) / o.batch, std::to_string(finished) + " docs");
    const auto now = std::chrono::steady_clock::now();
    const bool due = o.save_every_batches > 0 ? ((first / o.batch) + 1) % o.save_every_batches == 0
                                              : std::chrono::duration<double>(now - last_save).count() >= o.save_every_s;
    if (finished < D && due) {
      w.save_state(finished, acc);
      last_save = now;
    }
  }
  if (o.progress) bar.finish(std::to_string(D) + " docs");
  const auto t1 = clock::now();
  auto effects = logit_effects(m, o.logit_k);
  const auto t2 = clock::now();
  w.finish(acc, effects);
  if (std::rename(partial.c_str(), out.c_str()) != 0) fail(out, "cannot rename " + partial + " into place");
  stats.pass_s = secs(t0, t1), stats.logit_effects_s = secs(t1, t2), stats.write_s = secs(t2, clock::now());
  return stats;
}

}  // namespace mechlens
