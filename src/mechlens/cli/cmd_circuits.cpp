// mechlens circuits --model DIR --composition [--mode Q|K|V] --json
// mechlens circuits --model DIR --head L.H [--top N] : OV/QK singular values, copying
//   score and the tokens the OV circuit maps best; --neuron L.N : direct logit effects.
#include "mechlens/analysis/circuits.h"
#include "mechlens/cli/analysis_args.h"
#include "mechlens/core/error.h"

namespace mechlens::cli {

void add_circuits(CLI::App& app) {
  auto* sub = app.add_subcommand("circuits", "QK/OV circuits, composition scores, neuron logit effects");
  struct Opts {
    ModelArgs m;
    bool composition = false;
    std::string mode, head, neuron;
    int top = 10;
    Output out;
  };
  auto o = std::make_shared<Opts>();
  o->m.add_to(sub, true);
  sub->add_flag("--composition", o->composition, "Q-, K- and V-composition scores for all head pairs");
  sub->add_option("--mode", o->mode, "Q, K or V (default: all three)");
  sub->add_option("--head", o->head, "one head, L.H: singular values, eigenvalues, copying score, top tokens");
  sub->add_option("--neuron", o->neuron, "one neuron, L.N: its direct effect on every logit");
  sub->add_option("--top", o->top, "how many tokens to list")->check(CLI::Range(1, 1000));
  o->out.add(sub);
  sub->callback([o] {
    auto model = load(o->m);
    const auto& c = model->cfg();
    auto tok = maybe_tokenizer(o->m, *model);
    auto name = [&](int64_t id) { return tok ? tok->to_str_tokens({id})[0] : std::to_string(id); };
    auto parse2 = [](const std::string& s, const char* what) {
      auto d = s.find('.');
      try {
        if (d == std::string::npos) throw std::invalid_argument("x");
        return std::pair<int, int64_t>{std::stoi(s.substr(0, d)), std::stoll(s.substr(d + 1))};
      } catch (const std::exception&) {
        throw Error(std::string("bad ") + what + " \"" + s + "\" (use L.N)");
      }
    };
    json j = {{"processing", model->processing()}};
    if (o->composition || (o->head.empty() && o->neuron.empty())) {
      std::vector<std::string> modes = o->mode.empty() ? std::vector<std::string>{"Q", "K", "V"} : std::vector<std::string>{o->mode};
      std::vector<std::string> labels;
      for (int l = 0; l < c.n_layers; ++l)
        for (int h = 0; h < c.n_heads; ++h) labels.push_back("L" + std::to_string(l) + "H" + std::to_string(h));
      std::map<std::string, at::Tensor> scores;
      json per_mode = json::object();
      std::vector<at::Tensor> stacked;
      for (const auto& m : modes) {
        scores[m] = all_composition_scores(*model, m);
        per_mode[m] = to_json(scores[m]);
        stacked.push_back(scores[m]);
      }
      // values: [L, H, L, H] for one mode, [mode, L, H, L, H] for several.
      at::Tensor values = modes.size() == 1 ? stacked[0] : at::stack(stacked, 0);
      std::vector<std::string> axes = {"layer_left", "head_left", "layer_right", "head_right"};
      if (modes.size() > 1) axes.insert(axes.begin(), "mode");
      j.update({{"composition", per_mode}, {"modes", modes}, {"values", to_json(values)}, {"shape", values.sizes().vec()},
                {"axes", axes}, {"labels", labels}});
      o->out.emit(j, [&] {
        for (const auto& [m, s] : scores) {
          std::printf("%s-composition, strongest pairs (left -> right):\n", m.c_str());
          for (const auto& p : strongest_compositions(s, 8))
            std::printf("  %-8s -> %-8s %.4f\n", labels[p.layer_left * c.n_heads + p.head_left].c_str(),
                        labels[p.layer_right * c.n_heads + p.head_right].c_str(), p.score);
        }
      });
      return;
    }
    if (!o->head.empty()) {
      auto [l, h] = parse2(o->head, "head");
      HeadCircuits hc = head_circuits(*model, l, h, o->top);
      auto tokens_json = [&](const std::vector<TokenScore>& ts) {
        json a = json::array();
        for (const auto& t : ts) a.push_back({{"id", t.id}, {"token", name(t.id)}, {"score", t.score}});
        return a;
      };
      json top = tokens_json(hc.top_self_copied);
      json directions = json::array();
      for (const auto& d : hc.full_ov_directions)
        directions.push_back({{"singular_value", d.singular_value}, {"source_tokens", tokens_json(d.inputs)},
                              {"output_tokens", tokens_json(d.outputs)}});
      j.update({{"head", o->head}, {"ov_singular_values", to_json(hc.ov_singular_values)},
                {"qk_singular_values", to_json(hc.qk_singular_values)}, {"full_ov_singular_directions", directions},
                {"ov_norm", hc.ov_norm}, {"qk_norm", hc.qk_norm}, {"copying_score", hc.copying_score},
                {"top_self_copied_tokens", top}});
      o->out.emit(j, [&] {
        std::printf("head %s (processing: %s)\n", o->head.c_str(), model->processing().c_str());
        std::printf("  OV norm %.4f, QK norm %.4f, copying score %.4f\n", hc.ov_norm, hc.qk_norm, hc.copying_score);
        std::printf("  tokens the OV circuit copies most:");
        for (const auto& t : top) std::printf(" %s", t["token"].dump().c_str());
        std::printf("\n");
        for (const auto& d : directions) {
          std::printf("  OV singular direction (sigma %.3f): reads", d["singular_value"].get<double>());
          for (const auto& t : d["source_tokens"]) std::printf(" %s", t["token"].dump().c_str());
          std::printf(" -> writes");
          for (const auto& t : d["output_tokens"]) std::printf(" %s", t["token"].dump().c_str());
          std::printf("\n");
        }
      });
      return;
    }
    auto [l, n] = parse2(o->neuron, "neuron");
    if (l < 0 || l >= c.n_layers || n < 0 || n >= c.d_mlp) throw Error("neuron " + o->neuron + " is out of range");
    at::Tensor eff = neuron_logit_effects(*model, l)[n];
    json up = json::array(), down = json::array();
    for (const auto& t : top_tokens(eff, o->top, true)) up.push_back({{"id", t.id}, {"token", name(t.id)}, {"score", t.score}});
    for (const auto& t : top_tokens(eff, o->top, false)) down.push_back({{"id", t.id}, {"token", name(t.id)}, {"score", t.score}});
    j.update({{"neuron", o->neuron}, {"top", up}, {"bottom", down}});
    o->out.emit(j, [&] {
      std::printf("neuron %s direct logit effect (W_out . W_U)\n  boosts:", o->neuron.c_str());
      for (const auto& t : up) std::printf(" %s", t["token"].dump().c_str());
      std::printf("\n  suppresses:");
      for (const auto& t : down) std::printf(" %s", t["token"].dump().c_str());
      std::printf("\n");
    });
  });
}

}  // namespace mechlens::cli
