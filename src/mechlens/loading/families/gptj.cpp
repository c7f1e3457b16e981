// GPT-J (GPTJForCausalLM): parallel attention + MLP reading ONE layer norm (copied
// into ln1 and ln2, as TransformerLens does), interleaved rotary (adjacent pairs) on
// the first rotary_dim features, no q/k/v/out biases, untied lm_head with a bias.
#include "mechlens/core/error.h"
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

Family gptj_family() {
  Family f;
  f.name = "gptj";
  f.model_types = {"gptj"};
  f.architectures = {"GPTJForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    using namespace conv;
    ModelConfig c;
    c.d_model = hf_int(hf, {"n_embd", "hidden_size"}, where);
    c.n_layers = hf_int(hf, {"n_layer", "num_hidden_layers"}, where);
    c.n_heads = hf_int(hf, {"n_head", "num_attention_heads"}, where);
    if (c.n_heads == 0 || c.d_model % c.n_heads) fail(where, "n_embd must be a multiple of n_head");
    c.d_head = c.d_model / c.n_heads;
    c.d_mlp = hf_int_or(hf, {"n_inner"}, 4 * c.d_model, where);
    c.d_vocab = hf_int(hf, {"vocab_size"}, where);
    c.n_ctx = hf_int(hf, {"n_positions", "max_position_embeddings"}, where);
    c.act_fn = act_from_hf(hf_string_or(hf, "activation_function", "gelu_new", where), where);
    c.eps = hf_double_or(hf, {"layer_norm_epsilon"}, 1e-5, where);
    c.positional_embedding_type = PosEmbed::Rotary;
    c.rotary_dim = hf_int_or(hf, {"rotary_dim"}, c.d_head, where);
    c.rotary_adjacent_pairs = true;
    c.parallel_attn_mlp = true;
    c.tie_word_embeddings = hf_bool_or(hf, "tie_word_embeddings", false, where);
    common_fields(c, hf, where);
    return c;
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) {
    using namespace conv;
    const std::string p = detect_prefix(ts, "wte.weight", "transformer.");
    const int64_t dm = c.d_model, h = c.n_heads, hd = c.n_heads * c.d_head;
    StateDict sd;
    sd[param_name("W_E")] = ts.get(p + "wte.weight", {c.d_vocab, dm});
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string s = p + "h." + std::to_string(l) + ".";
      at::Tensor ln_w = ts.get(s + "ln_1.weight", {dm}), ln_b = ts.get(s + "ln_1.bias", {dm});
      sd[param_name("w", l, "ln1")] = ln_w;
      sd[param_name("b", l, "ln1")] = ln_b;
      sd[param_name("w", l, "ln2")] = ln_w.clone();
      sd[param_name("b", l, "ln2")] = ln_b.clone();
      sd[param_name("W_Q", l)] = linear_to_heads(ts.get(s + "attn.q_proj.weight", {hd, dm}), h);
      sd[param_name("W_K", l)] = linear_to_heads(ts.get(s + "attn.k_proj.weight", {hd, dm}), h);
      sd[param_name("W_V", l)] = linear_to_heads(ts.get(s + "attn.v_proj.weight", {hd, dm}), h);
      sd[param_name("W_O", l)] = linear_to_W_O(ts.get(s + "attn.out_proj.weight", {dm, hd}), h);
      sd[param_name("W_in", l)] = ts.get(s + "mlp.fc_in.weight", {c.d_mlp, dm}).t().contiguous();
      sd[param_name("b_in", l)] = ts.get(s + "mlp.fc_in.bias", {c.d_mlp});
      sd[param_name("W_out", l)] = ts.get(s + "mlp.fc_out.weight", {dm, c.d_mlp}).t().contiguous();
      sd[param_name("b_out", l)] = ts.get(s + "mlp.fc_out.bias", {dm});
    }
    sd[param_name("w", -1, "ln_final")] = ts.get(p + "ln_f.weight", {dm});
    sd[param_name("b", -1, "ln_final")] = ts.get(p + "ln_f.bias", {dm});
    sd[param_name("W_U")] = unembed_from(ts, "lm_head.weight", sd[param_name("W_E")], c);
    if (ts.contains("lm_head.bias")) sd[param_name("b_U")] = ts.get("lm_head.bias", {c.vocab_out()});
    return sd;
  };
  return f;
}

}  // namespace mechlens
