// Qwen2 / Qwen2.5 (Qwen2ForCausalLM): the LLaMA layout with biases on q_proj, k_proj
// and v_proj (none on o_proj or the MLP), grouped-query attention, rope_theta 1e6 and,
// in the small sizes, embeddings tied to the unembedding.
//
// Sliding windows: transformers 4.40 applies config.sliding_window in the eager mask
// whatever use_sliding_window says, and versions disagree on which layers
// max_window_layers exempts; released Qwen2/2.5 checkpoints set use_sliding_window false,
// which is the case supported here (no window), and true is refused with a clear error.
#include "mechlens/core/error.h"
#include "mechlens/loading/families/common.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/loading/families/llama_like.h"

namespace mechlens {

Family qwen2_family() {
  Family f;
  f.name = "qwen2";
  f.model_types = {"qwen2"};
  f.architectures = {"Qwen2ForCausalLM"};
  f.config = [](const nlohmann::json& hf, const std::string& where) {
    ModelConfig c = conv::llama_like_config(hf, where, false);
    if (conv::hf_bool_or(hf, "use_sliding_window", false, where))
      fail(where, "use_sliding_window true is not supported (transformers versions disagree on which layers use the window)");
    return c;
  };
  // q/k/v biases are read when present (llama_like_convert); Qwen2 always has them.
  f.convert = [](const TensorStore& ts, const ModelConfig& c) {
    const std::string p = conv::detect_prefix(ts, "embed_tokens.weight", "model.");
    if (!ts.contains(p + "layers.0.self_attn.q_proj.bias"))
      fail(ts.where(), "Qwen2 checkpoint has no self_attn.q_proj.bias (is it a LLaMA?)");
    return conv::llama_like_convert(ts, c);
  };
  return f;
}

}  // namespace mechlens
