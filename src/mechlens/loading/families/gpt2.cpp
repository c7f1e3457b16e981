// GPT-2 (GPT2LMHeadModel). Conv1D weights are stored [in, out]; c_attn packs q|k|v
// along its output axis.
#include "mechlens/core/error.h"
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

Family gpt2_family() {
  Family f;
  f.name = "gpt2";
  f.model_types = {"gpt2"};
  f.architectures = {"GPT2LMHeadModel", "GPT2Model"};
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
    c.n_ctx = hf_int(hf, {"n_positions", "n_ctx"}, where);
    c.act_fn = act_from_hf(hf_string_or(hf, "activation_function", "gelu_new", where), where);
    c.eps = hf_double_or(hf, {"layer_norm_epsilon"}, 1e-5, where);
    c.use_attn_scale = hf_bool_or(hf, "scale_attn_weights", true, where);
    if (hf_bool_or(hf, "scale_attn_by_inverse_layer_idx", false, where))
      fail(where, "scale_attn_by_inverse_layer_idx is not supported");
    c.tie_word_embeddings = hf_bool_or(hf, "tie_word_embeddings", true, where);
    common_fields(c, hf, where);
    return c;
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) {
    using namespace conv;
    const std::string p = detect_prefix(ts, "wte.weight", "transformer.");
    const int64_t dm = c.d_model, h = c.n_heads, dh = c.d_head;
    StateDict sd;
    sd[param_name("W_E")] = ts.get(p + "wte.weight", {c.d_vocab, dm});
    sd[param_name("W_pos")] = ts.get(p + "wpe.weight", {c.n_ctx, dm});
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string s = p + "h." + std::to_string(l) + ".";
      sd[param_name("w", l, "ln1")] = ts.get(s + "ln_1.weight", {dm});
      sd[param_name("b", l, "ln1")] = ts.get(s + "ln_1.bias", {dm});
      at::Tensor w = ts.get(s + "attn.c_attn.weight", {dm, 3 * dm});
      at::Tensor b = ts.get(s + "attn.c_attn.bias", {3 * dm});
      const char* W_names[] = {"W_Q", "W_K", "W_V"};
      const char* b_names[] = {"b_Q", "b_K", "b_V"};
      for (int i = 0; i < 3; ++i) {
        sd[param_name(W_names[i], l)] =
            w.slice(1, i * dm, (i + 1) * dm).reshape({dm, h, dh}).permute({1, 0, 2}).contiguous();
        sd[param_name(b_names[i], l)] = b.slice(0, i * dm, (i + 1) * dm).reshape({h, dh}).contiguous();
      }
      sd[param_name("W_O", l)] = ts.get(s + "attn.c_proj.weight", {dm, dm}).reshape({h, dh, dm});
      sd[param_name("b_O", l)] = ts.get(s + "attn.c_proj.bias", {dm});
      sd[param_name("w", l, "ln2")] = ts.get(s + "ln_2.weight", {dm});
      sd[param_name("b", l, "ln2")] = ts.get(s + "ln_2.bias", {dm});
      sd[param_name("W_in", l)] = ts.get(s + "mlp.c_fc.weight", {dm, c.d_mlp});
      sd[param_name("b_in", l)] = ts.get(s + "mlp.c_fc.bias", {c.d_mlp});
      sd[param_name("W_out", l)] = ts.get(s + "mlp.c_proj.weight", {c.d_mlp, dm});
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
