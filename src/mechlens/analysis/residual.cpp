#include "mechlens/analysis/residual.h"

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

at::Tensor apply_pos(const at::Tensor& t, PosSlice pos, int64_t dim) {
  if (!pos) return t;
  const int64_t n = t.size(dim);
  const int64_t i = *pos < 0 ? *pos + n : *pos;
  if (i < 0 || i >= n) throw Error("position " + std::to_string(*pos) + " is out of range");
  return t.select(dim, i);
}

ResidualAnalysis::ResidualAnalysis(const HookedTransformer& model, const ActivationCache& cache)
    : model_(model), cache_(cache) {}

int ResidualAnalysis::resolve_layer(int layer) const {
  const int L = model_.cfg().n_layers;
  if (layer == -1) return L;
  if (layer < 0 || layer > L) throw Error("layer " + std::to_string(layer) + " is out of range");
  return layer;
}

const at::Tensor& ResidualAnalysis::get(const std::string& name) const { return cache_.at(name); }

at::Tensor ResidualAnalysis::head_results(int l) const {
  const std::string name = act_name("result", l);
  if (cache_.contains(name)) return get(name);
  const at::Tensor& z = get(act_name("z", l));
  const at::Tensor W_O = model_.state_dict().at(param_name("W_O", l)).to(z.scalar_type());
  return at::einsum("...hk,hkd->...hd", {z, W_O});
}

ComponentStack ResidualAnalysis::accumulated_resid(int layer_in, bool incl_mid, bool apply_ln, PosSlice pos,
                                                   bool mlp_input) const {
  const int L = model_.cfg().n_layers, layer = resolve_layer(layer_in);
  std::vector<at::Tensor> parts;
  ComponentStack out;
  for (int l = 0; l <= layer; ++l) {
    if (l == L) {
      parts.push_back(get(act_name("resid_post", L - 1)));
      out.labels.push_back("final_post");
      continue;
    }
    parts.push_back(get(act_name("resid_pre", l)));
    out.labels.push_back(std::to_string(l) + "_pre");
    const std::string mid = act_name("resid_mid", l);
    if (((incl_mid && l < layer) || (mlp_input && l == layer)) && cache_.contains(mid)) {
      parts.push_back(get(mid));
      out.labels.push_back(std::to_string(l) + "_mid");
    }
  }
  for (auto& p : parts) p = apply_pos(p, pos, -2);
  out.stack = at::stack(parts, 0);
  if (apply_ln) out.stack = apply_ln_to_stack(out.stack, layer, mlp_input, pos);
  return out;
}

ComponentStack ResidualAnalysis::decompose_resid(int layer_in, bool mlp_input, bool apply_ln, PosSlice pos,
                                                 bool incl_embeds, const std::string& mode) const {
  const int layer = resolve_layer(layer_in);
  const bool incl_attn = mode != "mlp", incl_mlp = mode != "attn" && !model_.cfg().attn_only;
  ComponentStack out;
  std::vector<at::Tensor> parts;
  if (incl_embeds) {
    parts.push_back(get(act_name("embed")));
    out.labels.push_back("embed");
    if (cache_.contains(act_name("pos_embed"))) {
      parts.push_back(get(act_name("pos_embed")));
      out.labels.push_back("pos_embed");
    }
  }
  for (int l = 0; l < layer; ++l) {
    if (incl_attn) parts.push_back(get(act_name("attn_out", l))), out.labels.push_back(std::to_string(l) + "_attn_out");
    if (incl_mlp) parts.push_back(get(act_name("mlp_out", l))), out.labels.push_back(std::to_string(l) + "_mlp_out");
  }
  if (mlp_input && incl_attn && layer < model_.cfg().n_layers) {
    parts.push_back(get(act_name("attn_out", layer)));
    out.labels.push_back(std::to_string(layer) + "_attn_out");
  }
  if (parts.empty()) throw Error("decompose_resid: no components selected");
  for (auto& p : parts) p = apply_pos(p, pos, -2);
  out.stack = at::stack(parts, 0);
  if (apply_ln) out.stack = apply_ln_to_stack(out.stack, layer, mlp_input, pos);
  return out;
}

