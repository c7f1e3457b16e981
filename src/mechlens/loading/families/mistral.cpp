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
    int window = conv::hf_int_or(hf, {"sliding_window"}, -1, where);
    if (window > 0 && window < c.n_ctx) {
      c.window_size = window + 1;
      c.attn_types.assign(c.n_layers, AttnType::Local);
    }
    return c;
  };
  f.convert = conv::llama_like_convert;
  return f;
}

}  // namespace mechlens
