// The pieces of a transformer block, each computing exactly what the matching
// TransformerLens component computes, and passing its activations through HookPoints.
#pragma once
#include <ATen/ATen.h>

#include <memory>
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

struct Rotary {
  // Returns x with rotary embedding applied to its first rotary_dim features;
  // x is [batch, pos, heads, d_head]; positions start at `offset`.
  at::Tensor apply(const at::Tensor& x, int64_t offset);
  void init(const ModelConfig& cfg);
  int64_t dim = 0;
  bool adjacent = false;
  at::Tensor cos, sin;  // [n_ctx, dim] in the layout `adjacent` needs
};

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
                        KVCacheEntry* kv, bool last_query_only = false, const at::Tensor& q_given = {},
                        const at::Tensor& kv_given = {});
  // W_qkv / b_qkv are the fused storage that sd's W_Q, W_K, W_V, b_Q, b_K, b_V are views of.
  void bind(const StateDict& sd, const at::Tensor& fused_w, const at::Tensor& fused_b);

  const ModelConfig* cfg;
  int layer;
  bool local;
  Rotary rotary;
  at::Tensor W_Q, b_Q, W_K, b_K, W_V, b_V, W_O, b_O;
  // [d_model, (h + 2 kvh) d_head] and [(h + 2 kvh) d_head]: the one storage of the q, k, v
  // weights and biases (the per-head tensors above are views of them).
  at::Tensor W_qkv, b_qkv;
  at::Tensor blocked;                 // [n_ctx, n_ctx] bool, true where a query may NOT attend
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
