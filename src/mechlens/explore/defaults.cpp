#include "mechlens/explore/defaults.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/scope/index_build.h"
#include "mechlens/tokenize/tokenizer.h"
#include "mechlens/train/corpus.h"
#include "mechlens/train/trainer.h"

namespace mechlens {

namespace fs = std::filesystem;

std::string mechlens_home() {
  if (const char* h = std::getenv("MECHLENS_HOME"); h && *h) return h;
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/mechlens";
}

std::vector<DefaultRun> default_runs() {
  LmConfig gelu;  // the recipe's defaults: 1 layer, GELU, Moby-Dick
  // The 2-layer attention-only model with the induction curriculum that grows induction
  // heads in 3,000 steps (plain Moby-Dick windows do not; README "Toy language models"):
  // half the windows are <s> + X + X of random pieces, counted only where X repeats,
  // no LayerNorm, weights N(0, 1/d_model), AdamW 3e-3 with weight decay 0.01, batch 64.
  LmConfig attn;
  attn.layers = 2, attn.attn_only = true;
  attn.layernorm = false, attn.init_std = 0.088, attn.lr = 3e-3, attn.weight_decay = 0.01, attn.batch = 64;
  attn.random_repeat_frac = 0.5;
  return {{"lm-moby-dick-1l-gelu", gelu}, {"lm-moby-dick-2l-attn-only-induction", attn}};
}

namespace {

void index_model(const std::string& model_dir, const std::string& corpus, int64_t max_tokens, const std::string& out) {
  auto model = load_model(model_dir);
  auto tok = model_tokenizer(model_dir, model->cfg().d_vocab);
  if (!tok) fail(model_dir, "no tokenizer in the model folder: index it from token ids instead (build_neuron_index)");
  at::Tensor docs = corpus_windows(*tok, load_corpus(corpus), 64, max_tokens);
  std::fprintf(stderr, "indexing %s on %s (%lld documents of 64 tokens)\n", model_dir.c_str(), corpus.c_str(),
               static_cast<long long>(docs.size(0)));
  build_neuron_index(*model, docs, vocab_strings(tok.get(), model->cfg().d_vocab),
                     {{"kind", "corpus"}, {"name", corpus}, {"max_tokens", max_tokens}}, model_dir, out);
}

}  // namespace

std::string prepare_default_runs(const std::string& home) {
  const std::string runs = join_path(home, "runs");
  std::error_code ec;
  fs::create_directories(runs, ec);
  if (ec) fail(runs, "cannot create the folder: " + ec.message());
  for (const auto& d : default_runs()) {
    const std::string dir = join_path(runs, d.name);
    if (!file_exists(join_path(dir, "summary.json"))) {
      const bool resume = file_exists(join_path(dir, "config.json"));
      std::fprintf(stderr, "%s the default model %s (once; cached in %s)\n", resume ? "resuming" : "training",
                   d.name.c_str(), dir.c_str());
      LmConfig cfg = d.config;
      if (resume) cfg = LmConfig::from_json(resume_run(dir), join_path(dir, "config.json"));
      else start_run(dir, cfg.to_json());
      run_lm(cfg, dir, resume);
    }
    const std::string index = join_path(dir, "index.db");
    if (!d.config.attn_only && !file_exists(index)) {
      auto steps = list_checkpoints(dir);
      if (steps.empty()) fail(dir, "has no checkpoints");
      index_model(checkpoint_dir(dir, steps.back()), d.config.corpus, -1, index);
    }
  }
  return runs;
}

std::string cached_model_index(const std::string& home, const std::string& model_dir, int64_t max_tokens) {
  const std::string dir = join_path(home, "indexes");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir, "cannot create the folder: " + ec.message());
  std::string fp;
  {
    auto model = load_model(model_dir);
    fp = model_fingerprint(*model);
  }
  const std::string out = join_path(dir, fp + "-moby-dick-" + std::to_string(max_tokens) + ".db");
  if (!file_exists(out)) index_model(model_dir, "moby-dick", max_tokens, out);
  return out;
}

}  // namespace mechlens
