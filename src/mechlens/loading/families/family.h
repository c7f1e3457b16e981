// A model family: how one Hugging Face architecture maps onto ModelConfig and
// TransformerLens-named weights. Every difference between families lives in its
// converter file; the forward pass only reads config flags.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "mechlens/loading/tensor_store.h"
#include "mechlens/model/config.h"
#include "mechlens/model/weights.h"

namespace mechlens {

struct Family {
  std::string name;                      // "gpt2"
  std::vector<std::string> model_types;  // HF config "model_type" values
  std::vector<std::string> architectures;  // HF config "architectures" values
  // HF config.json -> ModelConfig; `where` names the file for errors.
  std::function<ModelConfig(const nlohmann::json& hf, const std::string& where)> config;
  // Checkpoint tensors -> TransformerLens-named state dict (complete, validated later).
  std::function<StateDict(const TensorStore& ts, const ModelConfig& cfg)> convert;
};

const std::vector<Family>& families();
// Finds the family of an HF config by model_type, then architectures; throws
// mechlens::Error naming `where` for an unknown architecture.
const Family& family_for(const nlohmann::json& hf, const std::string& where);

// Family registrations (one per file in families/).
Family gpt2_family();
Family gpt_neo_family();
Family gpt_neox_family();
Family llama_family();
Family mistral_family();
Family gptj_family();
Family opt_family();
Family gemma_family();
Family qwen2_family();
Family phi3_family();

}  // namespace mechlens
