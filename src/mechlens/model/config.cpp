#include "mechlens/model/config.h"

#include <array>
#include <cstddef>
#include <cmath>
#include <stdexcept>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

namespace mechlens {

namespace {
bool one_of(const std::string& s, std::initializer_list<const char*> xs) {
  for (auto x : xs)
    if (s == x) return true;
  return false;
}

// TransformerLens's spelling of each enum value, in declaration order (function-local
// statics: safe to use during other translation units' static initialisation).
const std::array<std::string, 7>& act_fn_names() {
  static const std::array<std::string, 7> n = {"relu", "gelu", "gelu_new", "gelu_fast", "gelu_pytorch_tanh", "silu",
                                               "solu_ln"};
  return n;
}
const std::array<std::string, 5>& norm_type_names() {
  static const std::array<std::string, 5> n = {"LN", "LNPre", "RMS", "RMSPre", "none"};
  return n;
}
const std::array<std::string, 3>& pos_embed_names() {
  static const std::array<std::string, 3> n = {"standard", "rotary", "none"};
  return n;
}
const std::array<std::string, 2>& attn_type_names() {
  static const std::array<std::string, 2> n = {"global", "local"};
  return n;
}

const std::array<std::string, 4>& rope_scaling_names() {
  static const std::array<std::string, 4> n = {"none", "linear", "dynamic", "llama3"};
  return n;
}

template <typename E, std::size_t N>
const std::string& name_of(const std::array<std::string, N>& names, E e) {
  const auto i = static_cast<std::size_t>(e);
  if (i >= N) throw std::logic_error("invalid config enum value " + std::to_string(i));
  return names[i];
}

template <std::size_t N>
std::string known(const std::array<std::string, N>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

// Index of `s` in `names`, or -1.
template <std::size_t N>
int index_of(const std::array<std::string, N>& names, const std::string& s) {
  for (std::size_t i = 0; i < N; ++i)
    if (names[i] == s) return static_cast<int>(i);
  return -1;
}
}  // namespace

ActFn parse_act_fn(const std::string& s, const std::string& where) {
  const int i = index_of(act_fn_names(), s);
  if (i < 0) fail(where, "unknown act_fn \"" + s + "\" (known: " + known(act_fn_names()) + ")");
  return static_cast<ActFn>(i);
}

NormType parse_norm_type(const std::string& s, const std::string& where) {
  const int i = index_of(norm_type_names(), s);
  if (i < 0) fail(where, "unknown normalization_type \"" + s + "\" (known: " + known(norm_type_names()) + ")");
  return static_cast<NormType>(i);
}

PosEmbed parse_pos_embed(const std::string& s, const std::string& where) {
  const int i = index_of(pos_embed_names(), s);
  if (i < 0) fail(where, "unknown positional_embedding_type \"" + s + "\" (known: " + known(pos_embed_names()) + ")");
  return static_cast<PosEmbed>(i);
}

AttnType parse_attn_type(const std::string& s, const std::string& where) {
  const int i = index_of(attn_type_names(), s);
  if (i < 0) fail(where, "attn_types entries must be global or local, got " + s);
  return static_cast<AttnType>(i);
}

RopeScaling parse_rope_scaling(const std::string& s, const std::string& where) {
  const int i = index_of(rope_scaling_names(), s);
  if (i < 0) fail(where, "unknown rope_scaling \"" + s + "\" (known: " + known(rope_scaling_names()) + ")");
  return static_cast<RopeScaling>(i);
}

const std::string& to_string(ActFn a) { return name_of(act_fn_names(), a); }
const std::string& to_string(NormType n) { return name_of(norm_type_names(), n); }
const std::string& to_string(PosEmbed p) { return name_of(pos_embed_names(), p); }
const std::string& to_string(AttnType t) { return name_of(attn_type_names(), t); }
const std::string& to_string(RopeScaling r) { return name_of(rope_scaling_names(), r); }

void ModelConfig::validate(const std::string& where) const {
  auto positive = [&](int v, const char* name) {
    if (v <= 0) fail(where, std::string("config field ") + name + " must be positive, got " + std::to_string(v));
  };
  positive(n_layers, "n_layers");
  positive(d_model, "d_model");
  positive(n_heads, "n_heads");
  positive(d_head, "d_head");
  positive(d_vocab, "d_vocab");
  positive(n_ctx, "n_ctx");
  if (!attn_only) positive(d_mlp, "d_mlp");
  if (n_layers > 4096 || d_model > (1 << 20) || n_heads > 4096 || d_head > 65536 || n_ctx > (1 << 24) ||
      d_vocab > (1 << 24) || d_mlp > (1 << 22))
    fail(where, "config sizes are implausibly large");
  if (kv_heads() <= 0 || n_heads % kv_heads() != 0)
    fail(where, "n_heads (" + std::to_string(n_heads) + ") must be a multiple of n_key_value_heads (" +
                    std::to_string(kv_heads()) + ")");
  // act_fn, normalization_type, positional_embedding_type and attn_types are enums,
  // checked when parsed (parse_act_fn & co.); only values cast from bad integers remain.
  auto in_range = [&](int v, std::size_t n, const char* name) {
    if (v < 0 || static_cast<std::size_t>(v) >= n)
      fail(where, std::string("config field ") + name + " has an invalid value " + std::to_string(v));
  };
  in_range(static_cast<int>(act_fn), act_fn_names().size(), "act_fn");
  in_range(static_cast<int>(normalization_type), norm_type_names().size(), "normalization_type");
  in_range(static_cast<int>(positional_embedding_type), pos_embed_names().size(), "positional_embedding_type");
  for (AttnType t : attn_types) in_range(static_cast<int>(t), attn_type_names().size(), "attn_types");
  if (positional_embedding_type == PosEmbed::Rotary && (rot_dim() > d_head || rot_dim() % 2 != 0))
    fail(where, "rotary_dim must be even and at most d_head");
  in_range(static_cast<int>(rope_scaling), rope_scaling_names().size(), "rope_scaling");
  if (rope_scaling != RopeScaling::None) {
    if (!(rope_factor >= 1.0) || rope_factor > 1e6) fail(where, "rope_scaling factor must be at least 1");
    if ((rope_scaling == RopeScaling::Dynamic || rope_scaling == RopeScaling::Llama3) && rope_original_n_ctx <= 0)
      fail(where, "rope_scaling " + to_string(rope_scaling) + " needs a positive original context length");
    if (rope_scaling == RopeScaling::Llama3 && !(rope_high_freq_factor > rope_low_freq_factor && rope_low_freq_factor > 0))
      fail(where, "rope_scaling llama3 needs high_freq_factor > low_freq_factor > 0");
  }
  for (int l = 0; l < n_layers; ++l)
    if (layer_is_local(l) && window_size <= 0) fail(where, "local attention needs a positive window_size");
  if (!one_of(dtype, {"float32", "bfloat16", "float16"})) fail(where, "unknown dtype \"" + dtype + "\"");
}

nlohmann::json ModelConfig::to_json() const {
  std::vector<std::string> attn_type_strs;
  attn_type_strs.reserve(attn_types.size());
  for (AttnType t : attn_types) attn_type_strs.push_back(to_string(t));
  return {{"n_layers", n_layers},
          {"d_model", d_model},
          {"n_heads", n_heads},
          {"d_head", d_head},
          {"d_mlp", d_mlp},
          {"d_vocab", d_vocab},
          {"d_vocab_out", d_vocab_out},
          {"n_ctx", n_ctx},
          {"n_key_value_heads", n_key_value_heads},
          {"act_fn", to_string(act_fn)},
          {"normalization_type", to_string(normalization_type)},
          {"final_rms", final_rms},
          {"eps", eps},
          {"positional_embedding_type", to_string(positional_embedding_type)},
          {"rotary_dim", rotary_dim},
          {"rotary_base", rotary_base},
          {"rotary_adjacent_pairs", rotary_adjacent_pairs},
          {"rope_scaling", to_string(rope_scaling)},
          {"rope_factor", rope_factor},
          {"rope_low_freq_factor", rope_low_freq_factor},
          {"rope_high_freq_factor", rope_high_freq_factor},
          {"rope_original_n_ctx", rope_original_n_ctx},
          {"attn_only", attn_only},
          {"parallel_attn_mlp", parallel_attn_mlp},
          {"gated_mlp", gated_mlp},
          {"use_attn_scale", use_attn_scale},
          {"attn_scale", attn_scale},
          {"attn_types", attn_type_strs},
          {"window_size", window_size},
          {"tie_word_embeddings", tie_word_embeddings},
          {"use_attn_result", use_attn_result},
          {"use_split_qkv_input", use_split_qkv_input},
          {"use_hook_mlp_in", use_hook_mlp_in},
          {"use_attn_in", use_attn_in},
          {"dtype", dtype},
          {"original_architecture", original_architecture},
          {"model_name", model_name},
          {"bos_token_id", bos_token_id},
          {"eos_token_id", eos_token_id}};
}

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail(where, "config is not a JSON object");
  ModelConfig c;
  c.n_layers = json_get<int>(j, "n_layers", where);
  c.d_model = json_get<int>(j, "d_model", where);
  c.n_heads = json_get<int>(j, "n_heads", where);
  c.d_head = json_get<int>(j, "d_head", where);
  c.d_mlp = json_get_or<int>(j, "d_mlp", c.d_mlp, where);
  c.d_vocab = json_get<int>(j, "d_vocab", where);
  c.d_vocab_out = json_get_or<int>(j, "d_vocab_out", -1, where);
  c.n_ctx = json_get<int>(j, "n_ctx", where);
  c.n_key_value_heads = json_get_or<int>(j, "n_key_value_heads", -1, where);
  c.act_fn = parse_act_fn(json_get_or<std::string>(j, "act_fn", to_string(c.act_fn), where), where);
  c.normalization_type = parse_norm_type(
      json_get_or<std::string>(j, "normalization_type", to_string(c.normalization_type), where), where);
  c.final_rms = json_get_or<bool>(j, "final_rms", c.final_rms, where);
  c.eps = json_get_or<double>(j, "eps", c.eps, where);
  c.positional_embedding_type = parse_pos_embed(
      json_get_or<std::string>(j, "positional_embedding_type", to_string(c.positional_embedding_type), where), where);
  c.rotary_dim = json_get_or<int>(j, "rotary_dim", -1, where);
  c.rotary_base = json_get_or<double>(j, "rotary_base", c.rotary_base, where);
  c.rotary_adjacent_pairs = json_get_or<bool>(j, "rotary_adjacent_pairs", false, where);
  c.rope_scaling = parse_rope_scaling(json_get_or<std::string>(j, "rope_scaling", "none", where), where);
  c.rope_factor = json_get_or<double>(j, "rope_factor", 1.0, where);
  c.rope_low_freq_factor = json_get_or<double>(j, "rope_low_freq_factor", 1.0, where);
  c.rope_high_freq_factor = json_get_or<double>(j, "rope_high_freq_factor", 4.0, where);
  c.rope_original_n_ctx = json_get_or<int>(j, "rope_original_n_ctx", -1, where);
  c.attn_only = json_get_or<bool>(j, "attn_only", false, where);
  c.parallel_attn_mlp = json_get_or<bool>(j, "parallel_attn_mlp", false, where);
  c.gated_mlp = json_get_or<bool>(j, "gated_mlp", false, where);
  c.use_attn_scale = json_get_or<bool>(j, "use_attn_scale", true, where);
  c.attn_scale = json_get_or<double>(j, "attn_scale", -1, where);
  for (const auto& t : json_get_or<std::vector<std::string>>(j, "attn_types", {}, where))
    c.attn_types.push_back(parse_attn_type(t, where));
  c.window_size = json_get_or<int>(j, "window_size", -1, where);
  c.tie_word_embeddings = json_get_or<bool>(j, "tie_word_embeddings", false, where);
  c.use_attn_result = json_get_or<bool>(j, "use_attn_result", false, where);
  c.use_split_qkv_input = json_get_or<bool>(j, "use_split_qkv_input", false, where);
  c.use_hook_mlp_in = json_get_or<bool>(j, "use_hook_mlp_in", false, where);
  c.use_attn_in = json_get_or<bool>(j, "use_attn_in", false, where);
  c.dtype = json_get_or<std::string>(j, "dtype", c.dtype, where);
  c.original_architecture = json_get_or<std::string>(j, "original_architecture", "mechlens", where);
  c.model_name = json_get_or<std::string>(j, "model_name", "", where);
  c.bos_token_id = json_get_or<int>(j, "bos_token_id", -1, where);
  c.eos_token_id = json_get_or<int>(j, "eos_token_id", -1, where);
  c.validate(where);
  return c;
}

ModelConfig ModelConfig::preset(const std::string& name) {
  ModelConfig c;
  c.original_architecture = "mechlens";
  c.model_name = name;
  if (name == "gpt2-small") {
    c.n_layers = 12, c.d_model = 768, c.n_heads = 12, c.d_head = 64, c.d_mlp = 3072;
    c.d_vocab = 50257, c.n_ctx = 1024, c.act_fn = ActFn::GeluNew;
    c.bos_token_id = c.eos_token_id = 50256;
  } else if (name == "gpt2-tiny") {  // the default model of `mechlens run`
    c.n_layers = 2, c.d_model = 128, c.n_heads = 4, c.d_head = 32, c.d_mlp = 512;
    c.d_vocab = 50257, c.n_ctx = 256, c.act_fn = ActFn::GeluNew;
    c.bos_token_id = c.eos_token_id = 50256;
  } else if (name.rfind("attn-only-", 0) == 0 && name.size() >= 12) {  // attn-only-<N>l
    c.n_layers = std::max(1, std::atoi(name.c_str() + 10));
    c.attn_only = true, c.d_model = 512, c.n_heads = 8, c.d_head = 64, c.d_mlp = 0;
    c.d_vocab = 50257, c.n_ctx = 1024, c.normalization_type = NormType::LN;
    c.positional_embedding_type = PosEmbed::Standard;
    c.bos_token_id = c.eos_token_id = 50256;
  } else if (name == "solu-1l") {
    c.n_layers = 1, c.d_model = 512, c.n_heads = 8, c.d_head = 64, c.d_mlp = 2048;
    c.d_vocab = 50257, c.n_ctx = 1024, c.act_fn = ActFn::SoluLn;
    c.bos_token_id = c.eos_token_id = 50256;
  } else if (name == "gpt2-xl") {
    c.n_layers = 48, c.d_model = 1600, c.n_heads = 25, c.d_head = 64, c.d_mlp = 6400;
    c.d_vocab = 50257, c.n_ctx = 1024, c.act_fn = ActFn::GeluNew;
    c.bos_token_id = c.eos_token_id = 50256;
  } else if (name == "pythia-1.4b") {  // GPT-NeoX: parallel attention and MLP, rotary on a quarter of each head
    c.n_layers = 24, c.d_model = 2048, c.n_heads = 16, c.d_head = 128, c.d_mlp = 8192;
    c.d_vocab = 50304, c.n_ctx = 2048, c.act_fn = ActFn::Gelu, c.parallel_attn_mlp = true;
    c.positional_embedding_type = PosEmbed::Rotary, c.rotary_dim = 32;
    c.bos_token_id = c.eos_token_id = 0;
  } else if (name == "llama-3-8b" || name == "mistral-7b") {
    c.n_layers = 32, c.d_model = 4096, c.n_heads = 32, c.d_head = 128, c.d_mlp = 14336, c.n_key_value_heads = 8;
    c.act_fn = ActFn::Silu, c.gated_mlp = true, c.normalization_type = NormType::RMS, c.final_rms = true;
    c.positional_embedding_type = PosEmbed::Rotary;
    if (name == "llama-3-8b") {
      c.d_vocab = 128256, c.n_ctx = 8192, c.rotary_base = 500000.0, c.eps = 1e-5;
      c.bos_token_id = 128000, c.eos_token_id = 128001;
    } else {  // Mistral-7B v0.1: 32k context, 4096-token sliding window
      c.d_vocab = 32000, c.n_ctx = 32768, c.rotary_base = 10000.0, c.eps = 1e-5;
      c.window_size = 4096 + 1, c.attn_types.assign(c.n_layers, AttnType::Local);
      c.bos_token_id = 1, c.eos_token_id = 2;
    }
  } else {
    fail("", "unknown model preset \"" + name +
                 "\" (known: gpt2-small, gpt2-tiny, attn-only-<N>l, solu-1l, gpt2-xl, pythia-1.4b, llama-3-8b, mistral-7b)");
  }
  return c;
}

}  // namespace mechlens
