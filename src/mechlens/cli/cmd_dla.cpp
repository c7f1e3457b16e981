// mechlens dla --model DIR --prompt TEXT --answer TOK [--wrong TOK] [--by layer|head|full] --json
// Direct logit attribution at the last position. `values` add up exactly to the logit
// (difference) together with `constant`; `tl_values` are TransformerLens's logit_attrs.
#include "mechlens/analysis/residual.h"
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"

namespace mechlens::cli {

void add_dla(CLI::App& app) {
  auto* sub = app.add_subcommand("dla", "direct logit attribution of the residual stream's components");
  struct Opts {
    ModelArgs m;
    TextOrTokens prompt;
    TokenArg answer, wrong;
    std::string by = "layer";
    bool no_bos = false;
    Output out;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, true);
  o->prompt.add(sub, "--prompt", "--tokens", "the prompt");
  o->answer.add(sub, "--answer", "the answer token");
  o->wrong.add(sub, "--wrong", "the wrong-answer token (attribute the logit difference)");
  sub->add_option("--by", o->by, "layer: embed + attn/mlp outputs (default); head: every head + MLPs + embeddings + "
                                 "biases (TL's get_full_resid_decomposition)");
  sub->add_flag("--no-bos", o->no_bos, "do not prepend BOS");
  o->out.add(sub);
  sub->callback([o] {
    auto model = load(o->m);
    auto tok = maybe_tokenizer(o->m, *model);
    at::Tensor tokens = o->prompt.resolve(tok.get(), *model, o->no_bos);
    std::vector<int64_t> answer{o->answer.resolve(tok.get(), *model, "--answer")}, wrong;
    if (o->wrong.given()) wrong.push_back(o->wrong.resolve(tok.get(), *model, "--wrong"));
    at::NoGradGuard no_grad;
    auto [logits, cache] = model->run_with_cache(tokens);
    ResidualAnalysis ra(*model, cache);
    ComponentStack stack;
    if (o->by == "layer") stack = ra.decompose_resid(-1, false, false, -1);
    else if (o->by == "head" || o->by == "full") stack = ra.get_full_resid_decomposition(-1, false, false, false, -1);
    else throw Error("--by must be layer or head");
    auto exact = ra.exact_logit_attrs(stack.stack, answer, wrong);
    at::Tensor tl = ra.logit_attrs(stack.stack, answer, wrong);
    at::Tensor last = logits.select(1, logits.size(1) - 1).to(at::kFloat);
    at::Tensor actual = last.select(1, answer[0]) - (wrong.empty() ? at::zeros_like(last.select(1, 0)) : last.select(1, wrong[0]));
    json j = {{"values", to_json(exact.attrs)}, {"shape", exact.attrs.sizes().vec()}, {"labels", stack.labels},
              {"axes", {"component", "batch"}}, {"constant", to_json(exact.constant)}, {"total", to_json(exact.total)},
              {"logit", to_json(actual)}, {"tl_values", to_json(tl)}, {"note", exact.note + ". tl_values are "
              "TransformerLens's logit_attrs (final norm's scale only; on unprocessed weights they do not sum to the logit)"},
              {"processing", model->processing()}, {"answer_id", answer[0]}};
    if (!wrong.empty()) j["wrong_id"] = wrong[0];
    o->out.emit(j, [&] {
      std::printf("direct logit attribution of %s at the last position (processing: %s)\n",
                  wrong.empty() ? "the answer logit" : "logit(answer) - logit(wrong)", model->processing().c_str());
      for (size_t i = 0; i < stack.labels.size(); ++i)
        std::printf("  %-12s %9.4f   (TL logit_attrs %9.4f)\n", stack.labels[i].c_str(), exact.attrs[i][0].item<double>(),
                    tl[i][0].item<double>());
      std::printf("  %-12s %9.4f\n", "constant", exact.constant[0].item<double>());
      std::printf("  total %.4f = model's %.4f  [%s]\n", exact.total[0].item<double>(), actual[0].item<double>(),
                  exact.note.c_str());
    });
  });
}

}  // namespace mechlens::cli
