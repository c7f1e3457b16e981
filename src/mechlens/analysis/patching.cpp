#include "mechlens/analysis/patching.h"

#include <algorithm>
#include <map>

#include <torch/csrc/autograd/autograd.h>

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

namespace {
std::string hook_of(const std::string& site, int l) {
  if (site == "resid_pre" || site == "resid_mid" || site == "resid_post" || site == "attn_out" || site == "mlp_out" ||
      site == "z" || site == "q" || site == "k" || site == "v" || site == "pattern")
    return act_name(site, l);
  throw Error("unknown patching site \"" + site + "\" (resid_pre, resid_mid, resid_post, attn_out, mlp_out, z, q, k, v, pattern)");
}
std::vector<std::string> numbered(int64_t n) {
  std::vector<std::string> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(std::to_string(i));
  return v;
}
}  // namespace

ActivationPatching::ActivationPatching(HookedTransformer& model, const at::Tensor& clean, const at::Tensor& corrupted,
                                       PatchMetric metric, const at::Tensor& attention_mask)
    : model_(model), corrupted_(corrupted), metric_(std::move(metric)), mask_(attention_mask) {
  if (clean.sizes() != corrupted.sizes()) throw Error("clean and corrupted tokens must have the same shape");
  model_.check_tokens(clean);
  at::NoGradGuard no_grad;
  auto [cl, cc] = model_.run_with_cache(clean, all_names(), masked());
  clean_cache_ = std::move(cc);
  init(cl, {});
}

ActivationPatching::ActivationPatching(HookedTransformer& model, ActivationCache clean_cache, const at::Tensor& corrupted,
                                       PatchMetric metric, const at::Tensor& attention_mask)
    : model_(model),
      corrupted_(corrupted),
      metric_(std::move(metric)),
      clean_cache_(std::move(clean_cache)),
      mask_(attention_mask) {
  // The clean logits from the cache: ln_final and the unembedding of the last residual,
  // the same operations as the forward's last step.
  const std::string last = act_name("resid_post", model_.cfg().n_layers - 1);
  if (!clean_cache_.contains(last))
    throw Error("the clean cache lacks " + last + ": cache the clean run with every hook (no names_filter)");
  const at::Tensor& r = clean_cache_.at(last);
  if (r.dim() != 3 || r.size(0) != corrupted.size(0) || r.size(1) != corrupted.size(1))
    throw Error("the clean cache's activations are not [batch, pos] of the corrupted tokens' shape (a cache made "
                "with remove_batch_dim cannot be patched from)");
  at::NoGradGuard no_grad;
  init(model_.unembed(r), {});
}

ForwardOptions ActivationPatching::masked(int64_t repeat) const {
  ForwardOptions o;
  if (mask_.defined()) o.attention_mask = repeat == 1 ? mask_ : mask_.repeat({repeat, 1});
  return o;
}

at::Tensor ActivationPatching::at_metric_pos(const at::Tensor& x, int64_t offset) const {
  if (!ragged_pos_) return x.select(1, metric_pos_ - offset);
  const int64_t rows = x.size(0), b = row_pos_.size(0);
  at::Tensor pos = (row_pos_.repeat({rows / b}) - offset).clamp_min(0).to(x.device());
  return x.index({at::arange(rows, at::TensorOptions().dtype(at::kLong).device(x.device())), pos});
}

