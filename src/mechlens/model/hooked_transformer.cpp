#include "mechlens/model/hooked_transformer.h"

#include <algorithm>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <map>
#include <sstream>

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

namespace {
std::string shape_string(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}
}  // namespace

// ---- name filters -----------------------------------------------------------------------

NameFilter all_names() {
  return [](const std::string&) { return true; };
}
NameFilter names_in(std::vector<std::string> names) {
  return [names = std::move(names)](const std::string& n) {
    for (const auto& x : names)
      if (x == n) return true;
    return false;
  };
}
NameFilter names_matching(const std::string& pattern) {
  std::shared_ptr<std::regex> re;
  try {
    re = std::make_shared<std::regex>(pattern);
  } catch (const std::regex_error& e) {
    throw Error("invalid hook-name regex \"" + pattern + "\": " + e.what());
  }
  return [re](const std::string& n) { return std::regex_search(n, *re); };
}

// ---- one block --------------------------------------------------------------------------

struct HookedTransformer::Block {
  Block(int l, const ModelConfig& c)
      : cfg(c),
        layer(l),
        hook_resid_pre(act_name("resid_pre", l)),
        hook_attn_in(act_name("attn_in", l)),
        hook_q_input(act_name("q_input", l)),
        hook_k_input(act_name("k_input", l)),
        hook_v_input(act_name("v_input", l)),
        hook_attn_out(act_name("attn_out", l)),
        hook_resid_mid(act_name("resid_mid", l)),
        hook_mlp_in(act_name("mlp_in", l)),
        hook_mlp_out(act_name("mlp_out", l)),
        hook_resid_post(act_name("resid_post", l)),
        ln1(l, "ln1", c),
        attn(l, c) {
    if (!c.attn_only) {
      ln2 = std::make_unique<Norm>(l, "ln2", c);
      mlp = std::make_unique<MLP>(l, c);
    }
  }

  bool per_head_inputs() const { return cfg.use_attn_in || cfg.use_split_qkv_input; }

  // Execution order, listing only hook points that fire under this config.
  void register_hooks(std::vector<HookPoint*>& out) {
    const bool rotary = cfg.positional_embedding_type == PosEmbed::Rotary;
    const bool ln = cfg.has_ln();
    out.push_back(&hook_resid_pre);
    if (cfg.use_attn_in) out.push_back(&hook_attn_in);
    if (cfg.use_split_qkv_input) out.insert(out.end(), {&hook_q_input, &hook_k_input, &hook_v_input});
    if (ln) out.insert(out.end(), {&ln1.hook_scale, &ln1.hook_normalized});
    out.insert(out.end(), {&attn.hook_q, &attn.hook_k, &attn.hook_v});
    if (rotary) out.insert(out.end(), {&attn.hook_rot_q, &attn.hook_rot_k});
    out.insert(out.end(), {&attn.hook_attn_scores, &attn.hook_pattern, &attn.hook_z});
    if (cfg.use_attn_result) out.push_back(&attn.hook_result);
    out.push_back(&hook_attn_out);
    if (!cfg.attn_only) {
      if (!cfg.parallel_attn_mlp) out.push_back(&hook_resid_mid);
      if (cfg.use_hook_mlp_in) out.push_back(&hook_mlp_in);
      if (ln) out.insert(out.end(), {&ln2->hook_scale, &ln2->hook_normalized});
      out.push_back(&mlp->hook_pre);
      if (cfg.gated_mlp) out.push_back(&mlp->hook_pre_linear);
      if (mlp->ln) out.insert(out.end(), {&mlp->hook_mid, &mlp->ln->hook_scale, &mlp->ln->hook_normalized});
      out.push_back(&mlp->hook_post);
      out.push_back(&hook_mlp_out);
    }
    out.push_back(&hook_resid_post);
  }

  void bind(const StateDict& sd, const StateDict& fused) {
    ln1.bind(sd);
    attn.bind(sd, fused.at(param_name("W_qkv", layer)), fused.at(param_name("b_qkv", layer)));
    if (ln2) ln2->bind(sd);
    if (mlp) mlp->bind(sd);
  }

