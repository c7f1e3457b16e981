// mechlens run [--model DIR] (--prompt TEXT | --tokens FILE.json) [--top-k N]:
// the loss on the prompt and the most likely next tokens.
#include <algorithm>

#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"

namespace mechlens::cli {

void add_run(CLI::App& app) {
  auto* sub = app.add_subcommand("run", "print the loss and the top next tokens for a prompt");
  struct Opts {
    ModelArgs m;
    TextOrTokens prompt;
    int top_k = 10;
    bool no_bos = false, as_json = false;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, false);
  o->prompt.add(sub, "--prompt", "--tokens", "the prompt");
  sub->add_option("--top-k", o->top_k, "how many next tokens to show")->check(CLI::Range(1, 1000));
  sub->add_flag("--no-bos", o->no_bos, "do not prepend the BOS token (prepended by default, as TransformerLens does)");
  sub->add_flag("--json", o->as_json, "print one JSON object");
  sub->callback([o] {
    if (!o->prompt.given()) throw Error("give --prompt TEXT or --tokens FILE.json");
    auto model = load(o->m);
    std::unique_ptr<Tokenizer> tok = maybe_tokenizer(o->m, *model);
    at::Tensor tokens = o->prompt.resolve(tok.get(), *model, o->no_bos);
    at::NoGradGuard no_grad;
    at::Tensor logits = model->forward(tokens);
    double loss = tokens.size(1) > 1 ? HookedTransformer::loss(logits, tokens).item<double>() : NAN;
    at::Tensor last = logits.select(1, logits.size(1) - 1).select(0, 0).to(at::kFloat).log_softmax(-1);
    const int k = std::min<int>(o->top_k, last.size(0));
    auto [vals, idx] = last.topk(k);
    auto show = [&](int64_t id) { return tok ? tok->to_str_tokens({id})[0] : std::to_string(id); };
    const auto& cfg = model->cfg();
    if (o->as_json) {
      json top = json::array();
      for (int i = 0; i < k; ++i) {
        int64_t id = idx[i].item<int64_t>();
        top.push_back({{"id", id}, {"token", show(id)}, {"logprob", vals[i].item<double>()}});
      }
      json j = {{"model", o->m.model.empty() ? default_model_dir() : o->m.model},
                {"processing", model->processing()},
                {"tokens", to_vector(tokens[0])},
                {"loss", loss},
                {"top", top}};
      std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
      return;
    }
    std::printf("model: %s (%s, %d layers, d_model %d)\n", o->m.model.empty() ? default_model_dir().c_str() : o->m.model.c_str(),
                cfg.original_architecture.c_str(), cfg.n_layers, cfg.d_model);
    std::printf("weight processing: %s\n", model->processing().c_str());
    std::printf("tokens: %lld x %lld\n", static_cast<long long>(tokens.size(0)), static_cast<long long>(tokens.size(1)));
    std::printf("loss (mean next-token cross-entropy): %.6f\n", loss);
    std::printf("top %d next tokens after the last position:\n", k);
    for (int i = 0; i < k; ++i) {
      int64_t id = idx[i].item<int64_t>();
      double lp = vals[i].item<double>();
      std::printf("  %2d. %-20s id %-7lld p %.4f  logprob %.4f\n", i + 1, json(show(id)).dump(-1, ' ', false, json::error_handler_t::replace).c_str(),
                  static_cast<long long>(id), std::exp(lp), lp);
    }
  });
}

}  // namespace mechlens::cli
