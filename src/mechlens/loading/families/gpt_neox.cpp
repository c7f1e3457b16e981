// GPT-NeoX / Pythia (GPTNeoXForCausalLM): parallel attention + MLP with two layer
// norms, partial rotary (rotate_half pairing), query_key_value packed head by head.
#include "mechlens/core/error.h"
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

Family gpt_neox_family() {
  Family f;
  f.name = "gpt_neox";
  f.model_types = {"gpt_neox"};
  f.architectures = {"GPTNeoXForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    using namespace conv;
    ModelConfig c;
    c.d_model = hf_int(hf, {"hidden_size"}, where);
    c.n_layers = hf_int(hf, {"num_hidden_layers"}, where);
    c.n_heads = hf_int(hf, {"num_attention_heads"}, where);
    if (c.n_heads == 0 || c.d_model % c.n_heads) fail(where, "hidden_size must be a multiple of num_attention_heads");
    c.d_head = c.d_model / c.n_heads;
    c.d_mlp = hf_int(hf, {"intermediate_size"}, where);
    c.d_vocab = hf_int(hf, {"vocab_size"}, where);
    c.n_ctx = hf_int(hf, {"max_position_embeddings"}, where);
    c.act_fn = act_from_hf(hf_string_or(hf, "hidden_act", "gelu", where), where);
    c.eps = hf_double_or(hf, {"layer_norm_eps"}, 1e-5, where);
    c.positional_embedding_type = PosEmbed::Rotary;
    c.rotary_dim = static_cast<int>(c.d_head * hf_double_or(hf, {"rotary_pct"}, 0.25, where));
    c.rotary_base = hf_double_or(hf, {"rotary_emb_base", "rope_theta"}, 10000.0, where);
    if (hf.contains("rope_scaling") && !hf["rope_scaling"].is_null()) fail(where, "rope_scaling is not supported");
    c.parallel_attn_mlp = hf_bool_or(hf, "use_parallel_residual", true, where);
    c.tie_word_embeddings = hf_bool_or(hf, "tie_word_embeddings", false, where);
    common_fields(c, hf, where);
    return c;
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) {
    using namespace conv;
    const std::string p = detect_prefix(ts, "embed_in.weight", "gpt_neox.");
    const int64_t dm = c.d_model, h = c.n_heads, dh = c.d_head;
    StateDict sd;
    sd[param_name("W_E")] = ts.get(p + "embed_in.weight", {c.d_vocab, dm});
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string s = p + "layers." + std::to_string(l) + ".";
      sd[param_name("w", l, "ln1")] = ts.get(s + "input_layernorm.weight", {dm});
      sd[param_name("b", l, "ln1")] = ts.get(s + "input_layernorm.bias", {dm});
      // [3 * d_model, d_model] viewed as [heads, (q|k|v) * d_head, d_model].
      at::Tensor w = ts.get(s + "attention.query_key_value.weight", {3 * dm, dm}).view({h, 3 * dh, dm});
      // attention_bias = false checkpoints have no q/k/v or dense biases (zeros then).
      const bool has_bias = ts.contains(s + "attention.query_key_value.bias");
      at::Tensor b = has_bias ? ts.get(s + "attention.query_key_value.bias", {3 * dm}).view({h, 3 * dh})
                              : at::zeros({h, 3 * dh});
      const char* W_names[] = {"W_Q", "W_K", "W_V"};
      const char* b_names[] = {"b_Q", "b_K", "b_V"};
      for (int i = 0; i < 3; ++i) {
        sd[param_name(W_names[i], l)] = w.slice(1, i * dh, (i + 1) * dh).permute({0, 2, 1}).contiguous();
        sd[param_name(b_names[i], l)] = b.slice(1, i * dh, (i + 1) * dh).contiguous();
      }
      sd[param_name("W_O", l)] = linear_to_W_O(ts.get(s + "attention.dense.weight", {dm, dm}), h);
      if (ts.contains(s + "attention.dense.bias")) sd[param_name("b_O", l)] = ts.get(s + "attention.dense.bias", {dm});
      sd[param_name("w", l, "ln2")] = ts.get(s + "post_attention_layernorm.weight", {dm});
      sd[param_name("b", l, "ln2")] = ts.get(s + "post_attention_layernorm.bias", {dm});
      sd[param_name("W_in", l)] = ts.get(s + "mlp.dense_h_to_4h.weight", {c.d_mlp, dm}).t().contiguous();
      sd[param_name("b_in", l)] = ts.get(s + "mlp.dense_h_to_4h.bias", {c.d_mlp});
      sd[param_name("W_out", l)] = ts.get(s + "mlp.dense_4h_to_h.weight", {dm, c.d_mlp}).t().contiguous();
      sd[param_name("b_out", l)] = ts.get(s + "mlp.dense_4h_to_h.bias", {dm});
    }
    sd[param_name("w", -1, "ln_final")] = ts.get(p + "final_layer_norm.weight", {dm});
    sd[param_name("b", -1, "ln_final")] = ts.get(p + "final_layer_norm.bias", {dm});
    sd[param_name("W_U")] = unembed_from(ts, "embed_out.weight", sd[param_name("W_E")], c);
    return sd;
  };
  return f;
}

}  // namespace mechlens