  // With `last`, everything after the keys and values is computed at the last position only.
  at::Tensor forward(const at::Tensor& resid, KVCacheEntry* kv, const AttnRun& run, bool last = false,
                     const at::Tensor& q = {}, const at::Tensor& kv_in = {}) {
    at::Tensor resid_pre = hook_resid_pre(resid);
    at::Tensor attn_out;
    if (per_head_inputs()) {
      const int64_t b = resid_pre.size(0), p = resid_pre.size(1), d = resid_pre.size(2);
      auto heads = [&](int64_t n) { return resid_pre.unsqueeze(2).expand({b, p, n, d}); };
      at::Tensor q_in = heads(cfg.n_heads), k_in = heads(cfg.kv_heads()), v_in = k_in;
      if (cfg.use_attn_in) {
        q_in = hook_attn_in(q_in.clone());
        k_in = v_in = cfg.kv_heads() == cfg.n_heads ? q_in : heads(cfg.kv_heads());
      }
      if (cfg.use_split_qkv_input) {
        q_in = hook_q_input(q_in.clone());
        k_in = hook_k_input(k_in.clone());
        v_in = hook_v_input(v_in.clone());
      }
      attn_out = hook_attn_out(attn(ln1(q_in), ln1(k_in), ln1(v_in), true, kv, run, last));
    } else {
      at::Tensor x = ln1(resid_pre);
      attn_out = hook_attn_out(attn(x, x, x, false, kv, run, last, q, kv_in));
    }
    if (last) resid_pre = resid_pre.slice(1, resid_pre.size(1) - 1, resid_pre.size(1));
    if (cfg.attn_only) return hook_resid_post(resid_pre + attn_out);
    if (cfg.parallel_attn_mlp) {
      at::Tensor mlp_in = cfg.use_hook_mlp_in ? hook_mlp_in(resid_pre.clone()) : resid_pre;
      at::Tensor mlp_out = hook_mlp_out((*mlp)((*ln2)(mlp_in)));
      return hook_resid_post(resid_pre + attn_out + mlp_out);
    }
    at::Tensor resid_mid = hook_resid_mid(resid_pre + attn_out);
    at::Tensor mlp_in = cfg.use_hook_mlp_in ? hook_mlp_in(resid_mid.clone()) : resid_mid;
    at::Tensor mlp_out = hook_mlp_out((*mlp)((*ln2)(mlp_in)));
    return hook_resid_post(resid_mid + mlp_out);
  }

  const ModelConfig& cfg;
  int layer;
  HookPoint hook_resid_pre, hook_attn_in, hook_q_input, hook_k_input, hook_v_input, hook_attn_out, hook_resid_mid,
      hook_mlp_in, hook_mlp_out, hook_resid_post;
  Norm ln1;
  Attention attn;
  std::unique_ptr<Norm> ln2;
  std::unique_ptr<MLP> mlp;
};

// ---- model ------------------------------------------------------------------------------

HookedTransformer::HookedTransformer(ModelConfig cfg, StateDict weights, std::string processing) {
  reset(std::move(cfg), std::move(weights), std::move(processing));
}

HookedTransformer::~HookedTransformer() = default;

void HookedTransformer::reset(ModelConfig cfg, StateDict sd, std::string processing) {
  cfg.validate(cfg.model_name);
  if (cfg.dtype == "float16" && cfg.device == "cpu")
    throw Error("float16 matmuls are not implemented on CPU by libtorch; use dtype bfloat16 on CPU, float16 on cuda");
  check_state_dict(sd, cfg, cfg.model_name.empty() ? "model" : cfg.model_name);
  cfg_ = std::move(cfg);
  sd_ = std::move(sd);
  processing_ = std::move(processing);
  build();
  bind();
}