ComponentStack ResidualAnalysis::stack_head_results(int layer_in, bool apply_ln, PosSlice pos) const {
  const int layer = resolve_layer(layer_in), H = model_.cfg().n_heads;
  ComponentStack out;
  std::vector<at::Tensor> parts;
  for (int l = 0; l < layer; ++l) {
    parts.push_back(apply_pos(head_results(l), pos, -3));  // [b, (p,) h, d]
    for (int h = 0; h < H; ++h) out.labels.push_back("L" + std::to_string(l) + "H" + std::to_string(h));
  }
  if (parts.empty()) throw Error("stack_head_results: layer 0 has no heads before it");
  at::Tensor cat = at::cat(parts, -2);      // [b, (p,) L*h, d]
  out.stack = cat.movedim(-2, 0);           // [L*h, b, (p,) d]
  if (apply_ln) out.stack = apply_ln_to_stack(out.stack, layer, false, pos);
  return out;
}

ComponentStack ResidualAnalysis::stack_neuron_results(int layer_in, PosSlice pos, int64_t n_begin, int64_t n_end,
                                                      bool apply_ln) const {
  const int layer = resolve_layer(layer_in);
  const int64_t d_mlp = model_.cfg().d_mlp;
  if (model_.cfg().attn_only) throw Error("stack_neuron_results: the model has no MLPs");
  if (n_end < 0) n_end = d_mlp;
  if (n_begin < 0 || n_begin >= n_end || n_end > d_mlp) throw Error("neuron range is out of bounds");
  ComponentStack out;
  std::vector<at::Tensor> parts;
  for (int l = 0; l < layer; ++l) {
    at::Tensor acts = apply_pos(get(act_name("post", l)), pos, -2).slice(-1, n_begin, n_end);
    at::Tensor W_out = model_.state_dict().at(param_name("W_out", l)).slice(0, n_begin, n_end).to(acts.scalar_type());
    parts.push_back(acts.unsqueeze(-1) * W_out);  // [b, (p,) n, d]
    for (int64_t n = n_begin; n < n_end; ++n) out.labels.push_back("L" + std::to_string(l) + "N" + std::to_string(n));
  }
  if (parts.empty()) throw Error("stack_neuron_results: layer 0 has no neurons before it");
  out.stack = at::cat(parts, -2).movedim(-2, 0);
  if (apply_ln) out.stack = apply_ln_to_stack(out.stack, layer, false, pos);
  return out;
}

ComponentStack ResidualAnalysis::get_full_resid_decomposition(int layer_in, bool mlp_input, bool expand_neurons,
                                                              bool apply_ln, PosSlice pos) const {
  const int layer = resolve_layer(layer_in);
  const auto& sd = model_.state_dict();
  ComponentStack heads = stack_head_results(layer, false, pos);
  ComponentStack out;
  out.labels = heads.labels;
  std::vector<at::Tensor> parts{heads.stack};
  if (!model_.cfg().attn_only && layer > 0) {
    ComponentStack mlps = expand_neurons ? stack_neuron_results(layer, pos)
                                         : decompose_resid(layer, mlp_input, false, pos, false, "mlp");
    out.labels.insert(out.labels.end(), mlps.labels.begin(), mlps.labels.end());
    parts.push_back(mlps.stack);
  }
  parts.push_back(apply_pos(get(act_name("embed")), pos, -2).unsqueeze(0));
  out.labels.push_back("embed");
  if (cache_.contains(act_name("pos_embed"))) {
    parts.push_back(apply_pos(get(act_name("pos_embed")), pos, -2).unsqueeze(0));
    out.labels.push_back("pos_embed");
  }
  // Biases: b_O of every layer before `layer` (and b_out when neurons are expanded,
  // since otherwise mlp_out already holds them).
  at::Tensor bias = at::zeros({model_.cfg().d_model}, heads.stack.options());
  for (int l = 0; l < layer; ++l) {
    bias = bias + sd.at(param_name("b_O", l)).to(bias.scalar_type());
    if (expand_neurons && !model_.cfg().attn_only) bias = bias + sd.at(param_name("b_out", l)).to(bias.scalar_type());
  }
  if (mlp_input && layer < model_.cfg().n_layers) bias = bias + sd.at(param_name("b_O", layer)).to(bias.scalar_type());
  std::vector<int64_t> shape = heads.stack.sizes().vec();
  shape[0] = 1;
  parts.push_back(bias.expand(shape));
  out.labels.push_back("bias");
  out.stack = at::cat(parts, 0);
  if (apply_ln) out.stack = apply_ln_to_stack(out.stack, layer, mlp_input, pos);
  return out;
}

