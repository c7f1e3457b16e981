#include "mechlens/analysis/verify.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdio>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "mechlens/model/generate.h"
#include "mechlens/model/hook_names.h"
#include "mechlens/tokenize/tokens.h"

namespace mechlens {

namespace {
double max_abs(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
  at::Tensor both_inf = at::isinf(x) & at::isinf(y) & (at::sign(x) == at::sign(y));
  at::Tensor d = at::where(both_inf, at::zeros_like(x), (x - y).abs());
  if (d.numel() == 0) return 0;
  if (at::isnan(d).any().item<bool>()) return INFINITY;
  return d.max().item<double>();
}
}  // namespace

bool VerifyReport::ok() const {
  return std::all_of(checks.begin(), checks.end(), [](const VerifyCheck& c) { return c.ok(); });
}

nlohmann::json VerifyReport::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& c : checks)
    rows.push_back({{"check", c.name}, {"error", c.error}, {"tolerance", c.tolerance}, {"ok", c.ok()}});
  return {{"ok", ok()}, {"checks", rows}};
}

std::string VerifyReport::table() const {
  size_t w = 5;
  for (const auto& c : checks) w = std::max(w, c.name.size());
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-*s  %12s  %10s  %s\n", static_cast<int>(w), "check", "max |error|", "tolerance", "");
  out += line;
  for (const auto& c : checks) {
    std::snprintf(line, sizeof line, "%-*s  %12.3g  %10.1g  %s\n", static_cast<int>(w), c.name.c_str(), c.error,
                  c.tolerance, c.ok() ? "ok" : "FAIL");
    out += line;
  }
  return out;
}

