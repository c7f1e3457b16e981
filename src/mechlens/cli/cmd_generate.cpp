// mechlens generate [--model DIR] --prompt TEXT --max-new-tokens N
//   [--temperature T --top-k K --top-p P --seed S] [--no-kv-cache]
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"
#include "mechlens/model/generate.h"

namespace mechlens::cli {

void add_generate(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "continue a prompt, greedily or by sampling");
  struct Opts {
    ModelArgs m;
    TextOrTokens prompt;
    GenerateOptions g;
    bool no_cache = false, no_bos = false, as_json = false, stop_at_eos = false;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, false);
  o->prompt.add(sub, "--prompt", "--tokens", "the prompt to continue");
  sub->add_option("--max-new-tokens", o->g.max_new_tokens, "tokens to add")->required()->check(CLI::Range(0, 1 << 20));
  sub->add_option("--temperature", o->g.temperature, "0 (default) is greedy")->check(CLI::Range(0.0, 1e6));
  sub->add_option("--top-k", o->g.top_k, "sample among the k most likely")->check(CLI::Range(0, 1 << 30));
  sub->add_option("--top-p", o->g.top_p, "nucleus sampling threshold")->check(CLI::Range(1e-9, 1.0));
  sub->add_option("--seed", o->g.seed, "random seed");
  sub->add_flag("--no-kv-cache", o->no_cache, "recompute every position at every step");
  sub->add_flag("--no-bos", o->no_bos, "do not prepend the BOS token");
  sub->add_flag("--stop-at-eos", o->stop_at_eos, "stop once the EOS token is generated");
  sub->add_flag("--json", o->as_json, "print one JSON object");
  sub->callback([o] {
    if (!o->prompt.given()) throw Error("give --prompt TEXT or --tokens FILE.json");
    auto model = load(o->m);
    std::unique_ptr<Tokenizer> tok = maybe_tokenizer(o->m, *model);
    at::Tensor tokens = o->prompt.resolve(tok.get(), *model, o->no_bos);
    GenerateOptions g = o->g;
    g.use_kv_cache = !o->no_cache;
    if (o->stop_at_eos) g.stop_token = tok && tok->eos_id >= 0 ? tok->eos_id : model->cfg().eos_token_id;
    at::Tensor out = generate(*model, tokens, g);
    json rows = json::array();
    for (int64_t r = 0; r < out.size(0); ++r) {
      auto ids = to_vector(out[r]);
      std::vector<int64_t> fresh(ids.begin() + tokens.size(1), ids.end());
      json row = {{"tokens", ids}, {"new_tokens", fresh}};
      if (tok) row["text"] = tok->decode(ids), row["new_text"] = tok->decode(fresh);
      rows.push_back(row);
    }
    if (o->as_json) {
      json j = {{"processing", model->processing()}, {"kv_cache", g.use_kv_cache}, {"sequences", rows}};
      std::printf("%s\n", j.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
      return;
    }
    for (const auto& row : rows) {
      if (row.contains("text")) std::printf("%s\n", row["text"].get<std::string>().c_str());
      else std::printf("%s\n", row["tokens"].dump().c_str());
    }
  });
}

}  // namespace mechlens::cli