void ActivationPatching::init(const at::Tensor& clean_logits, const at::Tensor&) {
  model_.check_tokens(corrupted_);
  const auto& k = metric_.kind;
  const int64_t b = corrupted_.size(0), S = corrupted_.size(1);
  if (mask_.defined()) {
    if (mask_.dim() != 2 || mask_.size(0) != b || mask_.size(1) != S)
      throw Error("the attention mask must be [batch, pos] of the tokens' shape");
    mask_ = mask_.ne(0).to(at::kLong);
    if (mask_.sum(1).min().item<int64_t>() == 0) throw Error("an attention-mask row has no real token");
  }
  if (k == "custom") {
    if (!metric_.custom) throw Error("a custom patching metric needs a function");
  } else if (k != "logit_diff" && k != "logit_diff_norm" && k != "loss" && k != "prob") {
    throw Error("unknown metric \"" + k + "\" (logit_diff, logit_diff_norm, loss, prob, or a function of the logits)");
  }
  auto check_ids = [&](const std::vector<int64_t>& ids, const char* what) {
    if (ids.size() != 1 && static_cast<int64_t>(ids.size()) != b)
      throw Error(std::string(what) + " needs one token id or one per batch row");
    for (int64_t id : ids)
      if (id < 0 || id >= model_.cfg().vocab_out())
        throw Error(std::string(what) + " token id " + std::to_string(id) + " is out of range");
  };
  if (k != "custom") check_ids(metric_.answer, "the answer");
  if (k == "logit_diff" || k == "logit_diff_norm") {
    check_ids(metric_.wrong, "the wrong answer");
    std::vector<int64_t> cols = metric_.answer;
    cols.insert(cols.end(), metric_.wrong.begin(), metric_.wrong.end());
    std::sort(cols.begin(), cols.end());
    cols.erase(std::unique(cols.begin(), cols.end()), cols.end());
    columns_ = cols;
  }
  // A custom metric may read any position: only patches after the last one are inert.
  if (k == "custom") {
    row_pos_ = at::full({b}, S - 1, at::kLong);
  } else if (metric_.position < 0) {
    row_pos_ = last_real_positions(mask_, b, S) + (metric_.position + 1);
  } else {
    row_pos_ = at::full({b}, metric_.position, at::kLong);
    if (mask_.defined() && (row_pos_ > last_real_positions(mask_, b, S)).any().item<bool>())
      throw Error("metric position " + std::to_string(metric_.position) + " is past a row's last real token");
  }
  if (row_pos_.min().item<int64_t>() < 0 || row_pos_.max().item<int64_t>() >= S)
    throw Error("metric position is out of range");
  metric_pos_ = row_pos_.max().item<int64_t>();
  ragged_pos_ = row_pos_.min().item<int64_t>() != metric_pos_;
  at::NoGradGuard no_grad;
  auto [xl, xc] = model_.run_with_cache(corrupted_, all_names(), masked());
  corrupted_cache_ = std::move(xc);
  if (k == "custom") {
    corrupted_logits_ = xl;
    clean_metric_ = metric_full(clean_logits).item<double>();
    corrupted_metric_ = metric_full(xl).item<double>();
    return;
  }
  // Raw baselines first; normalisation (if any) uses them.
  clean_metric_ = metric_tensor(at_metric_pos(clean_logits, 0), {}, true).item<double>();
  corrupted_metric_ = metric_tensor(at_metric_pos(xl, 0), {}, true).item<double>();
  if (ragged_pos_) {
    at::Tensor at_pos = at_metric_pos(xl, 0);  // [b, vocab]
    if (!columns_.empty()) at_pos = at_pos.index_select(1, at::tensor(columns_, at::kLong).to(at_pos.device()));
    corrupted_at_pos_ = at_pos;
  }
  if (k == "logit_diff_norm" && clean_metric_ == corrupted_metric_)
    throw Error("clean and corrupted logit differences are equal: the normalised metric is undefined");
}

at::Tensor ActivationPatching::metric_full(const at::Tensor& logits) const {
  at::Tensor v = metric_.custom(logits);
  if (!v.defined() || v.numel() != 1) throw Error("the patching metric must return one number (a scalar)");
  return v.reshape({});
}

double ActivationPatching::metric_rows(const at::Tensor& logits, const std::vector<int64_t>& cols) const {
  return metric_tensor(logits, cols).item<double>();
}

