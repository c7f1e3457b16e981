#include "mechlens/model/weight_processing.h"

#include <sstream>

#include "mechlens/core/error.h"
#include "mechlens/core/factored_matrix.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

ProcessingOptions ProcessingOptions::parse(const std::string& s) {
  if (s == "none" || s.empty()) return none();
  if (s == "tl") return tl_defaults();
  ProcessingOptions o;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (item == "tl") o = tl_defaults();
    else if (item == "tl+refactor") o = tl_defaults(), o.refactor_factored_attn_matrices = true;
    else if (item == "fold_ln") o.fold_ln = true;
    else if (item == "center_writing_weights") o.center_writing_weights = true;
    else if (item == "center_unembed") o.center_unembed = true;
    else if (item == "fold_value_biases") o.fold_value_biases = true;
    else if (item == "refactor_factored_attn_matrices") o.refactor_factored_attn_matrices = true;
    else
      throw Error("unknown weight processing \"" + item +
                  "\" (use none, tl, tl+refactor, or a list of fold_ln, center_writing_weights, center_unembed, "
                  "fold_value_biases, refactor_factored_attn_matrices)");
  }
  return o;
}

bool ProcessingOptions::any() const {
  return fold_ln || center_writing_weights || center_unembed || fold_value_biases || refactor_factored_attn_matrices;
}

std::string ProcessingOptions::describe() const {
  if (!any()) return "none";
  std::vector<std::string> parts;
  if (fold_ln) parts.push_back("fold_ln");
  if (center_writing_weights) parts.push_back("center_writing_weights");
  if (center_unembed) parts.push_back("center_unembed");
  if (fold_value_biases) parts.push_back("fold_value_biases");
  if (refactor_factored_attn_matrices) parts.push_back("refactor_factored_attn_matrices");
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : ", ") + p;
  const bool is_tl = fold_ln && center_writing_weights && center_unembed && fold_value_biases;
  return std::string(is_tl ? (refactor_factored_attn_matrices ? "tl+refactor" : "tl") : "custom") + " (" + s + ")";
}

namespace {

void fold_layer_norm(ModelConfig& c, StateDict& sd) {
  if (!c.ln_has_weight()) return;  // LNPre / RMSPre / none: nothing to fold
  const bool fold_biases = c.ln_has_bias();  // LN folds biases and centers; RMS does neither
  const bool center = c.normalization_type == NormType::LN;
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string ln1_w = param_name("w", l, "ln1"), ln1_b = param_name("b", l, "ln1");
    const at::Tensor w1 = sd.at(ln1_w);
    for (const char* m : {"Q", "K", "V"}) {
      at::Tensor& W = sd.at(param_name(std::string("W_") + m, l));
      at::Tensor& bias = sd.at(param_name(std::string("b_") + m, l));
      if (fold_biases) bias = bias + (W * sd.at(ln1_b).view({1, -1, 1})).sum(-2);
      W = W * w1.view({1, -1, 1});
      if (center) W = W - W.mean(1, true);
    }
    sd.erase(ln1_w);
    sd.erase(ln1_b);
    if (!c.attn_only) {
      const std::string ln2_w = param_name("w", l, "ln2"), ln2_b = param_name("b", l, "ln2");
      const at::Tensor w2 = sd.at(ln2_w);
      at::Tensor& W_in = sd.at(param_name("W_in", l));
      if (fold_biases) {
        at::Tensor& b_in = sd.at(param_name("b_in", l));
        b_in = b_in + (W_in * sd.at(ln2_b).view({-1, 1})).sum(-2);
      }
      W_in = W_in * w2.view({-1, 1});
      if (c.gated_mlp) {
        at::Tensor& W_gate = sd.at(param_name("W_gate", l));
        W_gate = W_gate * w2.view({-1, 1});
      }
      if (center) W_in = W_in - W_in.mean(0, true);
      sd.erase(ln2_w);
      sd.erase(ln2_b);
    }
  }
  const std::string lnf_w = param_name("w", -1, "ln_final"), lnf_b = param_name("b", -1, "ln_final");
  at::Tensor& W_U = sd.at(param_name("W_U"));
  if (fold_biases) {
    at::Tensor& b_U = sd.at(param_name("b_U"));
    b_U = b_U + (W_U * sd.at(lnf_b).view({-1, 1})).sum(-2);
  }
  W_U = W_U * sd.at(lnf_w).view({-1, 1});
  if (center) W_U = W_U - W_U.mean(0, true);
  sd.erase(lnf_w);
  sd.erase(lnf_b);
  c.normalization_type = c.ln_is_rms() ? NormType::RMSPre : NormType::LNPre;
}