void HookedTransformer::set_optional_hooks(bool use_attn_result, bool use_split_qkv_input, bool use_hook_mlp_in,
                                           bool use_attn_in) {
  cfg_.use_attn_result = use_attn_result;
  cfg_.use_split_qkv_input = use_split_qkv_input;
  cfg_.use_hook_mlp_in = use_hook_mlp_in;
  cfg_.use_attn_in = use_attn_in;
  build();
  bind();
}

void HookedTransformer::load_state_dict(StateDict sd, std::string processing) {
  check_state_dict(sd, cfg_, cfg_.model_name.empty() ? "model" : cfg_.model_name);
  sd_ = std::move(sd);
  processing_ = std::move(processing);
  bind();
}

void HookedTransformer::build() {
  hook_embed_ = std::make_unique<HookPoint>(act_name("embed"));
  hook_pos_embed_ = std::make_unique<HookPoint>(act_name("pos_embed"));
  blocks_.clear();
  for (int l = 0; l < cfg_.n_layers; ++l) blocks_.push_back(std::make_unique<Block>(l, cfg_));
  ln_final_ = std::make_unique<Norm>(-1, "ln_final", cfg_);
  rotary_.reset();
  if (cfg_.positional_embedding_type == PosEmbed::Rotary) {
    rotary_ = std::make_unique<RotaryTables>();
    rotary_->init(cfg_);
  }
  order_.clear();
  order_.push_back(hook_embed_.get());
  if (cfg_.positional_embedding_type == PosEmbed::Standard) order_.push_back(hook_pos_embed_.get());
  for (auto& b : blocks_) b->register_hooks(order_);
  if (cfg_.has_ln()) order_.insert(order_.end(), {&ln_final_->hook_scale, &ln_final_->hook_normalized});
  by_name_.clear();
  for (HookPoint* h : order_) by_name_[h->name()] = h;
}

void HookedTransformer::bind() {
  at::ScalarType dt = cfg_.dtype == "bfloat16" ? at::kBFloat16 : cfg_.dtype == "float16" ? at::kHalf : at::kFloat;
  at::Device dev(cfg_.device);
  for (auto& [name, t] : sd_)
    if (t.scalar_type() != dt || t.device() != dev) t = t.to(dev, dt);
  // One storage per layer for q, k and v: [d_model, heads * d_head] blocks side by side,
  // so the fast path runs one GEMM and W_Q & co are views that cannot go stale.
  fused_.clear();
  auto flat = [](const at::Tensor& w) { return w.permute({1, 0, 2}).reshape({w.size(1), -1}); };
  for (int l = 0; l < cfg_.n_layers; ++l) {
    auto w = [&](const char* n) -> const at::Tensor& { return sd_.at(param_name(n, l)); };
    fused_[param_name("W_qkv", l)] = at::cat({flat(w("W_Q")), flat(w("W_K")), flat(w("W_V"))}, 1);
    fused_[param_name("b_qkv", l)] = at::cat({w("b_Q").reshape(-1), w("b_K").reshape(-1), w("b_V").reshape(-1)});
    // The separate copies go at once (sd_'s entries become views of the fused storage)
    // and their memory back to the system: glibc keeps freed heap blocks below its
    // adaptive mmap threshold resident otherwise, and the next layer's storage cannot
    // reuse them. Building the model then holds one layer's q, k, v twice, not a quarter
    // of all attention weights.
    layer_views(l);
#ifdef __GLIBC__
    ::malloc_trim(0);
#endif
  }
  tied_ = cfg_.tie_word_embeddings && at::equal(sd_.at(param_name("W_U")), sd_.at(param_name("W_E")).t());
  make_views();
}

