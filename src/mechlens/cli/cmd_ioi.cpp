// mechlens ioi --model DIR [--n 50] [--seed 0] --json: the IOI dataset and its logit difference.
#include "mechlens/analysis/ioi.h"
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"

namespace mechlens::cli {

void add_ioi(CLI::App& app) {
  auto* sub = app.add_subcommand("ioi", "indirect object identification: dataset and mean logit difference");
  struct Opts {
    ModelArgs m;
    int n = 50;
    uint64_t seed = 0;
    bool no_bos = false, show = false;
    Output out;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, false);
  sub->add_option("--n", o->n, "number of prompts (half ABBA, half BABA)")->check(CLI::Range(1, 100000));
  sub->add_option("--seed", o->seed, "dataset seed");
  sub->add_flag("--no-bos", o->no_bos, "do not prepend BOS");
  sub->add_flag("--show", o->show, "print every prompt");
  o->out.add(sub);
  sub->callback([o] {
    auto model = load(o->m);
    auto tok = tokenizer_for(o->m, *model);
    auto prompts = make_ioi_dataset(*tok, o->n, o->seed, !o->no_bos);
    IOIResult r = evaluate_ioi(*model, prompts);
    json ps = json::array();
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto& p = prompts[i];
      ps.push_back({{"text", p.text}, {"corrupted", p.corrupted}, {"io", p.io}, {"s", p.s}, {"order", p.order},
                    {"template", p.template_index}, {"logit_diff", r.logit_diffs[i]},
                    {"corrupted_logit_diff", r.corrupted_logit_diffs[i]}});
    }
    json j = {{"mean_logit_diff", r.mean_logit_diff}, {"mean_corrupted_logit_diff", r.mean_corrupted_logit_diff},
              {"accuracy", r.accuracy}, {"n", o->n}, {"seed", o->seed}, {"values", r.logit_diffs},
              {"shape", {o->n}}, {"labels", json::array()}, {"prompts", ps}, {"processing", model->processing()}};
    for (const auto& p : prompts) j["labels"].push_back(p.order + ":" + std::to_string(p.template_index));
    o->out.emit(j, [&] {
      if (o->show)
        for (size_t i = 0; i < prompts.size(); ++i)
          std::printf("%+.3f  %s -> \" %s\" (not \" %s\")\n", r.logit_diffs[i], prompts[i].text.c_str(), prompts[i].io.c_str(),
                      prompts[i].s.c_str());
      std::printf("IOI on %d prompts (processing: %s): mean logit diff logit(IO) - logit(S) = %.4f, accuracy %.1f%%;\n"
                  "on the ABC-corrupted prompts %.4f. (Wang et al. 2022 report about 3.56 for GPT-2 small.)\n",
                  o->n, model->processing().c_str(), r.mean_logit_diff, 100 * r.accuracy, r.mean_corrupted_logit_diff);
    });
  });
}

}  // namespace mechlens::cli