at::Tensor ResidualAnalysis::apply_ln_to_stack(const at::Tensor& stack, int layer_in, bool mlp_input,
                                               PosSlice pos) const {
  const auto& c = model_.cfg();
  if (!c.has_ln()) return stack;
  const int layer = resolve_layer(layer_in);
  at::Tensor x = stack;
  if (!c.ln_is_rms()) x = x - x.mean(-1, true);
  const std::string name = layer == c.n_layers ? act_name("scale", -1, "ln_final")
                                               : act_name("scale", layer, mlp_input ? "ln2" : "ln1");
  at::Tensor scale = apply_pos(get(name), pos, -2);
  return x / scale;
}

at::Tensor ResidualAnalysis::token_directions(const std::vector<int64_t>& ids) const {
  const at::Tensor& W_U = model_.state_dict().at(param_name("W_U"));
  for (int64_t id : ids)
    if (id < 0 || id >= W_U.size(1)) throw Error("token id " + std::to_string(id) + " is out of range");
  at::Tensor idx = at::tensor(ids, at::kLong).to(W_U.device());
  at::Tensor dirs = W_U.index_select(1, idx).t();  // [n, d_model]
  return ids.size() == 1 ? dirs.squeeze(0) : dirs;
}

at::Tensor ResidualAnalysis::logit_direction(const std::vector<int64_t>& answer,
                                             const std::vector<int64_t>& wrong) const {
  if (answer.empty()) throw Error("logit attribution needs an answer token");
  at::Tensor dir = token_directions(answer);
  return wrong.empty() ? dir : dir - token_directions(wrong);
}

at::Tensor ResidualAnalysis::logit_attrs(const at::Tensor& stack, const std::vector<int64_t>& answer,
                                         const std::vector<int64_t>& wrong, PosSlice pos) const {
  at::Tensor dir = logit_direction(answer, wrong);
  at::Tensor scaled = apply_ln_to_stack(stack, -1, false, pos);
  return (scaled * dir.to(scaled.scalar_type())).sum(-1);
}

ResidualAnalysis::ExactAttribution ResidualAnalysis::exact_logit_attrs(const at::Tensor& stack,
                                                                       const std::vector<int64_t>& answer,
                                                                       const std::vector<int64_t>& wrong,
                                                                       PosSlice pos) const {
  const auto& sd = model_.state_dict();
  at::Tensor dir = logit_direction(answer, wrong);
  ExactAttribution r;
  at::Tensor w_dir = dir, constant = at::zeros({}, dir.options());
  std::vector<std::string> folded;
  const std::string lnf_w = param_name("w", -1, "ln_final"), lnf_b = param_name("b", -1, "ln_final");
  auto w = sd.find(lnf_w);
  if (w != sd.end()) w_dir = dir * w->second, folded.push_back(lnf_w + " into the direction");
  auto b = sd.find(lnf_b);
  if (b != sd.end()) constant = constant + (dir * b->second).sum(-1), folded.push_back(lnf_b + " . direction");
  at::Tensor b_U = sd.at(param_name("b_U"));
  at::Tensor bu = b_U.index_select(0, at::tensor(answer, at::kLong));
  if (!wrong.empty()) bu = bu - b_U.index_select(0, at::tensor(wrong, at::kLong));
  constant = constant + (answer.size() == 1 ? bu.squeeze(0) : bu);
  folded.push_back("b_U difference");
  at::Tensor scaled = apply_ln_to_stack(stack, -1, false, pos);
  r.attrs = (scaled * w_dir.to(scaled.scalar_type())).sum(-1);
  const int64_t batch = r.attrs.size(1);
  r.constant = constant.expand({batch}).contiguous();
  r.total = r.attrs.sum(0) + r.constant;
  r.note = "exact: folded ";
  for (size_t i = 0; i < folded.size(); ++i) r.note += (i ? ", " : "") + folded[i];
  return r;
}

}  // namespace mechlens
