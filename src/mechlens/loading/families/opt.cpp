// OPT (OPTForCausalLM): learned positions with an offset of 2 rows, pre-LN blocks,
// ReLU MLP, lm_head tied to embed_tokens.
#include "mechlens/core/error.h"
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

Family opt_family() {
  Family f;
  f.name = "opt";
  f.model_types = {"opt"};
  f.architectures = {"OPTForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    using namespace conv;
    ModelConfig c;
    c.d_model = hf_int(hf, {"hidden_size"}, where);
    c.n_layers = hf_int(hf, {"num_hidden_layers"}, where);
    c.n_heads = hf_int(hf, {"num_attention_heads"}, where);
    if (c.n_heads == 0 || c.d_model % c.n_heads) fail(where, "hidden_size must be a multiple of num_attention_heads");
    c.d_head = c.d_model / c.n_heads;
    c.d_mlp = hf_int(hf, {"ffn_dim"}, where);
    c.d_vocab = hf_int(hf, {"vocab_size"}, where);
    c.n_ctx = hf_int(hf, {"max_position_embeddings"}, where);
    c.act_fn = act_from_hf(hf_string_or(hf, "activation_function", "relu", where), where);
    c.eps = 1e-5;  // nn.LayerNorm's default, which OPT uses
    if (!hf_bool_or(hf, "do_layer_norm_before", true, where))
      fail(where, "post-LayerNorm OPT (do_layer_norm_before = false, OPT-350m) is not supported");
    if (hf_int_or(hf, {"word_embed_proj_dim"}, c.d_model, where) != c.d_model)
      fail(where, "word_embed_proj_dim != hidden_size (project_in/out) is not supported");
    if (hf_bool_or(hf, "_remove_final_layer_norm", false, where))
      fail(where, "_remove_final_layer_norm is not supported");
    if (!hf_bool_or(hf, "enable_bias", true, where)) fail(where, "enable_bias = false is not supported");
    if (!hf_bool_or(hf, "layer_norm_elementwise_affine", true, where))
      fail(where, "layer_norm_elementwise_affine = false is not supported");
    c.tie_word_embeddings = hf_bool_or(hf, "tie_word_embeddings", true, where);
    common_fields(c, hf, where);
    return c;
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) {
    using namespace conv;
    std::string p = detect_prefix(ts, "decoder.embed_tokens.weight", "model.") + "decoder.";
    const int64_t dm = c.d_model, h = c.n_heads, hd = c.n_heads * c.d_head;
    StateDict sd;
    sd[param_name("W_E")] = ts.get(p + "embed_tokens.weight", {c.d_vocab, dm});
    // HF looks positions up at index pos + 2; drop the two unused rows.
    sd[param_name("W_pos")] = ts.get(p + "embed_positions.weight", {c.n_ctx + 2, dm}).slice(0, 2).contiguous();
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string s = p + "layers." + std::to_string(l) + ".";
      sd[param_name("w", l, "ln1")] = ts.get(s + "self_attn_layer_norm.weight", {dm});
      sd[param_name("b", l, "ln1")] = ts.get(s + "self_attn_layer_norm.bias", {dm});
      const char* W_names[] = {"W_Q", "W_K", "W_V"};
      const char* b_names[] = {"b_Q", "b_K", "b_V"};
      const char* hf_names[] = {"q_proj", "k_proj", "v_proj"};
      for (int i = 0; i < 3; ++i) {
        const std::string w = s + "self_attn." + hf_names[i];
        sd[param_name(W_names[i], l)] = linear_to_heads(ts.get(w + ".weight", {hd, dm}), h);
        sd[param_name(b_names[i], l)] = ts.get(w + ".bias", {hd}).reshape({h, c.d_head});
      }
      sd[param_name("W_O", l)] = linear_to_W_O(ts.get(s + "self_attn.out_proj.weight", {dm, hd}), h);
      sd[param_name("b_O", l)] = ts.get(s + "self_attn.out_proj.bias", {dm});
      sd[param_name("w", l, "ln2")] = ts.get(s + "final_layer_norm.weight", {dm});
      sd[param_name("b", l, "ln2")] = ts.get(s + "final_layer_norm.bias", {dm});
      sd[param_name("W_in", l)] = ts.get(s + "fc1.weight", {c.d_mlp, dm}).t().contiguous();
      sd[param_name("b_in", l)] = ts.get(s + "fc1.bias", {c.d_mlp});
      sd[param_name("W_out", l)] = ts.get(s + "fc2.weight", {dm, c.d_mlp}).t().contiguous();
      sd[param_name("b_out", l)] = ts.get(s + "fc2.bias", {dm});
    }
    sd[param_name("w", -1, "ln_final")] = ts.get(p + "final_layer_norm.weight", {dm});
    sd[param_name("b", -1, "ln_final")] = ts.get(p + "final_layer_norm.bias", {dm});
    sd[param_name("W_U")] = unembed_from(ts, "lm_head.weight", sd[param_name("W_E")], c);
    return sd;
  };
  return f;
}

}  // namespace mechlens