at::Tensor ActivationPatching::metric_tensor(const at::Tensor& logits, const std::vector<int64_t>& cols, bool raw) const {
  // logits: [rows, C] over `cols` (or the whole vocabulary when cols is empty).
  const int64_t rows = logits.size(0), b = corrupted_.size(0);
  auto col = [&](int64_t id) -> int64_t {
    if (cols.empty()) return id;
    return std::lower_bound(cols.begin(), cols.end(), id) - cols.begin();
  };
  auto ids_for = [&](const std::vector<int64_t>& ids) {
    std::vector<int64_t> idx(rows);
    for (int64_t r = 0; r < rows; ++r) idx[r] = col(ids.size() == 1 ? ids[0] : ids[r % b]);
    return at::tensor(idx, at::kLong).unsqueeze(1).to(logits.device());
  };
  at::Tensor lf = logits.to(at::kFloat);
  at::Tensor vals;
  if (metric_.kind == "logit_diff" || metric_.kind == "logit_diff_norm") {
    vals = lf.gather(1, ids_for(metric_.answer)) - lf.gather(1, ids_for(metric_.wrong));
  } else {
    at::Tensor lp = lf.log_softmax(-1).gather(1, ids_for(metric_.answer));
    vals = metric_.kind == "loss" ? -lp : lp.exp();
  }
  at::Tensor v = vals.mean();
  if (metric_.kind == "logit_diff_norm" && !raw) v = (v - corrupted_metric_) / (clean_metric_ - corrupted_metric_);
  return v;
}

double ActivationPatching::metric_of_logits(const at::Tensor& logits) const {
  if (custom()) return metric_full(logits).item<double>();
  return metric_rows(at_metric_pos(logits, 0), {});
}

void ActivationPatching::finish_spec(Spec& s) const {
  const at::Tensor& C = clean_cache_.at(s.hook);
  const at::Tensor& X = corrupted_cache_.at(s.hook);
  auto first_diff = [](const at::Tensor& c, const at::Tensor& x, int64_t axis) -> int64_t {
    at::Tensor d = (c != x);
    std::vector<int64_t> other;
    for (int64_t i = 0; i < d.dim(); ++i)
      if (i != axis) other.push_back(i);
    at::Tensor any = other.empty() ? d : d.any(other[0], true);
    for (size_t i = 1; i < other.size(); ++i) any = any.any(other[i], true);
    any = any.reshape(-1);
    at::Tensor nz = any.nonzero();
    return nz.numel() ? nz[0][0].item<int64_t>() : -1;
  };
  if (s.kind == 0) {
    s.p0 = s.pos;
    s.skip = at::equal(C.select(1, s.pos), X.select(1, s.pos));
  } else if (s.kind == 1) {
    if (s.pos >= 0) {
      s.p0 = s.pos;
      s.skip = at::equal(C.select(1, s.pos).select(1, s.head), X.select(1, s.pos).select(1, s.head));
    } else {
      int64_t f = first_diff(C.select(2, s.head), X.select(2, s.head), 1);
      s.skip = f < 0;
      s.p0 = std::max<int64_t>(f, 0);
    }
  } else {
    at::Tensor c = C.select(1, s.head), x = X.select(1, s.head);  // [b, dest, src]
    if (s.dest >= 0 && s.src >= 0) {
      s.p0 = s.dest;
      s.skip = at::equal(c.select(1, s.dest).select(1, s.src), x.select(1, s.dest).select(1, s.src));
    } else if (s.dest >= 0) {
      s.p0 = s.dest;
      s.skip = at::equal(c.select(1, s.dest), x.select(1, s.dest));
    } else {
      int64_t f = first_diff(c, x, 1);
      s.skip = f < 0;
      s.p0 = std::max<int64_t>(f, 0);
    }
  }
  if (s.p0 > metric_pos_) s.skip = true;  // causal: cannot reach the metric's position
}

void ActivationPatching::apply(const Spec& s, at::Tensor& x, int64_t p0) const {
  const at::Tensor& C = clean_cache_.at(s.hook);
  if (s.kind == 0) {
    x.select(1, s.pos - p0).copy_(C.select(1, s.pos));
  } else if (s.kind == 1) {
    if (s.pos >= 0) x.select(1, s.pos - p0).select(1, s.head).copy_(C.select(1, s.pos).select(1, s.head));
    else x.select(2, s.head).copy_(C.slice(1, p0).select(2, s.head));
  } else {
    at::Tensor xh = x.select(1, s.head), ch = C.select(1, s.head);  // [n, dest, src]
    if (s.dest >= 0 && s.src >= 0) xh.select(1, s.dest - p0).select(1, s.src).copy_(ch.select(1, s.dest).select(1, s.src));
    else if (s.dest >= 0) xh.select(1, s.dest - p0).copy_(ch.select(1, s.dest));
    else xh.copy_(ch.slice(1, p0));
  }
}