void HookedTransformer::layer_views(int l) {
  const int64_t h = cfg_.n_heads, kvh = cfg_.kv_heads(), dh = cfg_.d_head, d = cfg_.d_model;
  const at::Tensor &w = fused_.at(param_name("W_qkv", l)), &bias = fused_.at(param_name("b_qkv", l));
  const int64_t cut[4] = {0, h * dh, (h + kvh) * dh, (h + 2 * kvh) * dh};
  const char* W_names[3] = {"W_Q", "W_K", "W_V"};
  const char* b_names[3] = {"b_Q", "b_K", "b_V"};
  for (int i = 0; i < 3; ++i) {
    const int64_t n = i == 0 ? h : kvh;
    const std::string W_name = param_name(W_names[i], l), b_name = param_name(b_names[i], l);
    sd_[W_name] = w.slice(1, cut[i], cut[i + 1]).view({d, n, dh}).permute({1, 0, 2});
    sd_[b_name] = bias.slice(0, cut[i], cut[i + 1]).view({n, dh});
    view_names_.push_back(W_name);
    view_names_.push_back(b_name);
  }
}

void HookedTransformer::make_views() {
  view_names_.clear();
  for (int l = 0; l < cfg_.n_layers; ++l) layer_views(l);
  // Tied embeddings stay one tensor: W_U is a view of W_E.
  const std::string W_U = param_name("W_U");
  if (tied_) sd_[W_U] = sd_.at(param_name("W_E")).t(), view_names_.push_back(W_U);
  W_E_ = sd_.at(param_name("W_E"));
  W_pos_ = cfg_.positional_embedding_type == PosEmbed::Standard ? sd_.at(param_name("W_pos")) : at::Tensor();
  W_U_ = sd_.at(W_U);
  b_U_ = sd_.at(param_name("b_U"));
  for (auto& b : blocks_) b->bind(sd_, fused_);
  ln_final_->bind(sd_);
}

std::vector<std::pair<std::string, at::Tensor>> HookedTransformer::parameters() const {
  std::map<std::string, at::Tensor> all(fused_.begin(), fused_.end());
  for (const auto& [name, t] : sd_)
    if (std::find(view_names_.begin(), view_names_.end(), name) == view_names_.end()) all[name] = t;
  return {all.begin(), all.end()};
}

void HookedTransformer::set_requires_grad(bool on, const std::vector<std::string>& except) {
  auto listed = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  for (const auto& n : except)
    if (!fused_.count(n) && (!sd_.count(n) || listed(view_names_, n)))
      throw Error("set_requires_grad: " + n + " is not one of the model's parameters()");
  for (auto& [name, t] : fused_) t.requires_grad_(listed(except, name) ? !on : on);
  for (auto& [name, t] : sd_)
    if (!listed(view_names_, name)) t.requires_grad_(listed(except, name) ? !on : on);
  make_views();
}

std::vector<std::string> HookedTransformer::hook_names() const {
  std::vector<std::string> n;
  for (auto* h : order_) n.push_back(h->name());
  return n;
}

