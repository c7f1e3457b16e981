#include "mechlens/train/tasks/authors_init.h"

#include <ATen/ATen.h>

#include <cmath>

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

StateDict authors_init(const ModelConfig& c, uint64_t seed) {
  if (c.has_ln() || c.gated_mlp || c.kv_heads() != c.n_heads || c.positional_embedding_type != PosEmbed::Standard)
    throw Error("authors_init: the authors' toy models have no LayerNorm, no gated MLP, no GQA, learned positions");
  const int64_t d = c.d_model, h = c.n_heads, dh = c.d_head, v = c.d_vocab, vo = c.vocab_out(), m = c.d_mlp;
  const double sd = std::sqrt(static_cast<double>(d)), so = std::sqrt(static_cast<double>(vo));
  at::manual_seed(seed);
  StateDict s;
  s[param_name("W_E")] = (at::randn({d, v}) / sd).t().contiguous();
  s[param_name("W_pos")] = at::randn({c.n_ctx, d}) / sd;
  for (int l = 0; l < c.n_layers; ++l) {
    auto p = [l](const char* name) { return param_name(name, l); };
    at::Tensor K = at::randn({h, dh, d}) / sd, Q = at::randn({h, dh, d}) / sd, V = at::randn({h, dh, d}) / sd;
    at::Tensor O = at::randn({d, h * dh}) / sd;
    s[p("W_Q")] = Q.permute({0, 2, 1}).contiguous();
    s[p("W_K")] = K.permute({0, 2, 1}).contiguous();
    s[p("W_V")] = V.permute({0, 2, 1}).contiguous();
    s[p("W_O")] = O.t().reshape({h, dh, d}).contiguous();
    s[p("b_Q")] = at::zeros({h, dh}), s[p("b_K")] = at::zeros({h, dh});
    s[p("b_V")] = at::zeros({h, dh}), s[p("b_O")] = at::zeros({d});
    if (!c.attn_only) {
      at::Tensor W_in = at::randn({m, d}) / sd;
      at::Tensor W_out = at::randn({d, m}) / sd;
      s[p("W_in")] = W_in.t().contiguous();
      s[p("b_in")] = at::zeros({m});
      s[p("W_out")] = W_out.t().contiguous();
      s[p("b_out")] = at::zeros({d});
    }
  }
  s[param_name("W_U")] = at::randn({d, vo}) / so;
  s[param_name("b_U")] = at::zeros({vo});
  check_state_dict(s, c, "authors_init");
  return s;
}

std::vector<std::string> authors_frozen_biases(const ModelConfig& c) {
  std::vector<std::string> f{param_name("b_U")};
  for (int l = 0; l < c.n_layers; ++l)
    for (const char* n : {"b_qkv", "b_O"}) f.push_back(param_name(n, l));
  return f;
}

}  // namespace mechlens
