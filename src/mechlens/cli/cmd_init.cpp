// mechlens init --preset attn-only-2l --out DIR [--seed S] [--set key=value ...]
// Builds a model with random weights from a preset (optionally changing config
// fields) and saves it as a mechlens checkpoint.
#include "mechlens/cli/common.h"
#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"

namespace mechlens::cli {

void add_init(CLI::App& app) {
  auto* sub = app.add_subcommand("init", "build a toy model with random weights and save it as a mechlens checkpoint");
  struct Opts {
    std::string preset = "attn-only-2l", out;
    uint64_t seed = 0;
    std::vector<std::string> set;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--preset", o->preset, "gpt2-small | gpt2-tiny | attn-only-<N>l | solu-1l");
  sub->add_option("--out", o->out, "checkpoint folder to write")->required();
  sub->add_option("--seed", o->seed, "weight seed");
  sub->add_option("--set", o->set, "override config fields, e.g. --set n_layers=3 --set act_fn=gelu (repeatable)");
  sub->callback([o] {
    ModelConfig preset = ModelConfig::preset(o->preset);
    json cfg = preset.to_json();
    for (const auto& kv : o->set) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) throw Error("--set needs key=value, got \"" + kv + "\"");
      const std::string key = kv.substr(0, eq), value = kv.substr(eq + 1);
      if (!cfg.contains(key)) throw Error("--set: unknown config field \"" + key + "\"");
      json parsed;
      try {
        parsed = json::parse(value);  // numbers, booleans, arrays
      } catch (const std::exception&) {
        parsed = value;  // plain strings
      }
      cfg[key] = parsed;
    }
    ModelConfig c = ModelConfig::from_json(cfg, "--set");
    if (dir_exists(o->out) && file_exists(join_path(o->out, "mechlens.json")))
      fail(o->out, "already holds a checkpoint; choose another --out");
    HookedTransformer m(c, random_state_dict(c, o->seed), "none");
    save_checkpoint(m, o->out);
    const std::string kind = c.attn_only ? "attention only" : "act_fn " + to_string(c.act_fn);
    std::printf("wrote %s: %d layers, d_model %d, %d heads, %s (seed %llu)\n", o->out.c_str(), c.n_layers, c.d_model,
                c.n_heads, kind.c_str(), static_cast<unsigned long long>(o->seed));
  });
}

}  // namespace mechlens::cli
