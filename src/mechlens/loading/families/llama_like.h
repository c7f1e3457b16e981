// The LLaMA layout, shared by LLaMA, Mistral and Gemma: RMSNorm, rotary on the whole
// head (rotate_half), SwiGLU-style gated MLP, grouped-query attention, no biases.
// Each of those families adjusts the result in its own file.
#pragma once
#include <nlohmann/json.hpp>

#include "mechlens/loading/tensor_store.h"
#include "mechlens/model/config.h"
#include "mechlens/model/weights.h"

namespace mechlens::conv {

ModelConfig llama_like_config(const nlohmann::json& hf, const std::string& where, bool tie_default);
// HF's sliding_window (Mistral, Phi-3): transformers' eager mask lets query i see keys
// i - sliding_window <= j <= i, i.e. sliding_window + 1 keys, which is our window_size.
void sliding_window_from_hf(ModelConfig& c, const nlohmann::json& hf, const std::string& where);

// Where a family keeps its projections: separate q/k/v_proj and gate/up_proj (LLaMA),
// or fused qkv_proj ([q; k; v] rows) and gate_up_proj ([gate; up] rows) (Phi-3).
struct LlamaLayout {
  bool fused_qkv = false;
  bool fused_gate_up = false;
};
StateDict llama_like_convert(const TensorStore& ts, const ModelConfig& cfg, const LlamaLayout& layout = {});

}  // namespace mechlens::conv