void center_writing_weights(const ModelConfig& c, StateDict& sd) {
  auto center_last = [](at::Tensor& t) { t = t - t.mean(-1, true); };
  center_last(sd.at(param_name("W_E")));
  if (c.positional_embedding_type == PosEmbed::Standard) center_last(sd.at(param_name("W_pos")));
  for (int l = 0; l < c.n_layers; ++l) {
    center_last(sd.at(param_name("W_O", l)));
    center_last(sd.at(param_name("b_O", l)));
    if (!c.attn_only) {
      center_last(sd.at(param_name("W_out", l)));
      center_last(sd.at(param_name("b_out", l)));
    }
  }
}

void fold_value_biases(const ModelConfig& c, StateDict& sd) {
  const int64_t rep = c.n_heads / c.kv_heads();
  for (int l = 0; l < c.n_layers; ++l) {
    at::Tensor& b_V = sd.at(param_name("b_V", l));
    at::Tensor per_head = rep > 1 ? at::repeat_interleave(b_V, rep, 0) : b_V;  // [heads, d_head]
    at::Tensor& b_O = sd.at(param_name("b_O", l));
    b_O = b_O + (per_head.unsqueeze(-1) * sd.at(param_name("W_O", l))).sum(at::IntArrayRef{0, 1});
    b_V = at::zeros_like(b_V);
  }
}

void refactor_factored_attn_matrices(const ModelConfig& c, StateDict& sd) {
  if (c.positional_embedding_type == PosEmbed::Rotary)
    throw Error("refactor_factored_attn_matrices cannot be used with rotary embeddings (as in TransformerLens)");
  if (c.kv_heads() != c.n_heads)
    throw Error("refactor_factored_attn_matrices needs n_key_value_heads == n_heads");
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string W_Q = param_name("W_Q", l), b_Q = param_name("b_Q", l), W_K = param_name("W_K", l),
                      b_K = param_name("b_K", l), W_V = param_name("W_V", l), b_V = param_name("b_V", l),
                      W_O_name = param_name("W_O", l), b_O = param_name("b_O", l);
    // QK: append the bias as an extra input row, then balance the two factors.
    at::Tensor Q = at::cat({sd.at(W_Q), sd.at(b_Q).unsqueeze(1)}, 1);  // [h, dm+1, dh]
    at::Tensor K = at::cat({sd.at(W_K), sd.at(b_K).unsqueeze(1)}, 1);
    auto [U, S, V] = FactoredMatrix(Q, K.transpose(-1, -2)).svd();
    at::Tensor root = S.sqrt();
    at::Tensor Q_even = U * root.unsqueeze(-2);  // [h, dm+1, dh]
    at::Tensor K_even = V * root.unsqueeze(-2);  // [h, dm+1, dh]
    const int64_t dm = c.d_model;
    sd[W_Q] = Q_even.slice(1, 0, dm).contiguous();
    sd[b_Q] = Q_even.select(1, dm).contiguous();
    sd[W_K] = K_even.slice(1, 0, dm).contiguous();
    sd[b_K] = K_even.select(1, dm).contiguous();
    // OV: fold b_V into b_O, then W_V = U S, W_O = V^T (orthonormal rows), as TL splits it.
    at::Tensor W_O = sd.at(W_O_name);
    sd[b_O] = sd.at(b_O) + (sd.at(b_V).unsqueeze(-1) * W_O).sum(at::IntArrayRef{0, 1});
    auto [Uo, So, Vo] = FactoredMatrix(sd.at(W_V), W_O).svd();
    sd[W_V] = (Uo * So.unsqueeze(-2)).contiguous();
    sd[W_O_name] = Vo.transpose(-1, -2).contiguous();
    sd[b_V] = at::zeros_like(sd.at(b_V));
  }
}

}  // namespace

void process_weights(ModelConfig& cfg, StateDict& sd, const ProcessingOptions& o) {
  at::NoGradGuard no_grad;
  for (auto& [name, t] : sd) t = t.to(at::kFloat);  // process in float32
  if (o.fold_ln) fold_layer_norm(cfg, sd);
  if (o.center_writing_weights &&
      (cfg.normalization_type == NormType::LN || cfg.normalization_type == NormType::LNPre))
    center_writing_weights(cfg, sd);
  if (o.center_unembed) {
    at::Tensor& W_U = sd.at(param_name("W_U"));
    W_U = W_U - W_U.mean(-1, true);
    at::Tensor& b_U = sd.at(param_name("b_U"));
    b_U = b_U - b_U.mean();
  }
  if (o.fold_value_biases) fold_value_biases(cfg, sd);
  if (o.refactor_factored_attn_matrices) refactor_factored_attn_matrices(cfg, sd);
  for (auto& [name, t] : sd) t = t.contiguous();
}

}  // namespace mechlens
