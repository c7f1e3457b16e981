// mechlens scope build --model DIR (--corpus NAME|FILE | --tokens FILE.json) [--ctx 64]
//                      [--max-tokens N] [--top-k 20] [--batch 8] --out INDEX.db
// mechlens scope show --index INDEX.db --layer L --neuron N [--json]
// The neuron index (Neuroscope): top-activating documents, histograms and logit
// effects of every MLP neuron, in one streaming pass.
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"
#include "mechlens/scope/index_build.h"
#include "mechlens/scope/neuron_index.h"

namespace mechlens::cli {

namespace {

void add_build(CLI::App* scope) {
  auto* sub = scope->add_subcommand("build", "stream a corpus through a model and index every MLP neuron");
  struct Opts {
    ModelArgs m;
    std::string corpus, tokens, out;
    int64_t ctx = 64, max_tokens = -1;
    ScopeBuildOptions b;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, true);
  auto* c = sub->add_option("--corpus", o->corpus, "moby-dick | sotu | a UTF-8 text file");
  auto* t = sub->add_option("--tokens", o->tokens, "JSON file: an array of equal-length arrays of token ids (one per document)");
  c->excludes(t);
  sub->add_option("--ctx", o->ctx, "tokens per document cut from --corpus (64)")->check(CLI::Range(2, 1 << 20));
  sub->add_option("--max-tokens", o->max_tokens, "stop after this many tokens of --corpus")->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  sub->add_option("--top-k", o->b.top_k, "documents kept per neuron (20)")->check(CLI::Range(1, 1000));
  sub->add_option("--batch", o->b.batch, "documents per forward (8)")->check(CLI::Range(1, 4096));
  sub->add_option("--logit-k", o->b.logit_k, "tokens per side of each neuron's logit effect (10)")->check(CLI::Range(1, 1000));
  sub->add_option("--save-every", o->b.save_every_batches, "resume-state period in batches (default: every 10 s)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  sub->add_option("--out", o->out, "index file to write (SQLite)")->required();
  sub->callback([o] {
    if (o->corpus.empty() == o->tokens.empty()) throw Error("scope build: give exactly one of --corpus or --tokens");
    auto model = load(o->m);
    auto tok = maybe_tokenizer(o->m, *model);
    at::Tensor docs;
    nlohmann::json source;
    if (!o->tokens.empty()) {
      docs = read_tokens_file(o->tokens);
      source = {{"kind", "tokens"}, {"name", o->tokens}};
    } else {
      if (!tok) throw Error(o->m.model + ": the model has no tokenizer; index it with --tokens");
      docs = corpus_windows(*tok, load_corpus(o->corpus), o->ctx, o->max_tokens);
      source = {{"kind", "corpus"}, {"name", o->corpus}, {"max_tokens", o->max_tokens}};
    }
    build_neuron_index(*model, docs, vocab_strings(tok.get(), model->cfg().d_vocab), source, o->m.model, o->out, o->b);
    std::printf("indexed %lld documents x %lld tokens, %d layers x %d neurons -> %s\n",
                static_cast<long long>(docs.size(0)), static_cast<long long>(docs.size(1)), model->cfg().n_layers,
                model->cfg().d_mlp, o->out.c_str());
  });
}

void add_show(CLI::App* scope) {
  auto* sub = scope->add_subcommand("show", "print one neuron of an index");
  struct Opts {
    std::string index;
    int64_t layer = 0, neuron = 0;
    Output out;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--index", o->index, "index file (from scope build)")->required();
  sub->add_option("--layer", o->layer, "layer")->required();
  sub->add_option("--neuron", o->neuron, "neuron")->required();
  o->out.add(sub);
  sub->callback([o] {
    NeuronIndex idx(o->index);
    nlohmann::json j = neuron_json(idx.neuron(o->layer, o->neuron), idx);
    o->out.emit(j, [&] {
      std::printf("L%lld N%lld (%s): max %.4f  min %.4f  mean %.4f  positive %.1f%%\n", static_cast<long long>(o->layer),
                  static_cast<long long>(o->neuron), j["hook"].get<std::string>().c_str(), j["max_act"].get<double>(),
                  j["min_act"].get<double>(), j["mean"].get<double>(), 100 * j["frac_positive"].get<double>());
      for (const auto& e : j["examples"]) {
        const int64_t p = e["pos"].get<int64_t>();
        std::string ctx;
        for (int64_t i = std::max<int64_t>(0, p - 8); i <= p; ++i)
          ctx += (i == p ? "[[" : "") + e["tokens"][i].get<std::string>() + (i == p ? "]]" : "");
        std::printf("  %8.4f  doc %-6lld pos %-4lld %s\n", e["act"].get<double>(), static_cast<long long>(e["doc"].get<int64_t>()),
                    static_cast<long long>(p), nlohmann::json(ctx).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      }
    });
  });
}

}  // namespace

void add_scope(CLI::App& app) {
  auto* sub = app.add_subcommand("scope", "neuron index (Neuroscope): build one, or show a neuron");
  sub->require_subcommand(1);
  add_build(sub);
  add_show(sub);
}

}  // namespace mechlens::cli
