// GPT-Neo (GPTNeoForCausalLM): no 1/sqrt(d_head) attention scaling, q/k/v without
// bias, layers alternating global and local (sliding window) attention.
#include "mechlens/core/error.h"
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

Family gpt_neo_family() {
  Family f;
  f.name = "gpt_neo";
  f.model_types = {"gpt_neo"};
  f.architectures = {"GPTNeoForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    using namespace conv;
    ModelConfig c;
    c.d_model = hf_int(hf, {"hidden_size"}, where);
    c.n_layers = hf_int(hf, {"num_layers"}, where);
    c.n_heads = hf_int(hf, {"num_heads"}, where);
    if (c.n_heads == 0 || c.d_model % c.n_heads) fail(where, "hidden_size must be a multiple of num_heads");
    c.d_head = c.d_model / c.n_heads;
    c.d_mlp = hf_int_or(hf, {"intermediate_size"}, 4 * c.d_model, where);
    c.d_vocab = hf_int(hf, {"vocab_size"}, where);
    c.n_ctx = hf_int(hf, {"max_position_embeddings"}, where);
    c.act_fn = act_from_hf(hf_string_or(hf, "activation_function", "gelu_new", where), where);
    c.eps = hf_double_or(hf, {"layer_norm_epsilon"}, 1e-5, where);
    c.use_attn_scale = false;
    c.window_size = hf_int(hf, {"window_size"}, where);
    // attention_layers lists one type per layer ("global" / "local").
    auto it = hf.find("attention_layers");
    if (it == hf.end() || !it->is_array() || static_cast<int>(it->size()) != c.n_layers)
      fail(where, "attention_layers must list one attention type per layer");
    for (const auto& t : *it) {
      if (!t.is_string()) fail(where, "attention_layers entries must be strings");
      c.attn_types.push_back(parse_attn_type(t.get<std::string>(), where));
    }
    c.tie_word_embeddings = hf_bool_or(hf, "tie_word_embeddings", true, where);
    common_fields(c, hf, where);
    return c;
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) {
    using namespace conv;
    const std::string p = detect_prefix(ts, "wte.weight", "transformer.");
    const int64_t dm = c.d_model, h = c.n_heads, hd = c.n_heads * c.d_head;
    StateDict sd;
    sd[param_name("W_E")] = ts.get(p + "wte.weight", {c.d_vocab, dm});
    sd[param_name("W_pos")] = ts.get(p + "wpe.weight", {c.n_ctx, dm});
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string s = p + "h." + std::to_string(l) + ".";
      sd[param_name("w", l, "ln1")] = ts.get(s + "ln_1.weight", {dm});
      sd[param_name("b", l, "ln1")] = ts.get(s + "ln_1.bias", {dm});
      sd[param_name("W_Q", l)] = linear_to_heads(ts.get(s + "attn.attention.q_proj.weight", {hd, dm}), h);
      sd[param_name("W_K", l)] = linear_to_heads(ts.get(s + "attn.attention.k_proj.weight", {hd, dm}), h);
      sd[param_name("W_V", l)] = linear_to_heads(ts.get(s + "attn.attention.v_proj.weight", {hd, dm}), h);
      sd[param_name("W_O", l)] = linear_to_W_O(ts.get(s + "attn.attention.out_proj.weight", {dm, hd}), h);
      sd[param_name("b_O", l)] = ts.get(s + "attn.attention.out_proj.bias", {dm});
      sd[param_name("w", l, "ln2")] = ts.get(s + "ln_2.weight", {dm});
      sd[param_name("b", l, "ln2")] = ts.get(s + "ln_2.bias", {dm});
      sd[param_name("W_in", l)] = ts.get(s + "mlp.c_fc.weight", {c.d_mlp, dm}).t().contiguous();
      sd[param_name("b_in", l)] = ts.get(s + "mlp.c_fc.bias", {c.d_mlp});
      sd[param_name("W_out", l)] = ts.get(s + "mlp.c_proj.weight", {dm, c.d_mlp}).t().contiguous();
      sd[param_name("b_out", l)] = ts.get(s + "mlp.c_proj.bias", {dm});
    }
    sd[param_name("w", -1, "ln_final")] = ts.get(p + "ln_f.weight", {dm});
    sd[param_name("b", -1, "ln_final")] = ts.get(p + "ln_f.bias", {dm});
    sd[param_name("W_U")] = unembed_from(ts, "lm_head.weight", sd[param_name("W_E")], c);
    return sd;
  };
  return f;
}

}  // namespace mechlens
