// LLaMA (LlamaForCausalLM), LLaMA-2 and grouped-query LLaMA variants.
#include "mechlens/core/error.h"
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/loading/families/llama_like.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {
namespace conv {

ModelConfig llama_like_config(const nlohmann::json& hf, const std::string& where, bool tie_default) {
  ModelConfig c;
  c.d_model = hf_int(hf, {"hidden_size"}, where);
  c.n_layers = hf_int(hf, {"num_hidden_layers"}, where);
  c.n_heads = hf_int(hf, {"num_attention_heads"}, where);
  if (c.n_heads == 0) fail(where, "num_attention_heads must be positive");
  c.d_head = hf_int_or(hf, {"head_dim"}, c.d_model / c.n_heads, where);
  c.n_key_value_heads = hf_int_or(hf, {"num_key_value_heads"}, c.n_heads, where);
  c.d_mlp = hf_int(hf, {"intermediate_size"}, where);
  c.d_vocab = hf_int(hf, {"vocab_size"}, where);
  c.n_ctx = hf_int(hf, {"max_position_embeddings"}, where);
  c.act_fn = act_from_hf(hf_string_or(hf, "hidden_act", "silu", where), where);
  c.normalization_type = NormType::RMS;
  c.final_rms = true;
  c.eps = hf_double_or(hf, {"rms_norm_eps"}, 1e-6, where);
  c.positional_embedding_type = PosEmbed::Rotary;
  c.rotary_dim = c.d_head;
  c.rotary_base = hf_double_or(hf, {"rope_theta"}, 10000.0, where);
  rope_scaling_from_hf(c, hf, where);
  c.gated_mlp = true;
  c.tie_word_embeddings = hf_bool_or(hf, "tie_word_embeddings", tie_default, where);
  common_fields(c, hf, where);
  return c;
}

void sliding_window_from_hf(ModelConfig& c, const nlohmann::json& hf, const std::string& where) {
  int window = hf_int_or(hf, {"sliding_window"}, -1, where);
  if (window > 0 && window < c.n_ctx) {
    c.window_size = window + 1;
    c.attn_types.assign(c.n_layers, AttnType::Local);
  }
}

StateDict llama_like_convert(const TensorStore& ts, const ModelConfig& c, const LlamaLayout& layout) {
  const std::string p = detect_prefix(ts, "embed_tokens.weight", "model.");
  const int64_t dm = c.d_model, h = c.n_heads, kv = c.kv_heads(), dh = c.d_head;
  StateDict sd;
  sd[param_name("W_E")] = ts.get(p + "embed_tokens.weight", {c.d_vocab, dm});
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string s = p + "layers." + std::to_string(l) + ".";
    sd[param_name("w", l, "ln1")] = ts.get(s + "input_layernorm.weight", {dm});
    sd[param_name("w", l, "ln2")] = ts.get(s + "post_attention_layernorm.weight", {dm});
    const char* W_names[] = {"W_Q", "W_K", "W_V"};
    const char* b_names[] = {"b_Q", "b_K", "b_V"};
    const char* hf_names[] = {"q_proj", "k_proj", "v_proj"};
    const int64_t heads[] = {h, kv, kv};
    std::vector<at::Tensor> fused;
    if (layout.fused_qkv)
      fused = ts.get(s + "self_attn.qkv_proj.weight", {(h + 2 * kv) * dh, dm}).split_with_sizes({h * dh, kv * dh, kv * dh}, 0);
    for (int i = 0; i < 3; ++i) {
      const std::string w = s + "self_attn." + hf_names[i];
      at::Tensor weight = layout.fused_qkv ? fused[i] : ts.get(w + ".weight", {heads[i] * dh, dm});
      sd[param_name(W_names[i], l)] = linear_to_heads(weight, heads[i]);
      if (ts.contains(w + ".bias")) sd[param_name(b_names[i], l)] = ts.get(w + ".bias", {heads[i] * dh}).reshape({heads[i], dh});
    }
    sd[param_name("W_O", l)] = linear_to_W_O(ts.get(s + "self_attn.o_proj.weight", {dm, h * dh}), h);
    if (ts.contains(s + "self_attn.o_proj.bias")) sd[param_name("b_O", l)] = ts.get(s + "self_attn.o_proj.bias", {dm});
    at::Tensor gate, up;
    if (layout.fused_gate_up) {
      at::Tensor gu = ts.get(s + "mlp.gate_up_proj.weight", {2 * c.d_mlp, dm});
      gate = gu.slice(0, 0, c.d_mlp), up = gu.slice(0, c.d_mlp, 2 * c.d_mlp);
    } else {
      gate = ts.get(s + "mlp.gate_proj.weight", {c.d_mlp, dm}), up = ts.get(s + "mlp.up_proj.weight", {c.d_mlp, dm});
    }
    sd[param_name("W_gate", l)] = gate.t().contiguous();
    sd[param_name("W_in", l)] = up.t().contiguous();
    sd[param_name("W_out", l)] = ts.get(s + "mlp.down_proj.weight", {dm, c.d_mlp}).t().contiguous();
  }
  sd[param_name("w", -1, "ln_final")] = ts.get(p + "norm.weight", {dm});
  sd[param_name("W_U")] = unembed_from(ts, "lm_head.weight", sd[param_name("W_E")], c);
  return sd;
}

}  // namespace conv

Family llama_family() {
  Family f;
  f.name = "llama";
  f.model_types = {"llama"};
  f.architectures = {"LlamaForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    return conv::llama_like_config(hf, where, false);
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) { return conv::llama_like_convert(ts, c); };
  return f;
}

}  // namespace mechlens
