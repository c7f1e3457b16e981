#include "mechlens/model/components.h"
#include "mechlens/model/hook_names.h"

#include <cmath>

namespace mechlens {

// ---- rotary ---------------------------------------------------------------------------

void Rotary::init(const ModelConfig& cfg) {
  dim = cfg.rot_dim();
  adjacent = cfg.rotary_adjacent_pairs;
  // Frequencies computed in float32 the way Hugging Face computes them, so long
  // contexts agree with HF to the last bit we can measure.
  at::Tensor idx = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<float>(dim);
  at::Tensor inv_freq = 1.0 / at::pow(static_cast<float>(cfg.rotary_base), idx);  // [dim/2]
  at::Tensor t = at::arange(cfg.n_ctx, at::kLong).to(at::kFloat);
  at::Tensor freqs = at::outer(t, inv_freq);  // [n_ctx, dim/2]
  at::Tensor emb = adjacent ? at::repeat_interleave(freqs, 2, 1) : at::cat({freqs, freqs}, 1);
  cos = emb.cos();
  sin = emb.sin();
}

at::Tensor Rotary::apply(const at::Tensor& x, int64_t offset) {
  const int64_t p = x.size(1);
  at::Tensor c = cos.slice(0, offset, offset + p).unsqueeze(1).to(x.scalar_type());  // [p, 1, dim]
  at::Tensor s = sin.slice(0, offset, offset + p).unsqueeze(1).to(x.scalar_type());
  at::Tensor xr = x.slice(-1, 0, dim);
  at::Tensor rotated;
  if (adjacent) {  // GPT-J: pairs (0,1), (2,3), ... ; rotate_every_two
    at::Tensor x1 = xr.slice(-1, 0, dim, 2), x2 = xr.slice(-1, 1, dim, 2);
    rotated = at::stack({-x2, x1}, -1).flatten(-2);
  } else {  // NeoX / LLaMA: pairs (i, i + dim/2); rotate_half
    at::Tensor x1 = xr.slice(-1, 0, dim / 2), x2 = xr.slice(-1, dim / 2, dim);
    rotated = at::cat({-x2, x1}, -1);
  }
  at::Tensor out = xr * c + rotated * s;
  if (dim == x.size(-1)) return out;
  return at::cat({out, x.slice(-1, dim, x.size(-1))}, -1);
}

// ---- attention ------------------------------------------------------------------------

Attention::Attention(int l, const ModelConfig& c)
    : cfg(&c),
      layer(l),
      local(c.layer_is_local(l)),
      hook_q(act_name("q", l)),
      hook_k(act_name("k", l)),
      hook_v(act_name("v", l)),
      hook_rot_q(act_name("rot_q", l)),
      hook_rot_k(act_name("rot_k", l)),
      hook_attn_scores(act_name("attn_scores", l)),
      hook_pattern(act_name("pattern", l)),
      hook_z(act_name("z", l)),
      hook_result(act_name("result", l)) {
  if (c.positional_embedding_type == PosEmbed::Rotary) rotary.init(c);
  at::Tensor i = at::arange(c.n_ctx, at::kLong).unsqueeze(1), j = at::arange(c.n_ctx, at::kLong).unsqueeze(0);
  at::Tensor allowed = j <= i;
  if (local) allowed = allowed & (j > i - c.window_size);
  blocked = allowed.logical_not();
}

void Attention::bind(const StateDict& sd, const at::Tensor& fused_w, const at::Tensor& fused_b) {
  const int l = layer;
  W_Q = sd.at(param_name("W_Q", l)), b_Q = sd.at(param_name("b_Q", l));
  W_K = sd.at(param_name("W_K", l)), b_K = sd.at(param_name("b_K", l));
  W_V = sd.at(param_name("W_V", l)), b_V = sd.at(param_name("b_V", l));
  W_O = sd.at(param_name("W_O", l)), b_O = sd.at(param_name("b_O", l));
  W_qkv = fused_w, b_qkv = fused_b;
  // Keep the mask and rotary tables on the weights' device.
  blocked = blocked.to(W_Q.device());
  if (rotary.cos.defined()) rotary.cos = rotary.cos.to(W_Q.device()), rotary.sin = rotary.sin.to(W_Q.device());
}

at::Tensor Attention::operator()(const at::Tensor& xq, const at::Tensor& xk, const at::Tensor& xv,
                                 bool per_head_inputs, KVCacheEntry* kv, bool last_query_only,
                                 const at::Tensor& q_given, const at::Tensor& kv_given) {
  const int64_t h = cfg->n_heads, kvh = cfg->kv_heads(), dh = cfg->d_head;
  const int64_t b = xq.size(0), p = xq.size(1);
  at::Tensor q, k, v;
  bool q_last = false;  // q holds the last position alone
  // split_with_sizes, not three slices: its backward is one concatenation, where slices
  // would each zero-fill a full-size gradient and then add them up.
  auto split = [&](const at::Tensor& fused, int64_t pos, bool with_q) {
    std::vector<int64_t> sizes{kvh * dh, kvh * dh};
    if (with_q) sizes.insert(sizes.begin(), h * dh);
    auto parts = fused.split_with_sizes(sizes, -1);
    const size_t o = with_q ? 1 : 0;
    if (with_q) q = parts[0].view({b, pos, h, dh});
    k = parts[o].view({b, p, kvh, dh}), v = parts[o + 1].view({b, p, kvh, dh});
  };
  if (kv_given.defined()) {
    split(kv_given, p, false);
    q = q_given.view({b, q_given.size(1), h, dh});
    q_last = q_given.size(1) == 1 && p > 1;
  } else if (!per_head_inputs && last_query_only) {
    q_last = true;
    // Keys and values at every position, the query only at the last one.
    const int64_t qd = h * dh;
    auto Wp = W_qkv.split_with_sizes({qd, 2 * kvh * dh}, 1);
    auto bp = b_qkv.split_with_sizes({qd, 2 * kvh * dh}, 0);
    split(at::addmm(bp[1], xq.reshape({b * p, -1}), Wp[1]).view({b, p, -1}), p, false);
    q = at::addmm(bp[0], xq.select(1, p - 1), Wp[0]).view({b, 1, h, dh});
  } else if (!per_head_inputs) {
    // Fast path: one GEMM for q, k and v; the hooks see views of its result.
    split(at::addmm(b_qkv, xq.reshape({b * p, -1}), W_qkv).view({b, p, -1}), p, true);
  } else {
    // Inputs carry a head axis (use_split_qkv_input / use_attn_in).
    q = at::einsum("bphd,hdk->bphk", {xq, W_Q}) + b_Q;
    k = at::einsum("bphd,hdk->bphk", {xk, W_K}) + b_K;
    v = at::einsum("bphd,hdk->bphk", {xv, W_V}) + b_V;
  }
  q = hook_q(q), k = hook_k(k), v = hook_v(v);
  int64_t offset = 0;
  if (kv) {  // keys are cached before rotary, as TransformerLens does
    offset = kv->length();
    if (offset > 0) {
      k = at::cat({kv->k, k}, 1);
      v = at::cat({kv->v, v}, 1);
    }
    kv->k = k, kv->v = v;
  }
  const int64_t q_offset = offset + (q_last ? p - 1 : 0);
  if (cfg->positional_embedding_type == PosEmbed::Rotary) {
    q = hook_rot_q(rotary.apply(q, q_offset));
    k = hook_rot_k(rotary.apply(k, 0));
  }
  const int64_t kp = k.size(1);
  int64_t q0 = 0;  // first query position computed
  if (last_query_only) q0 = p - 1, q = q.slice(1, q.size(1) - 1, q.size(1));
  const int64_t pq = p - q0;
  at::Tensor q_ = q.permute({0, 2, 1, 3});  // [b, h, pq, dh]
  at::Tensor k_ = k.permute({0, 2, 3, 1});  // [b, kvh, dh, kp]
  at::Tensor v_ = v.permute({0, 2, 1, 3});  // [b, kvh, kp, dh]
  if (kvh != h) {  // grouped-query attention: query head i reads kv head i / (h / kvh)
    k_ = k_.unsqueeze(2).expand({b, kvh, h / kvh, dh, kp}).reshape({b, h, dh, kp});
    v_ = v_.unsqueeze(2).expand({b, kvh, h / kvh, kp, dh}).reshape({b, h, kp, dh});
  }
  const bool low_precision = q_.scalar_type() != at::kFloat && q_.scalar_type() != at::kDouble;
  if (low_precision) q_ = q_.to(at::kFloat), k_ = k_.to(at::kFloat);
  at::Tensor scores = at::matmul(q_, k_);
  if (cfg->use_attn_scale) scores = scores / cfg->scale();
  at::Tensor m = blocked.slice(0, offset + q0, offset + p).slice(1, 0, kp);
  scores = hook_attn_scores(scores.masked_fill(m, -std::numeric_limits<float>::infinity()));
  at::Tensor pattern = at::softmax(scores, -1);
  pattern = hook_pattern(at::where(at::isnan(pattern), at::zeros_like(pattern), pattern));
  pattern = pattern.to(v_.scalar_type());
  at::Tensor z = hook_z(at::matmul(pattern, v_).permute({0, 2, 1, 3}));  // [b, pq, h, dh]
  if (cfg->use_attn_result) {
    at::Tensor result = hook_result(at::einsum("bphk,hkd->bphd", {z, W_O}));
    return result.sum(2) + b_O;
  }
  return at::addmm(b_O, z.reshape({b * pq, h * dh}), W_O.view({h * dh, -1})).view({b, pq, -1});
}

}  // namespace mechlens
