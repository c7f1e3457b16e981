// The pieces of a transformer block, each computing exactly what the matching
// TransformerLens component computes, and passing its activations through HookPoints.
#pragma once
#include <ATen/ATen.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mechlens/model/config.h"
#include "mechlens/model/hook_point.h"
#include "mechlens/model/weights.h"

namespace mechlens {

// LayerNorm / LayerNormPre / RMSNorm / RMSNormPre, as TransformerLens:
//   LN:  x -= mean; scale = hook_scale(sqrt(mean(x^2) + eps)); hook_normalized(x / scale * w + b)
//   RMS: scale = hook_scale(sqrt(mean(x^2) + eps)); hook_normalized(x / scale) * w
// `layer` and `module` name it as hook_names.h does: (l, "ln1"), (l, "ln2"), (l, "mlp.ln")
// or (-1, "ln_final"); its hooks are act_name("scale", layer, module) & co. and its
// weights param_name("w", layer, module) & co.
struct Norm {
  Norm(int layer, const std::string& module, const ModelConfig& cfg);
  at::Tensor operator()(const at::Tensor& x);
  void bind(const StateDict& sd);
  int layer;
  std::string module;
  NormType type;  // LN, LNPre, RMS, RMSPre, none
  double eps;
  at::Tensor w, b;
  HookPoint hook_scale, hook_normalized;
};

// Per-layer key/value store for incremental decoding. Holds keys after rotary and
// values, with kv heads (before any GQA repeat): [batch, pos, kv_heads, d_head].
struct KVCacheEntry {
  at::Tensor k, v;
  int64_t length() const { return k.defined() ? k.size(1) : 0; }
};

// Rotary angles, shared by every layer: inverse frequencies computed in float32 as
// Hugging Face computes them (rope_scaling included), cos/sin tables grown on demand to
// the longest run so far, never to n_ctx at load.
class RotaryTables {
 public:
  void init(const ModelConfig& cfg);
  // cos and sin [n, dim] of positions 0..n-1, in the pair layout `adjacent` needs.
  // Dynamic (NTK) scaling recomputes the frequencies for n when n exceeds the original
  // context, as HF does per forward.
  std::pair<at::Tensor, at::Tensor> upto(int64_t n);
  // The inverse frequencies [dim / 2] used for a run whose largest position is n - 1.
  at::Tensor inv_freq(int64_t n) const;
  int64_t dim = 0;
  bool adjacent = false;

 private:
  std::pair<at::Tensor, at::Tensor> tables(const at::Tensor& inv_freq, int64_t n) const;
  const ModelConfig* cfg_ = nullptr;
  at::Tensor base_inv_freq_;  // after linear / llama3 scaling
  at::Tensor cos_, sin_;      // cached rows 0..cos_.size(0)-1 (not for dynamic runs past the original context)
  std::mutex mu_;
};

// What every layer's attention shares in one run: which keys each query may not see,
// and the rotary angles of each key position. Queries are always the last positions of
// the keys (a KV cache holds the earlier ones), so they read the last rows.
struct AttnRun {
  at::Tensor blocked_global, blocked_local;  // bool [p, kp], or [b, 1, p, kp] with an attention mask
  at::Tensor cos, sin;                       // [1 or b, kp, 1, rotary dim], float32; undefined without rotary
  const at::Tensor& blocked(bool local) const { return local ? blocked_local : blocked_global; }
};

// x [batch, pos, heads, d_head] with rotary applied to its first `dim` features, at the
// angles cos/sin [1 or batch, pos, 1, dim].
at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t dim, bool adjacent);

// Layer `layer`'s attention: hooks act_name("q", layer) & co., weights param_name("W_Q", layer) & co.
struct Attention {
  Attention(int layer, const ModelConfig& cfg);
  // xq/xk/xv are [b, p, d_model], or [b, p, heads, d_model] when per_head_inputs.
  // With last_query_only the output holds only the last position ([b, 1, d_model]);
  // keys and values still cover every position.
  // `q_given` ([b, p or 1, h d_head]) and `kv_given` ([b, p, 2 kvh d_head]), bias included,
  // replace the projections when the caller computed them another way (embeddings folded
  // into W_qkv).
  at::Tensor operator()(const at::Tensor& xq, const at::Tensor& xk, const at::Tensor& xv, bool per_head_inputs,
                        KVCacheEntry* kv, const AttnRun& run, bool last_query_only = false, const at::Tensor& q_given = {},
                        const at::Tensor& kv_given = {});
  // W_qkv / b_qkv are the fused storage that sd's W_Q, W_K, W_V, b_Q, b_K, b_V are views of.
  void bind(const StateDict& sd, const at::Tensor& fused_w, const at::Tensor& fused_b);

  const ModelConfig* cfg;
  int layer;
  bool local;
  int64_t rotary_dim = 0;
  bool rotary_adjacent = false;
  at::Tensor W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O;
  // [d_model, (h + 2 kvh) d_head] and [(h + 2 kvh) d_head]: the one storage of the q, k, v
  // weights and biases (the per-head tensors above are views of them).
  at::Tensor W_qkv, b_qkv;
  HookPoint hook_q, hook_k, hook_v, hook_rot_q, hook_rot_k, hook_attn_scores, hook_pattern, hook_z, hook_result;
};

// Layer `layer`'s MLP: hooks act_name("pre", layer) & co., weights param_name("W_in", layer) & co.
struct MLP {
  MLP(int layer, const ModelConfig& cfg);
  at::Tensor operator()(const at::Tensor& x);
  void bind(const StateDict& sd);

  const ModelConfig* cfg;
  int layer;
  ActFn act_fn;
  bool gated;
  at::Tensor W_in, b_in, W_gate, W_out, b_out;
  HookPoint hook_pre, hook_pre_linear, hook_mid, hook_post;
  std::unique_ptr<Norm> ln;  // SoLU's LayerNorm over d_mlp
};

at::Tensor activation(ActFn act_fn, const at::Tensor& x);

}  // namespace mechlens