VerifyReport verify_model(const std::string& dir, const VerifyOptions& o) {
  VerifyReport r;
  auto add = [&](std::string name, double err, double tol) { r.checks.push_back({std::move(name), err, tol}); };
  at::NoGradGuard no_grad;
  auto model = load_model(dir);
  const ModelConfig& c = model->cfg();
  const int L = c.n_layers;

  // Test prompts: the reference's input_ids, else random ids.
  at::Tensor tokens;
  std::shared_ptr<SafetensorsFile> expected;
  if (!o.reference_dir.empty()) {
    if (!dir_exists(o.reference_dir)) fail_not_found(o.reference_dir, "reference folder not found");
    const std::string e = join_path(o.reference_dir, "expected.safetensors");
    if (file_exists(e)) expected = SafetensorsFile::open(e), tokens = expected->get("input_ids");
  }
  if (!tokens.defined()) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    tokens = at::randint(0, c.d_vocab, {2, std::max<int64_t>(2, std::min<int64_t>(o.seq, c.n_ctx))}, gen, at::kLong);
  }
  model->check_tokens(tokens);
  auto [logits, cache] = model->run_with_cache(tokens);

  // The residual stream adds up.
  double mid = 0, post = 0, chain = 0, heads = 0;
  for (int l = 0; l < L; ++l) {
    auto a = [&](const char* n) { return cache.at(act_name(n, l)); };
    if (c.attn_only) {
      post = std::max(post, max_abs(a("resid_pre") + a("attn_out"), a("resid_post")));
    } else if (c.parallel_attn_mlp) {
      post = std::max(post, max_abs(a("resid_pre") + a("attn_out") + a("mlp_out"), a("resid_post")));
    } else {
      mid = std::max(mid, max_abs(a("resid_pre") + a("attn_out"), a("resid_mid")));
      post = std::max(post, max_abs(a("resid_mid") + a("mlp_out"), a("resid_post")));
    }
    if (l + 1 < L) chain = std::max(chain, max_abs(a("resid_post"), cache.at(act_name("resid_pre", l + 1))));
    // Per-head outputs z_h W_O[h] sum (with b_O) to attn_out.
    const auto& sd = model->state_dict();
    at::Tensor per_head = at::einsum("bphk,hkd->bphd", {a("z").to(at::kFloat), sd.at(param_name("W_O", l)).to(at::kFloat)});
    heads = std::max(heads, max_abs(per_head.sum(2) + sd.at(param_name("b_O", l)).to(at::kFloat), a("attn_out")));
  }
  const double tol = c.dtype == "float32" ? 1e-4 : 5e-2;
  if (!c.attn_only && !c.parallel_attn_mlp) add("resid_pre + attn_out = resid_mid", mid, tol);
  add(c.parallel_attn_mlp ? "resid_pre + attn_out + mlp_out = resid_post" : "resid_mid + mlp_out = resid_post", post, tol);
  if (L > 1) add("resid_post[l] = resid_pre[l+1]", chain, 0);
  add("sum over heads of z W_O + b_O = attn_out", heads, tol);
  add("unembed(final resid_post) = logits", max_abs(model->unembed(cache.at(act_name("resid_post", L - 1))), logits), tol);

  // Weight processing keeps log-probabilities (unprocessed folders only).
  if (model->processing() == "none") {
    LoadOptions tl;
    tl.processing = ProcessingOptions::tl_defaults();
    auto processed = load_model(dir, tl);
    add("processed (TL defaults) log_softmax = unprocessed", max_abs(processed->forward(tokens).log_softmax(-1),
                                                                      logits.log_softmax(-1)), tol);
  }

  // The KV cache changes nothing: incremental logits and greedy generation.
  {
    KVCache kv;
    ForwardOptions fo;
    fo.kv_cache = &kv;
    std::vector<at::Tensor> steps;
    const int64_t p = tokens.size(1), first = p / 2;
    steps.push_back(model->forward(tokens.slice(1, 0, first), fo));
    for (int64_t i = first; i < p; ++i) steps.push_back(model->forward(tokens.slice(1, i, i + 1), fo));
    add("KV-cache logits = full-sequence logits", max_abs(at::cat(steps, 1), logits), tol);
    const int64_t room = c.n_ctx - p;
    if (room > 0) {
      GenerateOptions g;
      g.max_new_tokens = static_cast<int>(std::min<int64_t>(8, room));
      at::Tensor with = generate(*model, tokens, g);
      g.use_kv_cache = false;
      at::Tensor without = generate(*model, tokens, g);
      add("greedy generate: tokens differing with / without KV cache", (with != without).sum().item<double>(), 0);
    }
  }

  // Padding changes nothing at real positions (rows shortened, padded left and right).
  {
    const int64_t b = tokens.size(0), p = tokens.size(1);
    std::vector<std::vector<int64_t>> rows;
    for (int64_t i = 0; i < b; ++i) {
      const int64_t n = std::max<int64_t>(1, p - 2 * (i % 3));
      rows.push_back(to_vector(tokens[i].slice(0, 0, n)));
    }
    double err = 0;
    for (PaddingSide side : {PaddingSide::Left, PaddingSide::Right}) {
      TokenBatch batch = pad_token_rows(rows, side, default_pad_id(c) < c.d_vocab ? default_pad_id(c) : 0);
      ForwardOptions fo;
      fo.attention_mask = batch.attention_mask;
      at::Tensor padded = model->forward(batch.tokens, fo);
      const int64_t S = batch.tokens.size(1);
      for (int64_t i = 0; i < b; ++i) {
        const int64_t n = static_cast<int64_t>(rows[i].size()), off = side == PaddingSide::Left ? S - n : 0;
        at::Tensor alone = model->forward(tokens[i].slice(0, 0, n).unsqueeze(0));
        err = std::max(err, max_abs(padded[i].slice(0, off, off + n), alone[0]));
      }
    }
    add("padded (left and right) = unpadded logits at real positions", err, tol);
  }

  // Against the reference folder.
  if (expected) {
    add("reference: logits (HF)", max_abs(logits, expected->get("logits")), 1e-4);
    if (expected->contains("loss"))
      add("reference: loss (HF)", std::abs(HookedTransformer::loss(logits, tokens).item<double>() -
                                           expected->get("loss").item<double>()), 1e-5);
    double hs = 0;
    for (int i = 0; i < L; ++i) {
      const std::string k = "hidden_states." + std::to_string(i);
      if (expected->contains(k)) hs = std::max(hs, max_abs(cache.at(act_name("resid_pre", i)), expected->get(k)));
    }
    add("reference: hidden_states 0..L-1 (HF)", hs, 1e-4);
    double att = 0;
    for (int i = 0; i < L; ++i) {
      const std::string k = "attentions." + std::to_string(i);
      if (expected->contains(k)) att = std::max(att, max_abs(cache.at(act_name("pattern", i)), expected->get(k)));
    }
    add("reference: attention patterns (HF)", att, 1e-5);
  }
  for (const char* which : {"unprocessed", "processed"}) {
    if (o.reference_dir.empty()) break;
    const std::string f = join_path(o.reference_dir, std::string("tl_cache_") + which + ".safetensors");
    if (!file_exists(f) || model->processing() != "none") continue;
    auto tl = SafetensorsFile::open(f);
    LoadOptions lo;
    if (std::string(which) == "processed") lo.processing = ProcessingOptions::tl_defaults();
    auto m = load_model(dir, lo);
    auto [tl_logits, tl_cache] = m->run_with_cache(tokens);
    double worst = 0;
    std::string worst_name;
    int64_t compared = 0;
    for (const auto& k : tl->keys()) {
      if (k == "loss") continue;
      at::Tensor mine = k == "logits" ? tl_logits : tl_cache.contains(k) ? tl_cache.at(k) : at::Tensor();
      if (!mine.defined()) {
        add(std::string("reference: TL ") + which + " " + k + " (missing here)", INFINITY, 0);
        continue;
      }
      const double e = max_abs(mine, tl->get(k));
      if (e >= worst) worst = e, worst_name = k;
      ++compared;
    }
    add(std::string("reference: TL ") + which + " cache, " + std::to_string(compared) + " tensors (worst " +
            worst_name + ")",
        worst, 1e-4);
  }
  return r;
}

}  // namespace mechlens
