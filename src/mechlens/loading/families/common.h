// Helpers shared by the family converters.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string>

#include "mechlens/loading/tensor_store.h"
#include "mechlens/model/config.h"

namespace mechlens::conv {

using nlohmann::json;

// First present, non-null key among `keys`, as T; Error naming `where` if none.
int hf_int(const json& j, std::initializer_list<const char*> keys, const std::string& where);
int hf_int_or(const json& j, std::initializer_list<const char*> keys, int dflt, const std::string& where);
double hf_double_or(const json& j, std::initializer_list<const char*> keys, double dflt, const std::string& where);
bool hf_bool_or(const json& j, const char* key, bool dflt, const std::string& where);
std::string hf_string_or(const json& j, const char* key, const std::string& dflt, const std::string& where);
// HF activation name -> mechlens act_fn; Error for unsupported ones.
ActFn act_from_hf(const std::string& hf, const std::string& where);
// Fills the fields every family shares (bos/eos ids, tied embeddings, name).
void common_fields(ModelConfig& c, const json& hf, const std::string& where);

// HF's rope_scaling ({"type" or "rope_type": linear | dynamic | llama3, "factor", ...})
// into c; Error naming `where` for other types. Dynamic scaling exists to run past the
// trained context, so n_ctx becomes max_position_embeddings x factor.
void rope_scaling_from_hf(ModelConfig& c, const json& hf, const std::string& where);

// nn.Linear weight [heads * d_head, d_model] -> [heads, d_model, d_head].
at::Tensor linear_to_heads(const at::Tensor& w, int64_t heads);
// nn.Linear out-projection weight [d_model, heads * d_head] -> W_O [heads, d_head, d_model].
at::Tensor linear_to_W_O(const at::Tensor& w, int64_t heads);
// Which prefix the checkpoint uses, e.g. "transformer." or "" (HF base-model saves).
std::string detect_prefix(const TensorStore& ts, const std::string& with_prefix_probe, const std::string& prefix);
// The unembedding: lm_head.weight if the checkpoint has it, else the tied input embedding.
at::Tensor unembed_from(const TensorStore& ts, const std::string& lm_head, const at::Tensor& tied_embed,
                        const ModelConfig& cfg);

}  // namespace mechlens::conv
