// Gemma (GemmaForCausalLM): the LLaMA layout with three differences, all folded into
// weights as TransformerLens does: embeddings are multiplied by sqrt(d_model) (folded
// into W_E, in the model dtype, while the tied W_U keeps the raw embedding), RMSNorm
// multiplies by (1 + w) (stored as w + 1), and the MLP uses tanh-approximated GELU.
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/loading/families/llama_like.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

Family gemma_family() {
  Family f;
  f.name = "gemma";
  f.model_types = {"gemma"};
  f.architectures = {"GemmaForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    ModelConfig c = conv::llama_like_config(hf, where, true);
    // transformers 4.40 uses hidden_activation, and tanh-GELU when it is unset.
    c.act_fn = conv::act_from_hf(conv::hf_string_or(hf, "hidden_activation", "gelu_pytorch_tanh", where), where);
    return c;
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) {
    StateDict sd = conv::llama_like_convert(ts, c);
    const at::Tensor raw = sd[param_name("W_E")];
    if (!ts.contains("lm_head.weight")) sd[param_name("W_U")] = raw.t().contiguous();
    sd[param_name("W_E")] = raw * at::scalar_tensor(std::sqrt(static_cast<double>(c.d_model)), raw.options());
    for (auto& [name, t] : sd)
      if (name.size() > 2 && name.compare(name.size() - 2, 2, ".w") == 0) t = t.to(at::kFloat) + 1.0;  // as HF: in float32
    return sd;
  };
  return f;
}

}  // namespace mechlens