std::vector<ActivationPatching::Spec> ActivationPatching::specs_for(const std::string& site, const std::string& mode,
                                                                    std::vector<int64_t>& shape,
                                                                    std::vector<std::string>& axes) {
  const auto& c = model_.cfg();
  const int L = c.n_layers;
  const int64_t S = corrupted_.size(1);
  std::vector<Spec> specs;
  const bool resid_like =
      site == "resid_pre" || site == "resid_mid" || site == "resid_post" || site == "attn_out" || site == "mlp_out";
  if (site == "resid_mid" && (c.parallel_attn_mlp || c.attn_only)) throw Error("this model has no resid_mid");
  if (site == "mlp_out" && c.attn_only) throw Error("this model has no MLPs");
  if (resid_like) {
    if (mode != "by_pos") throw Error("site " + site + " is patched per position (by_pos)");
    shape = {L, S}, axes = {"layer", "pos"};
    for (int l = 0; l < L; ++l)
      for (int64_t p = 0; p < S; ++p) {
        Spec s{l, hook_of(site, l), 0};
        s.pos = p;
        specs.push_back(s);
      }
  } else if (site == "z" || site == "q" || site == "k" || site == "v") {
    const int64_t H = (site == "k" || site == "v") ? c.kv_heads() : c.n_heads;
    if (mode == "by_pos") {
      shape = {L, S, H}, axes = {"layer", "pos", "head"};
      for (int l = 0; l < L; ++l)
        for (int64_t p = 0; p < S; ++p)
          for (int64_t h = 0; h < H; ++h) {
            Spec s{l, hook_of(site, l), 1};
            s.pos = p, s.head = h;
            specs.push_back(s);
          }
    } else if (mode == "all_pos") {
      shape = {L, H}, axes = {"layer", "head"};
      for (int l = 0; l < L; ++l)
        for (int64_t h = 0; h < H; ++h) {
          Spec s{l, hook_of(site, l), 1};
          s.head = h;
          specs.push_back(s);
        }
    } else {
      throw Error("head sites are patched by_pos or all_pos");
    }
  } else if (site == "pattern") {
    const int64_t H = c.n_heads;
    if (mode == "by_pos") {
      shape = {L, H, S}, axes = {"layer", "head", "dest_pos"};
      for (int l = 0; l < L; ++l)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t d = 0; d < S; ++d) {
            Spec s{l, hook_of(site, l), 2};
            s.head = h, s.dest = d;
            specs.push_back(s);
          }
    } else if (mode == "all_pos") {
      shape = {L, H}, axes = {"layer", "head"};
      for (int l = 0; l < L; ++l)
        for (int64_t h = 0; h < H; ++h) {
          Spec s{l, hook_of(site, l), 2};
          s.head = h;
          specs.push_back(s);
        }
    } else if (mode == "dest_src") {
      shape = {L, H, S, S}, axes = {"layer", "head", "dest_pos", "src_pos"};
      for (int l = 0; l < L; ++l)
        for (int64_t h = 0; h < H; ++h)
          for (int64_t d = 0; d < S; ++d)
            for (int64_t sp = 0; sp < S; ++sp) {
              Spec s{l, hook_of(site, l), 2};
              s.head = h, s.dest = d, s.src = sp;
              specs.push_back(s);
            }
    } else {
      throw Error("pattern is patched by_pos (per destination), all_pos or dest_src");
    }
  } else {
    hook_of(site, 0);  // throws the "unknown site" error
  }
  for (size_t i = 0; i < specs.size(); ++i) specs[i].out = static_cast<int64_t>(i);
  return specs;
}

