// The one place hook names are made: TransformerLens's utils.get_act_name.
//   act_name("resid_pre", 3)          -> "blocks.3.hook_resid_pre"
//   act_name("pattern", 1)            -> "blocks.1.attn.hook_pattern"
//   act_name("post", 0)               -> "blocks.0.mlp.hook_post"
//   act_name("scale", 2, "ln1")       -> "blocks.2.ln1.hook_scale"
//   act_name("scale")                 -> "ln_final.hook_scale"
//   act_name("embed")                 -> "hook_embed"
//   act_name("k6a")                   -> "blocks.6.attn.hook_k"   (TL's short form)
//   act_name("blocks.0.hook_mlp_out") -> itself (a full name passes through)
// Aliases as TL: attn -> pattern, attn_logits -> attn_scores, key/query/value -> k/q/v,
// mlp_pre/mlp_mid/mlp_post -> pre/mid/post; layer types a -> attn, m -> mlp, b -> none.
// Any other layer type is a module path inside the block: act_name("scale", 2, "mlp.ln")
// -> "blocks.2.mlp.ln.hook_scale" (SoLU's norm); act_name("scale", -1, "ln_final") ->
// "ln_final.hook_scale" (TL would double the prefix there).
#pragma once
#include <string>
#include <vector>

namespace mechlens {

std::string act_name(const std::string& name, int layer = -1, const std::string& layer_type = "");

// act_name at layers 0 .. n_layers - 1:
//   act_names("pattern", 2) -> {"blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"}.
std::vector<std::string> act_names(const std::string& name, int n_layers, const std::string& layer_type = "");

// Weight names under TransformerLens's state-dict convention:
//   param_name("W_Q", 2) -> "blocks.2.attn.W_Q", param_name("W_in", 0) -> "blocks.0.mlp.W_in",
//   param_name("w", 1, "ln2") -> "blocks.1.ln2.w", param_name("W_E") -> "embed.W_E",
//   param_name("W_pos") -> "pos_embed.W_pos", param_name("W_U") -> "unembed.W_U",
//   param_name("w", -1, "ln_final") -> "ln_final.w", param_name("w", 0, "mlp.ln") ->
//   "blocks.0.mlp.ln.w" (SoLU's norm).
// Attention: W_Q W_K W_V W_O b_Q b_K b_V b_O and the fused storages W_qkv b_qkv
// ([d_model, (h + 2 kvh) d_head], HookedTransformer::parameters()); MLP: W_in W_gate W_out
// b_in b_out; norms: w b with layer type ln1, ln2, ln_final or mlp.ln.
std::string param_name(const std::string& name, int layer = -1, const std::string& layer_type = "");

}  // namespace mechlens
