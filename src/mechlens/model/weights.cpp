#include "mechlens/model/weights.h"

#include <sstream>

#include <ATen/CPUGeneratorImpl.h>

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameters(const ModelConfig& c) {
  const int64_t dm = c.d_model, h = c.n_heads, kv = c.kv_heads(), dh = c.d_head, dmlp = c.d_mlp;
  std::vector<std::pair<std::string, std::vector<int64_t>>> p;
  p.push_back({param_name("W_E"), {c.d_vocab, dm}});
  if (c.positional_embedding_type == PosEmbed::Standard) p.push_back({param_name("W_pos"), {c.n_ctx, dm}});
  auto norm = [&](int layer, const std::string& module, int64_t d) {
    if (c.ln_has_weight()) p.push_back({param_name("w", layer, module), {d}});
    if (c.ln_has_bias()) p.push_back({param_name("b", layer, module), {d}});
  };
  for (int l = 0; l < c.n_layers; ++l) {
    auto add = [&](const char* name, std::vector<int64_t> shape) { p.push_back({param_name(name, l), std::move(shape)}); };
    norm(l, "ln1", dm);
    if (!c.attn_only) norm(l, "ln2", dm);
    add("W_Q", {h, dm, dh});
    add("b_Q", {h, dh});
    add("W_K", {kv, dm, dh});
    add("b_K", {kv, dh});
    add("W_V", {kv, dm, dh});
    add("b_V", {kv, dh});
    add("W_O", {h, dh, dm});
    add("b_O", {dm});
    if (!c.attn_only) {
      add("W_in", {dm, dmlp});
      add("b_in", {dmlp});
      if (c.gated_mlp) add("W_gate", {dm, dmlp});
      add("W_out", {dmlp, dm});
      add("b_out", {dm});
      if (c.act_fn == ActFn::SoluLn) {
        p.push_back({param_name("w", l, "mlp.ln"), {dmlp}});
        p.push_back({param_name("b", l, "mlp.ln"), {dmlp}});
      }
    }
  }
  norm(-1, "ln_final", dm);
  p.push_back({param_name("W_U"), {dm, c.vocab_out()}});
  p.push_back({param_name("b_U"), {c.vocab_out()}});
  return p;
}

void check_state_dict(const StateDict& sd, const ModelConfig& cfg, const std::string& where) {
  auto exp = expected_parameters(cfg);
  for (const auto& [name, shape] : exp) {
    auto it = sd.find(name);
    if (it == sd.end()) fail(where, "weights do not match the config: missing parameter " + name);
    if (it->second.sizes().vec() != shape) {
      std::ostringstream o;
      o << "weights do not match the config: " << name << " has shape " << it->second.sizes()
        << ", config implies " << at::IntArrayRef(shape);
      fail(where, o.str());
    }
  }
  if (sd.size() != exp.size()) {
    for (const auto& [name, t] : sd) {
      bool known = false;
      for (const auto& e : exp) known |= e.first == name;
      if (!known) fail(where, "weights do not match the config: unexpected parameter " + name);
    }
  }
}

void fill_missing_defaults(StateDict& sd, const ModelConfig& cfg) {
  for (const auto& [name, shape] : expected_parameters(cfg)) {
    if (sd.count(name)) continue;
    bool is_norm_weight = name.size() >= 2 && name.compare(name.size() - 2, 2, ".w") == 0;
    sd[name] = is_norm_weight ? at::ones(shape) : at::zeros(shape);
  }
}

StateDict random_state_dict(const ModelConfig& cfg, uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  const at::ScalarType dt = cfg.dtype == "bfloat16" ? at::kBFloat16 : cfg.dtype == "float16" ? at::kHalf : at::kFloat;
  // N(0, std) in the model's dtype. float32 draws the whole tensor at once (the values
  // every seeded test relies on); a half-precision model draws 16M values at a time, so
  // a large model never holds a float32 copy of a weight (llama-3-8b's embedding would
  // be 2 GiB).
  auto normal = [&](const std::vector<int64_t>& shape, double std) {
    if (dt == at::kFloat) return at::normal(0.0, std, shape, gen);
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(dt));
    at::Tensor flat = t.view(-1);
    const int64_t chunk = int64_t{1} << 24;
    for (int64_t i = 0; i < flat.numel(); i += chunk) {
      const int64_t n = std::min(chunk, flat.numel() - i);
      flat.slice(0, i, i + n).copy_(at::normal(0.0, std, {n}, gen));
    }
    return t;
  };
  StateDict sd;
  for (const auto& [name, shape] : expected_parameters(cfg)) {
    const std::string last = name.substr(name.rfind('.') + 1);
    at::Tensor t;
    if (last == "W_E" || last == "W_pos") {
      t = normal(shape, 0.5);
    } else if (last[0] == 'W') {
      int64_t fan_in = (last == "W_O") ? shape[0] * shape[1] : shape[shape.size() - 2];
      t = normal(shape, 1.0 / std::sqrt(static_cast<double>(fan_in)));
    } else if (last == "w") {
      t = at::ones(shape, at::TensorOptions().dtype(dt));
    } else {
      t = at::zeros(shape, at::TensorOptions().dtype(dt));
    }
    sd[name] = t;
  }
  return sd;
}

}  // namespace mechlens