void ActivationPatching::run_group(std::vector<Spec*>& chunk, int64_t p0, std::vector<double>& out) {
  const int L = model_.cfg().n_layers;
  const int64_t b = corrupted_.size(0);
  at::Tensor x;
  size_t next = 0;
  for (int j = chunk.front()->layer; j < L; ++j) {
    const size_t start_new = next;
    while (next < chunk.size() && chunk[next]->layer == j) ++next;
    if (next > start_new) {
      at::Tensor base = corrupted_cache_.at(act_name("resid_pre", j)).slice(1, p0);
      at::Tensor rep = base.repeat({static_cast<int64_t>(next - start_new), 1, 1});
      x = x.defined() ? at::cat({x, rep}) : rep;
    }
    const int64_t n_active = static_cast<int64_t>(next);
    KVCache kv;
    kv.layers.resize(L);
    if (p0 > 0) {
      kv.layers[j].k = corrupted_cache_.at(act_name("k", j)).slice(1, 0, p0).repeat({n_active, 1, 1, 1});
      kv.layers[j].v = corrupted_cache_.at(act_name("v", j)).slice(1, 0, p0).repeat({n_active, 1, 1, 1});
    }
    // One hook per distinct hook name among the patches that join at this layer.
    std::map<std::string, std::vector<size_t>> by_hook;
    for (size_t k = start_new; k < next; ++k) by_hook[chunk[k]->hook].push_back(k);
    std::vector<ForwardHookSpec> hooks;
    for (auto& [name, ks] : by_hook) {
      hooks.push_back({names_in({name}), [this, &chunk, ks, b, p0](const at::Tensor& a, const HookPoint&) {
                         at::Tensor y = a.clone();
                         for (size_t k : ks) {
                           at::Tensor rows = y.narrow(0, static_cast<int64_t>(k) * b, b);
                           apply(*chunk[k], rows, p0);
                         }
                         return y;
                       }});
    }
    ForwardOptions fo = masked(n_active);
    fo.start_at_layer = j;
    fo.stop_at_layer = j + 1;
    fo.kv_cache = &kv;
    fo.input_is_residual = true;
    x = model_.run_with_hooks(x, hooks, {}, fo);
  }
  if (custom()) {
    // Full logits per patch: the corrupted run's before p0 (causal attention leaves
    // them unchanged), the patched run's from p0 on.
    at::Tensor patched = model_.unembed(x);  // [n * b, S - p0, vocab]
    at::Tensor prefix = corrupted_logits_.slice(1, 0, p0);
    for (size_t k = 0; k < chunk.size(); ++k) {
      at::Tensor rows = patched.narrow(0, static_cast<int64_t>(k) * b, b);
      out[chunk[k]->out] = metric_full(p0 > 0 ? at::cat({prefix, rows}, 1) : rows).item<double>();
    }
    return;
  }
  at::Tensor logits = model_.unembed(at_metric_pos(x, p0), columns_);  // [n * b, C]
  if (ragged_pos_ && p0 > row_pos_.min().item<int64_t>()) {
    // Rows whose metric position comes before p0 are the corrupted run's there.
    const int64_t n = static_cast<int64_t>(chunk.size());
    at::Tensor before = (row_pos_ < p0).repeat({n}).to(logits.device()).unsqueeze(1);
    logits = at::where(before, corrupted_at_pos_.to(logits.scalar_type()).repeat({n, 1}), logits);
  }
  for (size_t k = 0; k < chunk.size(); ++k)
    out[chunk[k]->out] = metric_rows(logits.narrow(0, static_cast<int64_t>(k) * b, b), columns_);
}

std::vector<double> ActivationPatching::evaluate(std::vector<Spec>& specs, bool batched) {
  at::NoGradGuard no_grad;
  // Patches that cannot change the run keep the corrupted metric (0 when normalised).
  std::vector<double> out(specs.size(), metric_.kind == "logit_diff_norm" ? 0.0 : corrupted_metric_);
  const int64_t total = static_cast<int64_t>(specs.size());
  int64_t done = 0;
  if (!batched) {
    // One full forward per index, as TransformerLens does.
    for (auto& s : specs) {
      if (progress) progress(done++, total);
      at::Tensor logits = model_.run_with_hooks(
          corrupted_, {{names_in({s.hook}), [this, &s](const at::Tensor& a, const HookPoint&) {
                          at::Tensor y = a.clone();
                          apply(s, y, 0);
                          return y;
                        }}},
          {}, masked());
      out[s.out] = metric_of_logits(logits);
    }
    if (progress) progress(total, total);
    return out;
  }
  for (auto& s : specs) finish_spec(s);
  std::map<int64_t, std::vector<Spec*>> groups;
  for (auto& s : specs) {
    if (!s.skip) groups[s.p0].push_back(&s);
    else ++done;
  }
  const int64_t b = corrupted_.size(0), S = corrupted_.size(1);
  for (auto& [p0, group] : groups) {
    std::stable_sort(group.begin(), group.end(), [](const Spec* a, const Spec* c) { return a->layer < c->layer; });
    int64_t per = token_budget / std::max<int64_t>(1, b * (S - p0));
    if (custom()) per = std::min(per, logit_budget / std::max<int64_t>(1, b * S * model_.cfg().vocab_out()));
    const size_t per_chunk = std::max<int64_t>(1, per);
    for (size_t i = 0; i < group.size(); i += per_chunk) {
      std::vector<Spec*> chunk(group.begin() + i, group.begin() + std::min(group.size(), i + per_chunk));
      if (progress) progress(done, total);
      run_group(chunk, p0, out);
      done += static_cast<int64_t>(chunk.size());
    }
  }
  if (progress) progress(total, total);
  return out;
}

