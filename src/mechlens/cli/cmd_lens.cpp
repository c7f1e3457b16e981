// mechlens lens --model DIR --prompt TEXT [--answer TOK] [--top-k N] [--pos P] --json
// The logit lens (analysis/logit_lens.h) at one position, with an answer token's
// log-probability and rank through the layers.
#include "mechlens/analysis/logit_lens.h"
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"

namespace mechlens::cli {

void add_lens(CLI::App& app) {
  auto* sub = app.add_subcommand("lens", "logit lens: what each layer's residual stream predicts");
  struct Opts {
    ModelArgs m;
    TextOrTokens prompt;
    TokenArg answer;
    int top_k = 5;
    int64_t pos = -1;
    bool incl_mid = false, no_bos = false;
    Output out;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, true);
  o->prompt.add(sub, "--prompt", "--tokens", "the prompt");
  o->answer.add(sub, "--answer", "a token to follow through the layers (its log-probability and rank)");
  sub->add_option("--top-k", o->top_k, "tokens to list per layer")->check(CLI::Range(1, 100));
  sub->add_option("--pos", o->pos, "position to read (default: last; negative counts from the end)");
  sub->add_flag("--incl-mid", o->incl_mid, "also read the residual between attention and MLP");
  sub->add_flag("--no-bos", o->no_bos, "do not prepend BOS");
  o->out.add(sub);
  sub->callback([o] {
    auto model = load(o->m);
    auto tok = maybe_tokenizer(o->m, *model);
    at::Tensor tokens = o->prompt.resolve(tok.get(), *model, o->no_bos);
    int64_t answer = o->answer.given() ? o->answer.resolve(tok.get(), *model, "--answer") : -1;
    LogitLens lens = logit_lens(*model, tokens, o->incl_mid, o->pos);
    auto name = [&](int64_t id) { return tok ? tok->to_str_tokens({id})[0] : std::to_string(id); };
    json layers = json::array();
    std::vector<double> answer_lp;
    for (const auto& r : lens_readings(lens, o->top_k, answer)) {  // batch row 0
      json top = json::array();
      for (size_t i = 0; i < r.top_ids.size(); ++i)
        top.push_back({{"id", r.top_ids[i]}, {"token", name(r.top_ids[i])}, {"logprob", r.top_log_probs[i]}});
      json layer = {{"label", r.label}, {"top", top}};
      if (answer >= 0) {
        layer["answer_logprob"] = r.answer_log_prob;
        layer["answer_rank"] = r.answer_rank;
        answer_lp.push_back(r.answer_log_prob);
      }
      layers.push_back(layer);
    }
    json j = {{"labels", lens.labels}, {"layers", layers}, {"processing", model->processing()},
              {"note", "each residual stream is normalised by its own final-norm scale, then unembedded (batch row 0)"}};
    if (answer >= 0) j.update({{"values", answer_lp}, {"shape", {static_cast<int64_t>(answer_lp.size())}}, {"answer_id", answer}});
    o->out.emit(j, [&] {
      std::printf("logit lens at position %lld (processing: %s)\n", static_cast<long long>(o->pos), model->processing().c_str());
      for (const auto& l : layers) {
        std::printf("  %-11s", l["label"].get<std::string>().c_str());
        if (l.contains("answer_logprob"))
          std::printf(" answer logprob %8.3f rank %-6lld |", l["answer_logprob"].get<double>(),
                      static_cast<long long>(l["answer_rank"].get<int64_t>()));
        for (const auto& t : l["top"]) std::printf(" %s", t["token"].dump(-1, ' ', false, json::error_handler_t::replace).c_str());
        std::printf("\n");
      }
    });
  });
}

}  // namespace mechlens::cli
