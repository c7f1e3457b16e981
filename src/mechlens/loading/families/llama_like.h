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
StateDict llama_like_convert(const TensorStore& ts, const ModelConfig& cfg);

}  // namespace mechlens::conv
