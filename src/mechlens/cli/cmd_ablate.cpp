// mechlens ablate --model DIR --prompt TEXT --answer TOK --wrong TOK --head L.H
//   [--mode zero|mean|resample] [--reference-tokens FILE.json] --json
// Self-repair: every head's direct effect before and after ablating one head.
#include <ATen/CPUGeneratorImpl.h>

#include "mechlens/analysis/ablation.h"
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"

namespace mechlens::cli {

void add_ablate(CLI::App& app) {
  auto* sub = app.add_subcommand("ablate", "ablate a head and report which heads compensate (self-repair)");
  struct Opts {
    ModelArgs m;
    TextOrTokens prompt;
    TokenArg answer, wrong;
    std::string head, mode = "zero", reference;
    uint64_t seed = 0;
    bool no_bos = false;
    Output out;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, true);
  o->prompt.add(sub, "--prompt", "--tokens", "the prompt");
  o->answer.add(sub, "--answer", "the answer token");
  o->wrong.add(sub, "--wrong", "the wrong-answer token");
  sub->add_option("--head", o->head, "the head to ablate, L.H")->required();
  sub->add_option("--mode", o->mode, "zero (default) | mean | resample");
  sub->add_option("--reference-tokens", o->reference,
                  "JSON file of reference sequences for mean/resample (default: 16 random sequences of the prompt's length)");
  sub->add_option("--seed", o->seed, "seed for the default reference and resampling");
  sub->add_flag("--no-bos", o->no_bos, "do not prepend BOS");
  o->out.add(sub);
  sub->callback([o] {
    auto model = load(o->m);
    auto tok = maybe_tokenizer(o->m, *model);
    at::Tensor tokens = o->prompt.resolve(tok.get(), *model, o->no_bos);
    std::vector<int64_t> answer{o->answer.resolve(tok.get(), *model, "--answer")};
    std::vector<int64_t> wrong{o->wrong.resolve(tok.get(), *model, "--wrong")};
    AblationTarget target = AblationTarget::parse(o->head);
    AblationOptions opts;
    opts.mode = o->mode;
    opts.seed = o->seed;
    std::string reference_desc = "none";
    if (o->mode != "zero") {
      if (!o->reference.empty()) {
        opts.reference = read_tokens_file(o->reference);
        try {
          model->check_tokens(opts.reference);
        } catch (const Error& e) {
          fail(o->reference, e.what());
        }
        reference_desc = o->reference;
      } else {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(o->seed);
        opts.reference = at::randint(model->cfg().d_vocab, {16, tokens.size(1)}, gen, at::kLong);
        if (!o->no_bos && model->cfg().bos_token_id >= 0) opts.reference.select(1, 0).fill_(model->cfg().bos_token_id);
        reference_desc = "16 random sequences (seed " + std::to_string(o->seed) + ")";
      }
    }
    SelfRepairReport r = self_repair(*model, tokens, answer, wrong, target, opts);
    at::Tensor delta = r.direct_after - r.direct_before;
    json j = {{"ablated", target.label()}, {"mode", r.mode}, {"reference", reference_desc},
              {"values", to_json(delta)}, {"shape", delta.sizes().vec()}, {"axes", {"layer", "head"}},
              {"labels", r.head_labels}, {"direct_effect_before", to_json(r.direct_before)},
              {"direct_effect_after", to_json(r.direct_after)}, {"mlp_direct_effect_before", to_json(r.mlp_before)},
              {"mlp_direct_effect_after", to_json(r.mlp_after)}, {"logit_diff_clean", r.logit_diff_clean},
              {"logit_diff_ablated", r.logit_diff_ablated}, {"ablated_direct_effect", r.ablated_direct_effect},
              {"self_repair", r.self_repair}, {"processing", model->processing()}};
    o->out.emit(j, [&] {
      std::printf("%s-ablating %s (processing: %s)\n", r.mode.c_str(), target.label().c_str(), model->processing().c_str());
      std::printf("logit difference: %.4f -> %.4f (change %.4f)\n", r.logit_diff_clean, r.logit_diff_ablated,
                  r.logit_diff_ablated - r.logit_diff_clean);
      std::printf("its direct effect was %.4f: removing that alone would change the logit difference by %.4f;\n"
                  "it changed by %.4f, so the rest of the model (self-repair) contributed %+.4f\n",
                  r.ablated_direct_effect, (r.logit_diff_ablated - r.logit_diff_clean) - r.self_repair,
                  r.logit_diff_ablated - r.logit_diff_clean, r.self_repair);
      at::Tensor flat = delta.reshape(-1);
      auto [vals, idx] = flat.topk(std::min<int64_t>(8, flat.numel()));
      std::printf("heads whose direct effect grew most (compensating):\n");
      for (int64_t i = 0; i < idx.numel(); ++i) {
        int64_t k = idx[i].item<int64_t>();
        std::printf("  %-8s %+8.4f  (%.4f -> %.4f)\n", r.head_labels[k].c_str(), vals[i].item<double>(),
                    r.direct_before.reshape(-1)[k].item<double>(), r.direct_after.reshape(-1)[k].item<double>());
      }
    });
  });
}

}  // namespace mechlens::cli
