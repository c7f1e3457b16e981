// mechlens heads --model DIR --detect induction|previous|duplicate|prefix-matching|copying
//   [--tokens FILE.json] [--exclude-bos] [--exclude-current-token] [--error-measure mul|abs] --json
#include "mechlens/analysis/circuits.h"
#include "mechlens/analysis/head_detect.h"
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

namespace mechlens::cli {

void add_heads(CLI::App& app) {
  auto* sub = app.add_subcommand("heads", "score every head: previous-token, duplicate-token, induction, ...");
  struct Opts {
    ModelArgs m;
    std::string detect = "induction", tokens, error_measure = "mul", pattern;
    bool exclude_bos = false, exclude_current = false;
    int64_t half = 10;
    uint64_t seed = 4321;
    Output out;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, true);
  sub->add_option("--detect", o->detect,
                  "induction | previous | duplicate (TransformerLens's detect_head), prefix-matching (Olsson et al.'s "
                  "induction stripe on repeated random tokens) or copying (OV eigenvalue score)");
  sub->add_option("--pattern", o->pattern, "custom detection pattern: JSON file with a [pos, pos] array (instead of --detect)");
  sub->add_option("--tokens", o->tokens, "JSON file with one sequence (default: BOS + random tokens repeated twice)");
  sub->add_flag("--exclude-bos", o->exclude_bos, "ignore attention to position 0");
  sub->add_flag("--exclude-current-token", o->exclude_current, "ignore attention to the token itself");
  sub->add_option("--error-measure", o->error_measure, "mul (default) | abs");
  sub->add_option("--repeat-length", o->half, "random tokens per repeat in the default sequence")->check(CLI::Range(1, 100000));
  sub->add_option("--seed", o->seed, "seed of the default sequence");
  o->out.add(sub);
  sub->callback([o] {
    auto model = load(o->m);
    const auto& c = model->cfg();
    at::Tensor tokens;
    if (!o->tokens.empty()) {
      tokens = read_tokens_file(o->tokens);
      if (tokens.size(0) != 1) fail(o->tokens, "head detection takes exactly one sequence");
      try {
        model->check_tokens(tokens);
      } catch (const Error& e) {
        fail(o->tokens, e.what());
      }
    } else {
      tokens = repeated_random_tokens(*model, o->half, o->seed, c.bos_token_id);
    }
    at::Tensor scores;
    std::string what = o->detect;
    if (!o->pattern.empty()) {
      json pj = read_json_file(o->pattern);
      std::vector<double> flat;
      const int64_t n = tokens.size(1);
      if (!pj.is_array() || static_cast<int64_t>(pj.size()) != n)
        fail(o->pattern, "pattern must be a [pos, pos] array for the " + std::to_string(n) + " tokens");
      for (const auto& row : pj) {
        if (!row.is_array() || static_cast<int64_t>(row.size()) != n) fail(o->pattern, "pattern rows must have one entry per token");
        for (const auto& v : row) {
          if (!v.is_number()) fail(o->pattern, "pattern entries must be numbers");
          flat.push_back(v.get<double>());
        }
      }
      DetectOptions d{o->exclude_bos, o->exclude_current, o->error_measure};
      scores = detect_head(*model, tokens, at::tensor(flat, at::kDouble).to(at::kFloat).view({n, n}), d);
      what = "custom pattern " + o->pattern;
    } else if (o->detect == "copying") {
      scores = copying_scores(*model);
    } else if (o->detect == "prefix-matching" || o->detect == "prefix_matching" || o->detect == "induction-score") {
      if (!o->tokens.empty()) throw Error("--detect " + o->detect + " uses its own repeated random tokens; drop --tokens");
      scores = induction_scores(*model, tokens);
    } else {
      DetectOptions d{o->exclude_bos, o->exclude_current, o->error_measure};
      scores = detect_head(*model, tokens, detection_pattern(o->detect, tokens), d);
    }
    std::vector<std::string> labels;
    for (int l = 0; l < c.n_layers; ++l)
      for (int h = 0; h < c.n_heads; ++h) labels.push_back("L" + std::to_string(l) + "H" + std::to_string(h));
    json j = {{"detect", what}, {"values", to_json(scores)}, {"shape", scores.sizes().vec()},
              {"labels", labels}, {"axes", {"layer", "head"}}, {"processing", model->processing()},
              {"tokens", to_json(tokens)}};
    o->out.emit(j, [&] {
      std::printf("%s scores per head (processing: %s)\n", what.c_str(), model->processing().c_str());
      std::vector<std::string> rows, cols;
      for (int l = 0; l < c.n_layers; ++l) rows.push_back("L" + std::to_string(l));
      for (int h = 0; h < c.n_heads; ++h) cols.push_back("H" + std::to_string(h));
      print_grid(scores, rows, cols, "[layer x head]:");
      auto flat = scores.reshape(-1);
      auto top = flat.topk(std::min<int64_t>(5, flat.numel()));
      std::printf("top heads:");
      for (int64_t i = 0; i < std::get<1>(top).numel(); ++i) {
        int64_t k = std::get<1>(top)[i].item<int64_t>();
        std::printf(" %s (%.3f)", labels[k].c_str(), std::get<0>(top)[i].item<double>());
      }
      std::printf("\n");
    });
  });
}

}  // namespace mechlens::cli
