#include "mechlens/model/components.h"
#include "mechlens/model/hook_names.h"

#include <cmath>

namespace mechlens {

// ---- rotary ---------------------------------------------------------------------------

void RotaryTables::init(const ModelConfig& cfg) {
  cfg_ = &cfg;
  dim = cfg.rot_dim();
  adjacent = cfg.rotary_adjacent_pairs;
  cos_ = sin_ = at::Tensor();
  // Frequencies computed in float32 the way Hugging Face computes them, so long
  // contexts agree with HF to the last bit we can measure.
  at::Tensor idx = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<float>(dim);
  at::Tensor inv = 1.0 / at::pow(static_cast<float>(cfg.rotary_base), idx);  // [dim/2]
  if (cfg.rope_scaling == RopeScaling::Llama3) {
    // transformers' _compute_llama3_parameters, in float32 tensor ops as there.
    const double factor = cfg.rope_factor, lo = cfg.rope_low_freq_factor, hi = cfg.rope_high_freq_factor;
    const double old_ctx = cfg.rope_original_n_ctx;
    const double low_freq_wavelen = old_ctx / lo, high_freq_wavelen = old_ctx / hi;
    at::Tensor wavelen = 2 * M_PI / inv;
    at::Tensor scaled = at::where(wavelen > low_freq_wavelen, inv / factor, inv);
    at::Tensor smooth = (old_ctx / wavelen - lo) / (hi - lo);
    at::Tensor smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
    at::Tensor medium = (wavelen < high_freq_wavelen).logical_not() & (wavelen > low_freq_wavelen).logical_not();
    inv = at::where(medium, smoothed, scaled);
  }
  base_inv_freq_ = inv;
}

at::Tensor RotaryTables::inv_freq(int64_t n) const {
  if (cfg_->rope_scaling == RopeScaling::Dynamic && n > cfg_->rope_original_n_ctx) {
    // LlamaDynamicNTKScalingRotaryEmbedding: base * ((factor * n / n_orig) - (factor - 1)) ** (dim / (dim - 2)),
    // with n = max(position_ids) + 1, in float32 as there.
    const double f = cfg_->rope_factor;
    at::Tensor n_t = at::scalar_tensor(static_cast<double>(n), at::kFloat);
    at::Tensor base = cfg_->rotary_base * at::pow(f * n_t / cfg_->rope_original_n_ctx - (f - 1),
                                                   static_cast<double>(dim) / (dim - 2));
    at::Tensor idx = at::arange(0, dim, 2, at::kLong).to(at::kFloat) / static_cast<float>(dim);
    return 1.0 / at::pow(base, idx);
  }
  return base_inv_freq_;
}

std::pair<at::Tensor, at::Tensor> RotaryTables::tables(const at::Tensor& inv, int64_t n) const {
  at::Tensor t = at::arange(n, at::kLong).to(at::kFloat);
  if (cfg_->rope_scaling == RopeScaling::Linear) t = t / static_cast<float>(cfg_->rope_factor);
  at::Tensor freqs = at::outer(t, inv);  // [n, dim/2]
  at::Tensor emb = adjacent ? at::repeat_interleave(freqs, 2, 1) : at::cat({freqs, freqs}, 1);
  return {emb.cos(), emb.sin()};
}

std::pair<at::Tensor, at::Tensor> RotaryTables::upto(int64_t n) {
  if (cfg_->rope_scaling == RopeScaling::Dynamic && n > cfg_->rope_original_n_ctx) return tables(inv_freq(n), n);
  std::lock_guard<std::mutex> lock(mu_);
  if (!cos_.defined() || cos_.size(0) < n) {
    // Grow geometrically so a generation loop does not rebuild the table every token.
    const int64_t have = cos_.defined() ? cos_.size(0) : 0;
    const int64_t rows = std::min<int64_t>(std::max<int64_t>({n, 2 * have, 64}), std::max<int64_t>(n, cfg_->n_ctx));
    std::tie(cos_, sin_) = tables(base_inv_freq_, rows);
  }
  return {cos_.slice(0, 0, n), sin_.slice(0, 0, n)};
}

at::Tensor apply_rotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t dim, bool adjacent) {
  at::Tensor c = cos.to(x.scalar_type()), s = sin.to(x.scalar_type());
  at::Tensor xr = dim == x.size(-1) ? x : x.slice(-1, 0, dim);
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
  if (c.positional_embedding_type == PosEmbed::Rotary) rotary_dim = c.rot_dim(), rotary_adjacent = c.rotary_adjacent_pairs;
}

void Attention::bind(const StateDict& sd, const at::Tensor& fused_w, const at::Tensor& fused_b) {
  const int l = layer;
  W_Q = sd.at(param_name("W_Q", l)), b_Q = sd.at(param_name("b_Q", l));
  W_K = sd.at(param_name("W_K", l)), b_K = sd.at(param_name("b_K", l));
  W_V = sd.at(param_name("W_V", l)), b_V = sd.at(param_name("b_V", l));
  W_O = sd.at(param_name("W_O", l)), b_O = sd.at(param_name("b_O", l));
  W_qkv = fused_w, b_qkv = fused_b;
}

at::Tensor Attention::operator()(const at::Tensor& xq, const at::Tensor& xk, const at::Tensor& xv,
                                 bool per_head_inputs, KVCacheEntry* kv, const AttnRun& run, bool last_query_only,
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
  const int64_t kp = k.size(1);
  if (rotary_dim > 0) {  // queries are the last q.size(1) key positions
    const int64_t nq = q.size(1);
    q = hook_rot_q(apply_rotary(q, run.cos.slice(1, kp - nq, kp), run.sin.slice(1, kp - nq, kp), rotary_dim,
                                rotary_adjacent));
    k = hook_rot_k(apply_rotary(k, run.cos, run.sin, rotary_dim, rotary_adjacent));
  }
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
  const at::Tensor& blocked = run.blocked(local);  // rows: the p queries of this call
  at::Tensor m = blocked.slice(-2, q0, p);
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
