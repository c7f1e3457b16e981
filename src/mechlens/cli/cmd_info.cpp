// mechlens info --model DIR [--json]: architecture, parameter count and hook names.
#include "mechlens/cli/common.h"

namespace mechlens::cli {

void add_info(CLI::App& app) {
  auto* sub = app.add_subcommand("info", "print the architecture, parameter count and hook names");
  auto args = std::make_shared<ModelArgs>();
  auto as_json = std::make_shared<bool>(false);
  args->add_to(sub, false);
  sub->add_flag("--json", *as_json, "print one JSON object");
  sub->callback([args, as_json] {
    auto m = load(*args);
    const auto& c = m->cfg();
    int64_t params = 0;
    for (const auto& [name, t] : m->state_dict()) params += t.numel();
    auto names = m->hook_names();
    if (*as_json) {
      json j = {{"config", c.to_json()}, {"parameters", params}, {"processing", m->processing()}, {"hook_names", names}};
      std::printf("%s\n", j.dump().c_str());
      return;
    }
    std::printf("model:          %s\n", args->model.empty() ? default_model_dir().c_str() : args->model.c_str());
    std::printf("architecture:   %s\n", c.original_architecture.c_str());
    std::printf("parameters:     %lld\n", static_cast<long long>(params));
    std::printf("processing:     %s\n", m->processing().c_str());
    std::printf("layers %d, d_model %d, heads %d (kv %d) x d_head %d, d_mlp %d, vocab %d -> %d, n_ctx %d\n",
                c.n_layers, c.d_model, c.n_heads, c.kv_heads(), c.d_head, c.d_mlp, c.d_vocab, c.vocab_out(), c.n_ctx);
    std::printf("act_fn %s, norm %s, positions %s", to_string(c.act_fn).c_str(),
                to_string(c.normalization_type).c_str(), to_string(c.positional_embedding_type).c_str());
    if (c.positional_embedding_type == PosEmbed::Rotary)
      std::printf(" (rotary_dim %d, base %g, %s pairs)", c.rot_dim(), c.rotary_base,
                  c.rotary_adjacent_pairs ? "adjacent" : "half-split");
    std::printf("%s%s%s\n", c.parallel_attn_mlp ? ", parallel attn+mlp" : "", c.gated_mlp ? ", gated mlp" : "",
                c.attn_only ? ", attention only" : "");
    if (!c.attn_types.empty()) {
      std::printf("attention:      ");
      for (size_t i = 0; i < c.attn_types.size(); ++i)
        std::printf("%s%s", i ? " " : "", to_string(c.attn_types[i]).c_str());
      std::printf(" (local window %d)\n", c.window_size);
    }
    std::printf("hook points:    %zu\n", names.size());
    for (const auto& n : names) std::printf("  %s\n", n.c_str());
  });
}

}  // namespace mechlens::cli