PatchResult ActivationPatching::make_result(const std::string& site, const std::string& mode,
                                            const std::vector<int64_t>& shape, const std::vector<std::string>& axes,
                                            std::vector<Spec>& specs, bool batched) {
  std::vector<double> vals = evaluate(specs, batched);
  PatchResult r;
  r.site = site, r.mode = mode, r.axes = axes;
  r.grid = at::tensor(vals, at::kDouble).to(at::kFloat).view(shape);
  for (size_t i = 0; i < axes.size(); ++i) r.labels.push_back(numbered(shape[i]));
  const bool norm = metric_.kind == "logit_diff_norm";
  r.clean_metric = norm ? 1.0 : clean_metric_;
  r.corrupted_metric = norm ? 0.0 : corrupted_metric_;
  r.patches = static_cast<int64_t>(specs.size());
  for (const auto& s : specs) r.skipped += batched && s.skip;
  return r;
}

PatchResult ActivationPatching::run(const std::string& site, const std::string& mode, bool batched) {
  std::vector<int64_t> shape;
  std::vector<std::string> axes;
  std::vector<Spec> specs = specs_for(site, mode, shape, axes);
  return make_result(site, mode, shape, axes, specs, batched);
}

void ActivationPatching::append_specs(std::vector<Spec>& all, const std::string& site, const std::string& mode,
                                      std::vector<int64_t>& shape, std::vector<std::string>& axes) {
  const int64_t base = static_cast<int64_t>(all.size());
  for (auto& s : specs_for(site, mode, shape, axes)) {
    s.out += base;
    all.push_back(s);
  }
}

PatchResult ActivationPatching::block_every(bool batched) {
  std::vector<Spec> all;
  std::vector<int64_t> shape;
  std::vector<std::string> axes;
  const std::vector<std::string> sites = {"resid_pre", "attn_out", "mlp_out"};
  for (const auto& site : sites) append_specs(all, site, "by_pos", shape, axes);
  shape.insert(shape.begin(), 3);
  axes.insert(axes.begin(), "component");
  PatchResult r = make_result("block_every", "by_pos", shape, axes, all, batched);
  r.labels[0] = sites;
  return r;
}

PatchResult ActivationPatching::head_all_pos_every(bool batched) {
  if (model_.cfg().kv_heads() != model_.cfg().n_heads)
    throw Error("grouped-query attention: k and v have fewer heads than q, so they cannot be stacked; patch each site");
  std::vector<Spec> all;
  std::vector<int64_t> shape;
  std::vector<std::string> axes;
  const std::vector<std::string> sites = {"z", "q", "k", "v", "pattern"};
  for (const auto& site : sites) append_specs(all, site, "all_pos", shape, axes);
  shape.insert(shape.begin(), 5);
  axes.insert(axes.begin(), "component");
  PatchResult r = make_result("head_all_pos_every", "all_pos", shape, axes, all, batched);
  r.labels[0] = {"output", "query", "key", "value", "pattern"};
  return r;
}

