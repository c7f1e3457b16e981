// Loading a model from a folder: a Hugging Face model folder (config.json plus
// model.safetensors or a sharded index) or a mechlens checkpoint (mechlens.json plus
// model.safetensors under TransformerLens names).
#pragma once
#include <memory>
#include <string>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/model/weight_processing.h"

namespace mechlens {

struct LoadOptions {
  ProcessingOptions processing;  // applied after conversion
  std::string dtype;             // "" keeps float32; float32 | bfloat16 | float16
  std::string device = "cpu";
};

// Throws mechlens::Error naming the file and the problem.
std::unique_ptr<HookedTransformer> load_model(const std::string& dir, const LoadOptions& opts = {});
// Config and TL-named weights of a folder, before any processing.
std::pair<ModelConfig, StateDict> load_weights(const std::string& dir);

// Writes a mechlens checkpoint (mechlens.json + model.safetensors). Both files are
// written atomically; the folder is created if needed.
void save_checkpoint(const HookedTransformer& model, const std::string& dir);

}  // namespace mechlens
