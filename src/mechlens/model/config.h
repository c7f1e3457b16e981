// ModelConfig: the fields of TransformerLens's HookedTransformerConfig that change
// the computation, and nothing family-specific: converters translate a Hugging Face
// config into these.
#pragma once
#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <vector>

namespace mechlens {

// The string-valued fields of TransformerLens's config, as enums: parsed once when a
// config is read (from_json, the family converters), compared as enums everywhere
// else. to_string() gives TransformerLens's spelling; parse_*() throws mechlens::Error
// naming `where` and the known values.
enum class ActFn { Relu, Gelu, GeluNew, GeluFast, GeluPytorchTanh, Silu, SoluLn };
enum class NormType { LN, LNPre, RMS, RMSPre, None };
enum class PosEmbed { Standard, Rotary, None };
enum class AttnType { Global, Local };
// Hugging Face's rope_scaling types (LLaMA): none, linear, dynamic (NTK), llama3.
enum class RopeScaling { None, Linear, Dynamic, Llama3 };

ActFn parse_act_fn(const std::string& s, const std::string& where);
NormType parse_norm_type(const std::string& s, const std::string& where);
PosEmbed parse_pos_embed(const std::string& s, const std::string& where);
AttnType parse_attn_type(const std::string& s, const std::string& where);
RopeScaling parse_rope_scaling(const std::string& s, const std::string& where);
const std::string& to_string(ActFn a);     // relu, gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, silu, solu_ln
const std::string& to_string(NormType n);  // LN, LNPre, RMS, RMSPre, none
const std::string& to_string(PosEmbed p);  // standard, rotary, none
const std::string& to_string(AttnType t);  // global, local
const std::string& to_string(RopeScaling r);  // none, linear, dynamic, llama3

struct ModelConfig {
  // sizes
  int n_layers = 2;
  int d_model = 64;
  int n_heads = 4;
  int d_head = 16;
  int d_mlp = 256;          // ignored when attn_only
  int d_vocab = 500;
  int d_vocab_out = -1;     // -1: same as d_vocab
  int n_ctx = 64;
  int n_key_value_heads = -1;  // -1: same as n_heads (no GQA/MQA)

  // activation: relu, gelu, gelu_new, gelu_fast, gelu_pytorch_tanh, silu, solu_ln
  ActFn act_fn = ActFn::GeluNew;
  // normalization: LN, LNPre, RMS, RMSPre, none
  NormType normalization_type = NormType::LN;
  bool final_rms = false;
  double eps = 1e-5;

  // positions: standard, rotary, none
  PosEmbed positional_embedding_type = PosEmbed::Standard;
  int rotary_dim = -1;           // -1: d_head
  double rotary_base = 10000.0;
  bool rotary_adjacent_pairs = false;  // GPT-J pairs (0,1),(2,3)...; NeoX/LLaMA pair i with i+dim/2
  // rope_scaling as Hugging Face defines it: linear divides positions by the factor;
  // dynamic (NTK) raises the base once a run is longer than rope_original_n_ctx; llama3
  // divides the low frequencies by the factor and blends the middle band.
  RopeScaling rope_scaling = RopeScaling::None;
  double rope_factor = 1.0;
  double rope_low_freq_factor = 1.0, rope_high_freq_factor = 4.0;  // llama3
  int rope_original_n_ctx = -1;  // dynamic: max_position_embeddings; llama3: original_max_position_embeddings

  // structure
  bool attn_only = false;
  bool parallel_attn_mlp = false;
  bool gated_mlp = false;
  bool use_attn_scale = true;
  double attn_scale = -1;  // -1: sqrt(d_head)
  // Per-layer attention type ("global" / "local" in JSON); empty means all global.
  std::vector<AttnType> attn_types;
  int window_size = -1;    // local layers: query i sees keys j with i - window_size < j <= i
  bool tie_word_embeddings = false;  // informational; weights are copied on load

  // optional hook points (TransformerLens flags)
  bool use_attn_result = false;
  bool use_split_qkv_input = false;
  bool use_hook_mlp_in = false;
  bool use_attn_in = false;

  std::string dtype = "float32";  // float32, bfloat16, float16
  std::string device = "cpu";
  std::string original_architecture;  // e.g. GPT2LMHeadModel, "mechlens" for own models
  std::string model_name;
  // Tokenizer conventions, carried from the HF config for BOS handling.
  int bos_token_id = -1;
  int eos_token_id = -1;

  int vocab_out() const { return d_vocab_out > 0 ? d_vocab_out : d_vocab; }
  int kv_heads() const { return n_key_value_heads > 0 ? n_key_value_heads : n_heads; }
  int rot_dim() const { return rotary_dim > 0 ? rotary_dim : d_head; }
  double scale() const { return attn_scale > 0 ? attn_scale : std::sqrt(static_cast<double>(d_head)); }
  bool layer_is_local(int l) const {
    return l >= 0 && l < static_cast<int>(attn_types.size()) && attn_types[l] == AttnType::Local;
  }
  bool has_ln() const { return normalization_type != NormType::None; }
  bool ln_has_weight() const { return normalization_type == NormType::LN || normalization_type == NormType::RMS; }
  bool ln_has_bias() const { return normalization_type == NormType::LN; }
  bool ln_is_rms() const { return normalization_type == NormType::RMS || normalization_type == NormType::RMSPre; }

  // Throws mechlens::Error (with `where`) if fields are inconsistent.
  void validate(const std::string& where) const;
  // Fields as set (-1 keeps "derived": d_vocab_out, n_key_value_heads, rotary_dim,
  // attn_scale), so a JSON edited by hand or by `mechlens init --set` stays consistent.
  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j, const std::string& where);
  // Named presets for benchmarks and toy models: "gpt2-small", "attn-only-2l", ...,
  // and real shapes for `bench memory`: gpt2-xl, pythia-1.4b, llama-3-8b, mistral-7b.
  static ModelConfig preset(const std::string& name);
};

}  // namespace mechlens
