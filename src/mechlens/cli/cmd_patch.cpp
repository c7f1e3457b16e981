// mechlens patch --model DIR --clean TEXT --corrupt TEXT --answer TOK --wrong TOK
//   --site resid_pre|resid_mid|resid_post|attn_out|mlp_out|head_out|head_q|head_k|head_v|head_pattern|block_every|head_every
//   [--by-pos|--all-pos|--dest-src] [--metric logit_diff|logit_diff_norm|loss|prob]
//   [--attribution] [--unbatched] [--path-to logits|L.H.q,...] --out FILE.json
#include <unistd.h>

#include <chrono>
#include <sstream>

#include "mechlens/analysis/path_patching.h"
#include "mechlens/analysis/patching.h"
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"

namespace mechlens::cli {

namespace {
std::string site_of(const std::string& s) {
  if (s == "head_out") return "z";
  if (s == "head_q") return "q";
  if (s == "head_k") return "k";
  if (s == "head_v") return "v";
  if (s == "head_pattern") return "pattern";
  return s;
}
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
}  // namespace

void add_patch(CLI::App& app) {
  auto* sub = app.add_subcommand("patch", "activation patching: clean activations into the corrupted run");
  struct Opts {
    ModelArgs m;
    TextOrTokens clean, corrupt;
    TokenArg answer, wrong;
    std::string site = "resid_pre", metric = "logit_diff", path_to;
    bool by_pos = false, all_pos = false, dest_src = false, attribution = false, unbatched = false, no_bos = false;
    Output out;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, true);
  o->clean.add(sub, "--clean", "--clean-tokens", "the clean prompt");
  o->corrupt.add(sub, "--corrupt", "--corrupt-tokens", "the corrupted prompt");
  o->answer.add(sub, "--answer", "the answer token");
  o->wrong.add(sub, "--wrong", "the wrong-answer token");
  sub->add_option("--site", o->site,
                  "resid_pre | resid_mid | resid_post | attn_out | mlp_out | head_out | head_q | head_k | head_v | "
                  "head_pattern | block_every | head_every");
  auto* bp = sub->add_flag("--by-pos", o->by_pos, "per position (pattern: per destination position); the default");
  auto* ap = sub->add_flag("--all-pos", o->all_pos, "per head over all positions")->excludes(bp);
  sub->add_flag("--dest-src", o->dest_src, "pattern per destination x source position")->excludes(bp)->excludes(ap);
  sub->add_option("--metric", o->metric, "logit_diff (default) | logit_diff_norm | loss | prob");
  sub->add_flag("--attribution", o->attribution, "also run attribution patching and report its agreement");
  sub->add_flag("--unbatched", o->unbatched, "one full forward per index (TransformerLens's algorithm), for checking");
  sub->add_option("--path-to", o->path_to,
                  "path patching instead: senders (every head) to 'logits' or receivers L.H.q|k|v[,...]");
  sub->add_flag("--no-bos", o->no_bos, "do not prepend BOS to text prompts");
  o->out.add(sub);
  sub->callback([o] {
    auto model = load(o->m);
    auto tok = maybe_tokenizer(o->m, *model);
    at::Tensor clean = o->clean.resolve(tok.get(), *model, o->no_bos);
    at::Tensor corrupt = o->corrupt.resolve(tok.get(), *model, o->no_bos);
    if (clean.sizes() != corrupt.sizes())
      throw Error("the clean and corrupted prompts have different token counts (" + std::to_string(clean.size(1)) +
                  " vs " + std::to_string(corrupt.size(1)) + "); patching needs them aligned");
    PatchMetric metric;
    metric.kind = o->metric;
    metric.answer = {o->answer.resolve(tok.get(), *model, "--answer")};
    if (o->metric == "logit_diff" || o->metric == "logit_diff_norm")
      metric.wrong = {o->wrong.resolve(tok.get(), *model, "--wrong")};
    auto t0 = std::chrono::steady_clock::now();
    ActivationPatching patcher(*model, clean, corrupt, metric);
    if (::isatty(2))  // a progress line on a terminal only
      patcher.progress = [](int64_t done, int64_t total) {
        std::fprintf(stderr, "\rpatching %lld/%lld%s", static_cast<long long>(done), static_cast<long long>(total),
                     done == total ? "\r\033[K" : "");
      };
    json j = {{"model", o->m.model}, {"processing", model->processing()}, {"metric", o->metric},
              {"answer_id", metric.answer[0]}, {"clean_tokens", to_json(clean)}, {"corrupt_tokens", to_json(corrupt)}};
    if (!metric.wrong.empty()) j["wrong_id"] = metric.wrong[0];

    if (!o->path_to.empty()) {
      std::vector<Receiver> receivers;
      if (o->path_to != "logits") {
        std::stringstream ss(o->path_to);
        for (std::string item; std::getline(ss, item, ',');) receivers.push_back(Receiver::parse(item));
      }
      PathPatchResult r = path_patch(*model, patcher, receivers);
      j.update({{"kind", "path_patching"}, {"receivers", r.receivers}, {"grid", to_json(r.grid)},
                {"shape", r.grid.sizes().vec()}, {"axes", {"layer", "head"}},
                {"labels", {json::array(), json::array()}}, {"sender_labels", r.sender_labels},
                {"clean_metric", r.clean_metric}, {"corrupted_metric", r.corrupted_metric},
                {"seconds", seconds_since(t0)}});
      for (int l = 0; l < model->cfg().n_layers; ++l) j["labels"][0].push_back(std::to_string(l));
      for (int h = 0; h < model->cfg().n_heads; ++h) j["labels"][1].push_back(std::to_string(h));
      o->out.emit(j, [&] {
        std::printf("path patching from every head to %s (processing: %s)\n", r.receivers.c_str(), model->processing().c_str());
        std::printf("clean %s = %.4f, corrupted = %.4f\n", o->metric.c_str(), r.clean_metric, r.corrupted_metric);
        std::vector<std::string> rows, cols;
        for (int l = 0; l < model->cfg().n_layers; ++l) rows.push_back("L" + std::to_string(l));
        for (int h = 0; h < model->cfg().n_heads; ++h) cols.push_back("H" + std::to_string(h));
        print_grid(r.grid, rows, cols, "metric after patching each sender's path [layer x head]:");
      });
      return;
    }

    const std::string site = site_of(o->site);
    std::string mode = o->all_pos ? "all_pos" : o->dest_src ? "dest_src" : "by_pos";
    if ((site == "block_every" || site == "head_every") && mode == "dest_src")
      throw Error("--dest-src applies to --site head_pattern only");
    PatchResult r;
    if (site == "block_every") r = patcher.block_every(!o->unbatched);
    else if (site == "head_every") r = mode == "all_pos" ? patcher.head_all_pos_every(!o->unbatched) : patcher.head_by_pos_every(!o->unbatched);
    else r = patcher.run(site, mode, !o->unbatched);
    const double secs = seconds_since(t0);
    j.update({{"kind", "activation_patching"}, {"site", o->site}, {"mode", r.mode}, {"grid", to_json(r.grid)},
              {"shape", r.grid.sizes().vec()}, {"axes", r.axes}, {"labels", r.labels},
              {"clean_metric", r.clean_metric}, {"corrupted_metric", r.corrupted_metric}, {"patches", r.patches},
              {"skipped_identical", r.skipped}, {"batched", !o->unbatched}, {"seconds", secs}});
    PatchResult attr;
    if (o->attribution) {
      if (site == "block_every" || site == "head_every") throw Error("--attribution takes a single site");
      auto ta = std::chrono::steady_clock::now();
      attr = patcher.attribution(site, mode);
      j["attribution"] = {{"grid", to_json(attr.grid)}, {"seconds", seconds_since(ta)},
                          {"correlation_with_exact", grid_correlation(attr.grid, r.grid)},
                          {"max_abs_error", (attr.grid - r.grid).abs().max().item<double>()}};
    }
    o->out.emit(j, [&] {
      std::printf("activation patching: site %s, %s, metric %s (processing: %s)\n", o->site.c_str(), r.mode.c_str(),
                  o->metric.c_str(), model->processing().c_str());
      std::printf("clean %.4f, corrupted %.4f; %lld patches (%lld identical, not run) in %.3f s\n", r.clean_metric,
                  r.corrupted_metric, static_cast<long long>(r.patches), static_cast<long long>(r.skipped), secs);
      if (r.grid.dim() == 2) {
        std::vector<std::string> rows, cols;
        for (const auto& l : r.labels[0]) rows.push_back(r.axes[0].substr(0, 1) + l);
        for (const auto& c : r.labels[1]) cols.push_back(r.axes[1].substr(0, 1) + c);
        print_grid(r.grid, rows, cols, "grid [" + r.axes[0] + " x " + r.axes[1] + "]:");
      } else {
        std::printf("grid shape:");
        for (auto s : r.grid.sizes()) std::printf(" %lld", static_cast<long long>(s));
        std::printf(" (%s); use --json or --out for the values\n", [&] {
          std::string a;
          for (const auto& x : r.axes) a += (a.empty() ? "" : ", ") + x;
          return a;
        }().c_str());
      }
      if (o->attribution)
        std::printf("attribution patching: %.3f s, correlation with exact %.4f, max abs error %.4f\n",
                    j["attribution"]["seconds"].get<double>(), j["attribution"]["correlation_with_exact"].get<double>(),
                    j["attribution"]["max_abs_error"].get<double>());
    });
  });
}

}  // namespace mechlens::cli
