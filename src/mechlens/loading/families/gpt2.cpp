// GPT-2 (GPT2LMHeadModel). Conv1D weights are stored [in, out]; c_attn packs q|k|v
// along its output axis.
#include "mechlens/core/error.h"
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"

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
    sd["embed.W_E"] = ts.get(p + "wte.weight", {c.d_vocab, dm});
    sd["pos_embed.W_pos"] = ts.get(p + "wpe.weight", {c.n_ctx, dm});
    for (int l = 0; l < c.n_layers; ++l) {
      const std::string s = p + "h." + std::to_string(l) + ".", d = "blocks." + std::to_string(l) + ".";
      sd[d + "ln1.w"] = ts.get(s + "ln_1.weight", {dm});
      sd[d + "ln1.b"] = ts.get(s + "ln_1.bias", {dm});
      at::Tensor w = ts.get(s + "attn.c_attn.weight", {dm, 3 * dm});
      at::Tensor b = ts.get(s + "attn.c_attn.bias", {3 * dm});
      const char* names[] = {"Q", "K", "V"};
      for (int i = 0; i < 3; ++i) {
        sd[d + "attn.W_" + names[i]] =
            w.slice(1, i * dm, (i + 1) * dm).reshape({dm, h, dh}).permute({1, 0, 2}).contiguous();
        sd[d + "attn.b_" + names[i]] = b.slice(0, i * dm, (i + 1) * dm).reshape({h, dh}).contiguous();
      }
      sd[d + "attn.W_O"] = ts.get(s + "attn.c_proj.weight", {dm, dm}).reshape({h, dh, dm});
      sd[d + "attn.b_O"] = ts.get(s + "attn.c_proj.bias", {dm});
      sd[d + "ln2.w"] = ts.get(s + "ln_2.weight", {dm});
      sd[d + "ln2.b"] = ts.get(s + "ln_2.bias", {dm});
      sd[d + "mlp.W_in"] = ts.get(s + "mlp.c_fc.weight", {dm, c.d_mlp});
      sd[d + "mlp.b_in"] = ts.get(s + "mlp.c_fc.bias", {c.d_mlp});
      sd[d + "mlp.W_out"] = ts.get(s + "mlp.c_proj.weight", {c.d_mlp, dm});
      sd[d + "mlp.b_out"] = ts.get(s + "mlp.c_proj.bias", {dm});
    }
    sd["ln_final.w"] = ts.get(p + "ln_f.weight", {dm});
    sd["ln_final.b"] = ts.get(p + "ln_f.bias", {dm});
    sd["unembed.W_U"] = unembed_from(ts, "lm_head.weight", sd["embed.W_E"], c);
    return sd;
  };
  return f;
}

}  // namespace mechlens
