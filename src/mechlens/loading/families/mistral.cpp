// Mistral (MistralForCausalLM): the LLaMA layout plus sliding-window attention. In
// transformers 4.40 (eager attention) query i sees keys j with
// i - sliding_window <= j <= i, i.e. sliding_window + 1 keys; our window_size counts
// the keys a query sees, so it is sliding_window + 1.
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/loading/families/llama_like.h"

namespace mechlens {

Family mistral_family() {
  Family f;
  f.name = "mistral";
  f.model_types = {"mistral"};
  f.architectures = {"MistralForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    ModelConfig c = conv::llama_like_config(hf, where, false);
    conv::sliding_window_from_hf(c, hf, where);
    return c;
  };
  f.convert = [](const TensorStore& ts, const ModelConfig& c) { return conv::llama_like_convert(ts, c); };
  return f;
}

}  // namespace mechlens