HookPoint* HookedTransformer::hook(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

void HookedTransformer::check_tokens(const at::Tensor& tokens, int64_t past) const {
  if (tokens.dim() != 2) throw Error("tokens must be a [batch, pos] array");
  if (tokens.scalar_type() != at::kLong) throw Error("tokens must be int64");
  if (tokens.size(1) == 0 || tokens.size(0) == 0) throw Error("tokens are empty");
  if (tokens.size(1) + past > cfg_.n_ctx)
    throw Error("sequence of " + std::to_string(tokens.size(1) + past) + " tokens is longer than n_ctx = " +
                std::to_string(cfg_.n_ctx));
  int64_t lo = tokens.min().item<int64_t>(), hi = tokens.max().item<int64_t>();
  if (lo < 0) throw Error("token id " + std::to_string(lo) + " is negative");
  if (hi >= cfg_.d_vocab)
    throw Error("token id " + std::to_string(hi) + " is out of range (d_vocab = " + std::to_string(cfg_.d_vocab) + ")");
}

at::Tensor HookedTransformer::forward(const at::Tensor& input, const ForwardOptions& opts) {
  const int start = opts.start_at_layer;
  const int stop = opts.stop_at_layer < 0 ? cfg_.n_layers : std::min(opts.stop_at_layer, cfg_.n_layers);
  if (start < 0 || start > cfg_.n_layers) throw Error("start_at_layer out of range");
  KVCache* kv = opts.kv_cache;
  if (kv && kv->layers.size() != static_cast<size_t>(cfg_.n_layers)) kv->layers.resize(cfg_.n_layers);
  // Keys and values already cached for the first layer run (a run may start at any
  // layer with only that layer's prefix given, as patching does).
  const int64_t past = kv && start < cfg_.n_layers ? kv->layers[start].length() : 0;
  if (input.dim() < 2) throw Error("input must be [batch, pos] tokens or a [batch, pos, d_model] residual stream");
  const int64_t b = input.size(0), p = input.size(1);
  at::Tensor mask, position_ids;  // mask: bool [b, past + p]; position_ids [b, past + p]
  if (opts.attention_mask.defined()) {
    const at::Tensor& am = opts.attention_mask;
    if (am.dim() != 2 || am.size(0) != b || am.size(1) != past + p)
      throw Error("attention_mask must be [batch, past + pos] = [" + std::to_string(b) + ", " +
                  std::to_string(past + p) + "], got " + shape_string(am));
    if (at::isFloatingType(am.scalar_type()) || at::isComplexType(am.scalar_type()))
      throw Error("attention_mask must hold integers or booleans (1 = real token, 0 = padding)");
    mask = am.to(W_E_.device()).ne(0);
    position_ids = mask_position_ids(mask);
  }
  at::Tensor resid, q0, kv0;
  if (start == 0 && !opts.input_is_residual) {
    check_tokens(input, past);
    at::Tensor tok = input.to(W_E_.device());
    resid = (*hook_embed_)(at::embedding(W_E_, tok));
    if (cfg_.positional_embedding_type == PosEmbed::Standard) {
      at::Tensor pos;
      if (mask.defined()) {  // as TransformerLens: W_pos at each token's position, 0 at pads
        at::Tensor ids = position_ids.slice(1, past, past + p);
        pos = at::embedding(W_pos_, ids).masked_fill(mask.slice(1, past, past + p).logical_not().unsqueeze(-1), 0);
      } else {
        pos = W_pos_.slice(0, past, past + p).unsqueeze(0).expand({b, p, cfg_.d_model});
      }
      resid = resid + (*hook_pos_embed_)(pos);
    }
    const Block& b0 = *blocks_[0];
    if (opts.fold_embeddings && stop > 0 && !kv && !mask.defined() && !cfg_.has_ln() &&
        cfg_.positional_embedding_type == PosEmbed::Standard && !b0.per_head_inputs() && !hook_embed_->active() &&
        !hook_pos_embed_->active() && !b0.hook_resid_pre.active()) {
      // q only where it is needed (the last position when that is all the run computes).
      const int64_t qd = static_cast<int64_t>(cfg_.n_heads) * cfg_.d_head;
      auto W = b0.attn.W_qkv.split_with_sizes({qd, 2 * cfg_.kv_heads() * cfg_.d_head}, 1);
      auto bias = b0.attn.b_qkv.split_with_sizes({qd, 2 * cfg_.kv_heads() * cfg_.d_head}, 0);
      at::Tensor pos_rows = W_pos_.slice(0, past, past + p);
      auto folded = [&](int i, const at::Tensor& t, const at::Tensor& prow) {  // [V, n] gathered + [p, n]
        return at::embedding(at::matmul(W_E_, W[i]), t).add_(at::addmm(bias[i], prow, W[i]).unsqueeze(0));
      };
      kv0 = folded(1, tok, pos_rows);
      const bool last_only = opts.last_position_only && stop == 1;
      q0 = last_only ? folded(0, tok.slice(1, p - 1, p), pos_rows.slice(0, p - 1, p)) : folded(0, tok, pos_rows);
    }
  } else {
    if (input.dim() != 3 || input.size(2) != cfg_.d_model)
      throw Error("start_at_layer needs a [batch, pos, d_model] residual stream");
    resid = input;
  }
  if (opts.last_position_only && (opts.stop_at_layer >= 0 || start >= stop))
    throw Error("last_position_only needs a run through the last layer");
  if (start < stop && p + past > cfg_.n_ctx)
    throw Error("sequence of " + std::to_string(p + past) + " positions is longer than n_ctx = " + std::to_string(cfg_.n_ctx));
  const AttnRun run = start < stop ? attn_run(b, past, p, mask, position_ids) : AttnRun{};
  for (int l = start; l < stop; ++l)
    resid = blocks_[l]->forward(resid, kv ? &kv->layers[l] : nullptr, run, opts.last_position_only && l == stop - 1,
                                l == 0 ? q0 : at::Tensor(), l == 0 ? kv0 : at::Tensor());
  if (opts.stop_at_layer >= 0) return resid;
  return unembed(resid);
}

AttnRun HookedTransformer::attn_run(int64_t b, int64_t past, int64_t p, const at::Tensor& mask,
                                    const at::Tensor& position_ids) {
  // Sized by what is run: [p, past + p], built once and shared by every layer.
  AttnRun run;
  const int64_t kp = past + p;
  const auto dev = W_E_.device();
  at::Tensor i = at::arange(past, kp, at::TensorOptions().dtype(at::kLong).device(dev)).unsqueeze(1);
  at::Tensor j = at::arange(kp, at::TensorOptions().dtype(at::kLong).device(dev)).unsqueeze(0);
  at::Tensor pads = mask.defined() ? mask.logical_not().view({b, 1, 1, kp}) : at::Tensor();
  auto with_pads = [&](at::Tensor blocked) { return pads.defined() ? blocked.unsqueeze(0).unsqueeze(0) | pads : blocked; };
  run.blocked_global = with_pads(j > i);
  bool any_local = false;
  for (int l = 0; l < cfg_.n_layers; ++l) any_local = any_local || cfg_.layer_is_local(l);
  if (any_local) run.blocked_local = with_pads((j > i) | (j <= i - cfg_.window_size));
  if (rotary_) {
    if (position_ids.defined()) {
      auto [cos, sin] = rotary_->upto(position_ids.max().item<int64_t>() + 1);
      run.cos = at::embedding(cos.to(dev), position_ids).unsqueeze(2);  // [b, kp, 1, dim]
      run.sin = at::embedding(sin.to(dev), position_ids).unsqueeze(2);
    } else {
      auto [cos, sin] = rotary_->upto(kp);
      run.cos = cos.to(dev).unsqueeze(0).unsqueeze(2);  // [1, kp, 1, dim]
      run.sin = sin.to(dev).unsqueeze(0).unsqueeze(2);
    }
  }
  return run;
}

at::Tensor last_real_positions(const at::Tensor& attention_mask, int64_t batch, int64_t pos) {
  if (!attention_mask.defined()) return at::full({batch}, pos - 1, at::kLong);
  at::Tensor m = attention_mask.ne(0).to(at::kLong);
  const int64_t n = m.size(1);
  // index of the last 1: argmax of m * (1..n)
  at::Tensor idx = (m * at::arange(1, n + 1, at::TensorOptions().dtype(at::kLong).device(m.device()))).argmax(1);
  return idx.cpu();
}

at::Tensor mask_position_ids(const at::Tensor& attention_mask) {
  at::Tensor ids = attention_mask.ne(0).to(at::kLong).cumsum(1) - 1;
  return ids.clamp_min(0);
}

at::Tensor HookedTransformer::unembed(const at::Tensor& resid, const std::vector<int64_t>& columns) {
  at::Tensor x = (*ln_final_)(resid);
  std::vector<int64_t> shape = x.sizes().vec();
  at::Tensor flat = x.reshape({-1, cfg_.d_model});
  at::Tensor out;
  if (columns.empty()) {
    out = at::addmm(b_U_, flat, W_U_);
  } else {
    at::Tensor idx = at::tensor(columns, at::kLong).to(W_U_.device());
    out = at::addmm(b_U_.index_select(0, idx), flat, W_U_.index_select(1, idx));
  }
  shape.back() = out.size(1);
  return out.view(shape);
}

at::Tensor HookedTransformer::per_token_loss(const at::Tensor& logits, const at::Tensor& tokens,
                                             const at::Tensor& attention_mask) {
  const int64_t p = logits.size(1);
  at::Tensor lp = at::log_softmax(logits.slice(1, 0, p - 1).to(at::kFloat), -1);
  at::Tensor next = tokens.slice(1, 1, p).to(logits.device()).unsqueeze(-1);
  at::Tensor out = -lp.gather(-1, next).squeeze(-1);
  if (attention_mask.defined()) {
    at::Tensor m = attention_mask.to(logits.device()).ne(0);
    out = out * (m.slice(1, 0, p - 1) & m.slice(1, 1, p)).to(out.scalar_type());
  }
  return out;
}

at::Tensor HookedTransformer::loss(const at::Tensor& logits, const at::Tensor& tokens, const at::Tensor& attention_mask) {
  if (logits.size(1) < 2) throw Error("loss needs at least 2 positions");
  at::Tensor per = per_token_loss(logits, tokens, attention_mask);
  if (!attention_mask.defined()) return per.mean();
  at::Tensor m = attention_mask.to(logits.device()).ne(0);
  const int64_t p = logits.size(1);
  return per.sum() / (m.slice(1, 0, p - 1) & m.slice(1, 1, p)).sum().to(per.scalar_type());
}

void HookedTransformer::add_hook(const NameFilter& filter, ForwardHook fn, bool permanent) {
  int matched = 0;
  for (auto* h : order_)
    if (filter(h->name())) h->add_forward(fn, permanent), ++matched;
  if (matched == 0) throw Error("no hook point matches the given name or filter");
}

void HookedTransformer::add_backward_hook(const NameFilter& filter, BackwardHook fn, bool permanent) {
  int matched = 0;
  for (auto* h : order_)
    if (filter(h->name())) h->add_backward(fn, permanent), ++matched;
  if (matched == 0) throw Error("no hook point matches the given name or filter");
}

void HookedTransformer::reset_hooks(bool including_permanent) {
  for (auto* h : order_) h->clear(including_permanent);
}

namespace {
// Removes the hooks a scope added, also when the forward throws.
struct ScopedHooks {
  std::vector<std::pair<HookPoint*, int>> added;
  ~ScopedHooks() {
    for (auto& [h, id] : added) h->remove(id);
  }
};
}  // namespace

std::pair<at::Tensor, ActivationCache> HookedTransformer::run_with_cache(const at::Tensor& input,
                                                                         const NameFilter& filter,
                                                                         const ForwardOptions& opts) {
  ActivationCache cache;
  ScopedHooks scope;
  for (auto* h : order_) {
    if (!filter(h->name())) continue;
    int id = h->add_forward([&cache](const at::Tensor& x, const HookPoint& hp) {
      cache.set(hp.name(), x.detach());
      return x;
    });
    scope.added.push_back({h, id});
  }
  at::Tensor out = forward(input, opts);
  return {out, std::move(cache)};
}

at::Tensor HookedTransformer::run_with_hooks(const at::Tensor& input, const std::vector<ForwardHookSpec>& fwd,
                                             const std::vector<BackwardHookSpec>& bwd, const ForwardOptions& opts) {
  ScopedHooks scope;
  for (const auto& spec : fwd) {
    int matched = 0;
    for (auto* h : order_)
      if (spec.filter(h->name())) scope.added.push_back({h, h->add_forward(spec.fn)}), ++matched;
    if (!matched) throw Error("no hook point matches a forward hook's name or filter");
  }
  for (const auto& spec : bwd) {
    int matched = 0;
    for (auto* h : order_)
      if (spec.filter(h->name())) scope.added.push_back({h, h->add_backward(spec.fn)}), ++matched;
    if (!matched) throw Error("no hook point matches a backward hook's name or filter");
  }
  return forward(input, opts);
}

}  // namespace mechlens
