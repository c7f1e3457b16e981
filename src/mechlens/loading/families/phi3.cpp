// Phi-3 (Phi3ForCausalLM): the LLaMA layout with q, k and v fused in one qkv_proj
// ([q; k; v] rows) and the gate and up projections fused in one gate_up_proj ([gate; up]
// rows: up_states.chunk(2) gives gate first). Sliding window as Mistral when set; the
// LongRoPE ("su" / "longrope") scaling of the 128k variants is not supported.
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/loading/families/llama_like.h"

namespace mechlens {

Family phi3_family() {
  Family f;
  f.name = "phi3";
  f.model_types = {"phi3"};
  f.architectures = {"Phi3ForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    ModelConfig c = conv::llama_like_config(hf, where, false);  // LongRoPE ("su") scaling is refused there
    conv::sliding_window_from_hf(c, hf, where);
    return c;
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) {
    conv::LlamaLayout fused;
    fused.fused_qkv = fused.fused_gate_up = true;
    return conv::llama_like_convert(ts, c, fused);
  };
  return f;
}

}  // namespace mechlens
