#include <cmath>
#include "mechlens/loading/families/common.h"

#include "mechlens/core/error.h"

namespace mechlens::conv {

namespace {
const json* first(const json& j, std::initializer_list<const char*> keys) {
  for (const char* k : keys) {
    auto it = j.find(k);
    if (it != j.end() && !it->is_null()) return &*it;
  }
  return nullptr;
}
std::string key_list(std::initializer_list<const char*> keys) {
  std::string s;
  for (const char* k : keys) s += (s.empty() ? "" : " or ") + std::string(k);
  return s;
}
}  // namespace

int hf_int(const json& j, std::initializer_list<const char*> keys, const std::string& where) {
  const json* v = first(j, keys);
  if (!v) fail(where, "missing required field " + key_list(keys));
  if (!v->is_number_integer()) fail(where, "field " + key_list(keys) + " must be an integer");
  int64_t x = v->get<int64_t>();
  if (x < 0 || x > (1ll << 30)) fail(where, "field " + key_list(keys) + " is out of range");
  return static_cast<int>(x);
}

int hf_int_or(const json& j, std::initializer_list<const char*> keys, int dflt, const std::string& where) {
  return first(j, keys) ? hf_int(j, keys, where) : dflt;
}

double hf_double_or(const json& j, std::initializer_list<const char*> keys, double dflt, const std::string& where) {
  const json* v = first(j, keys);
  if (!v) return dflt;
  if (!v->is_number()) fail(where, "field " + key_list(keys) + " must be a number");
  return v->get<double>();
}

bool hf_bool_or(const json& j, const char* key, bool dflt, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_boolean()) fail(where, std::string("field ") + key + " must be true or false");
  return it->get<bool>();
}

std::string hf_string_or(const json& j, const char* key, const std::string& dflt, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  if (!it->is_string()) fail(where, std::string("field ") + key + " must be a string");
  return it->get<std::string>();
}

ActFn act_from_hf(const std::string& a, const std::string& where) {
  if (a == "gelu_new") return ActFn::GeluNew;
  if (a == "gelu") return ActFn::Gelu;
  if (a == "relu") return ActFn::Relu;
  if (a == "silu" || a == "swish") return ActFn::Silu;
  if (a == "gelu_fast") return ActFn::GeluFast;
  if (a == "gelu_pytorch_tanh") return ActFn::GeluPytorchTanh;
  fail(where, "unsupported activation function \"" + a + "\"");
}

void common_fields(ModelConfig& c, const json& hf, const std::string& where) {
  auto id = [&](const char* key) {
    auto it = hf.find(key);
    return it != hf.end() && it->is_number_integer() ? it->get<int>() : -1;
  };
  c.bos_token_id = id("bos_token_id");
  c.eos_token_id = id("eos_token_id");
  c.d_vocab_out = c.d_vocab;
  if (hf.contains("architectures") && hf["architectures"].is_array() && !hf["architectures"].empty() &&
      hf["architectures"][0].is_string())
    c.original_architecture = hf["architectures"][0].get<std::string>();
  c.model_name = where;
}

void rope_scaling_from_hf(ModelConfig& c, const json& hf, const std::string& where) {
  if (!hf.contains("rope_scaling") || hf["rope_scaling"].is_null()) return;
  const json& rs = hf["rope_scaling"];
  if (!rs.is_object()) fail(where, "rope_scaling must be an object or null");
  std::string type = hf_string_or(rs, "rope_type", hf_string_or(rs, "type", "", where), where);
  if (type == "default") return;
  if (type != "linear" && type != "dynamic" && type != "llama3")
    fail(where, "rope_scaling type \"" + type + "\" is not supported (supported: linear, dynamic, llama3)");
  c.rope_scaling = parse_rope_scaling(type, where);
  c.rope_factor = hf_double_or(rs, {"factor"}, -1, where);
  if (!(c.rope_factor >= 1.0)) fail(where, "rope_scaling factor must be a number >= 1");
  if (c.rope_scaling == RopeScaling::Dynamic) {
    c.rope_original_n_ctx = c.n_ctx;
    c.n_ctx = static_cast<int>(std::min(double(1 << 24), std::floor(c.n_ctx * c.rope_factor)));
  } else if (c.rope_scaling == RopeScaling::Llama3) {
    c.rope_low_freq_factor = hf_double_or(rs, {"low_freq_factor"}, 1.0, where);
    c.rope_high_freq_factor = hf_double_or(rs, {"high_freq_factor"}, 4.0, where);
    c.rope_original_n_ctx = hf_int(rs, {"original_max_position_embeddings"}, where);
  }
}

at::Tensor linear_to_heads(const at::Tensor& w, int64_t heads) {
  return w.reshape({heads, -1, w.size(1)}).permute({0, 2, 1}).contiguous();
}

at::Tensor linear_to_W_O(const at::Tensor& w, int64_t heads) {
  return w.t().reshape({heads, -1, w.size(0)}).contiguous();
}

std::string detect_prefix(const TensorStore& ts, const std::string& probe, const std::string& prefix) {
  return ts.contains(prefix + probe) ? prefix : "";
}

at::Tensor unembed_from(const TensorStore& ts, const std::string& lm_head, const at::Tensor& tied,
                        const ModelConfig& cfg) {
  if (ts.contains(lm_head)) return ts.get(lm_head, {cfg.vocab_out(), cfg.d_model}).t().contiguous();
  if (!cfg.tie_word_embeddings)
    fail(ts.where(), "weights do not match the config: missing tensor \"" + lm_head +
                         "\" (tie_word_embeddings is false)");
  return tied.t().contiguous();
}

}  // namespace mechlens::conv