PatchResult ActivationPatching::head_by_pos_every(bool batched) {
  if (model_.cfg().kv_heads() != model_.cfg().n_heads)
    throw Error("grouped-query attention: k and v have fewer heads than q, so they cannot be stacked; patch each site");
  const int L = model_.cfg().n_layers;
  const int64_t S = corrupted_.size(1), H = model_.cfg().n_heads;
  std::vector<Spec> all;
  std::vector<int64_t> shape;
  std::vector<std::string> axes;
  for (const std::string site : {"z", "q", "k", "v"}) append_specs(all, site, "by_pos", shape, axes);
  // The pattern is patched per destination position, laid out [layer, pos, head].
  std::vector<int64_t> pshape;
  std::vector<std::string> paxes;
  auto part = specs_for("pattern", "by_pos", pshape, paxes);
  const int64_t base = static_cast<int64_t>(all.size());
  for (auto& s : part) {
    s.out = base + (static_cast<int64_t>(s.layer) * S + s.dest) * H + s.head;
    all.push_back(s);
  }
  PatchResult r = make_result("head_by_pos_every", "by_pos", {5, L, S, H}, {"component", "layer", "pos", "head"}, all, batched);
  r.labels[0] = {"output", "query", "key", "value", "pattern"};
  return r;
}

PatchResult ActivationPatching::attribution(const std::string& site, const std::string& mode) {
  std::vector<int64_t> shape;
  std::vector<std::string> axes;
  std::vector<Spec> specs = specs_for(site, mode, shape, axes);  // validates site and mode
  const int L = model_.cfg().n_layers;
  std::vector<std::string> names;
  for (int l = 0; l < L; ++l) names.push_back(hook_of(site, l));
  // Corrupted run with the embedding as the gradient leaf; keep the site activations.
  std::map<std::string, at::Tensor> acts;
  std::vector<ForwardHookSpec> hooks;
  hooks.push_back({names_in({act_name("embed")}), [](const at::Tensor& a, const HookPoint&) {
                     return a.detach().to(at::kFloat).requires_grad_(true);
                   }});
  hooks.push_back({names_in(names), [&acts](const at::Tensor& a, const HookPoint& hp) {
                     acts[hp.name()] = a;
                     return a;
                   }});
  at::Tensor logits;
  {
    at::AutoGradMode grad_on(true);
    logits = model_.run_with_hooks(corrupted_, hooks, {}, masked());
  }
  at::Tensor m = custom() ? metric_full(logits) : metric_tensor(at_metric_pos(logits, 0), {});
  std::vector<at::Tensor> inputs;
  for (const auto& n : names) inputs.push_back(acts.at(n));
  std::vector<at::Tensor> grads = torch::autograd::grad({m}, inputs, {}, false, false, true);
  const double base = metric_.kind == "logit_diff_norm" ? 0.0 : corrupted_metric_;
  std::vector<at::Tensor> per_layer;
  for (int l = 0; l < L; ++l) {
    const at::Tensor& g = grads[l].defined() ? grads[l] : at::zeros_like(inputs[l]);
    at::Tensor d = ((clean_cache_.at(names[l]) - corrupted_cache_.at(names[l])) * g.detach()).to(at::kFloat);
    at::Tensor v;
    if (site == "pattern") {  // [b, H, dest, src]
      v = mode == "dest_src" ? d.sum(0) : mode == "by_pos" ? d.sum(at::IntArrayRef{0, 3}) : d.sum(at::IntArrayRef{0, 2, 3});
    } else if (site == "z" || site == "q" || site == "k" || site == "v") {  // [b, pos, H, dh]
      v = mode == "by_pos" ? d.sum(at::IntArrayRef{0, 3}) : d.sum(at::IntArrayRef{0, 1, 3});
    } else {  // [b, pos, d_model]
      v = d.sum(at::IntArrayRef{0, 2});
    }
    per_layer.push_back(v);
  }
  PatchResult r;
  r.site = site, r.mode = mode + " (attribution)", r.axes = axes;
  r.grid = (at::stack(per_layer, 0) + base).view(shape).contiguous();
  for (size_t i = 0; i < axes.size(); ++i) r.labels.push_back(numbered(shape[i]));
  r.clean_metric = metric_.kind == "logit_diff_norm" ? 1.0 : clean_metric_;
  r.corrupted_metric = base;
  r.patches = static_cast<int64_t>(specs.size());
  return r;
}

double grid_correlation(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kDouble).reshape(-1), y = b.to(at::kDouble).reshape(-1);
  x = x - x.mean(), y = y - y.mean();
  double den = (x.norm() * y.norm()).item<double>();
  return den > 0 ? (x * y).sum().item<double>() / den : 0.0;
}

}  // namespace mechlens
