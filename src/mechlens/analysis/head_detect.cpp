#include "mechlens/analysis/head_detect.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

namespace {
at::Tensor flat_tokens(const at::Tensor& t) {
  if (t.dim() == 2 && t.size(0) == 1) return t[0];
  if (t.dim() != 1) throw Error("head detection takes one sequence of tokens");
  return t;
}
}  // namespace

at::Tensor previous_token_pattern(const at::Tensor& tokens) {
  const int64_t n = flat_tokens(tokens).size(0);
  at::Tensor p = at::zeros({n, n});
  if (n > 1) p.slice(0, 1).slice(1, 0, n - 1).copy_(at::eye(n - 1));
  return at::tril(p);
}

at::Tensor duplicate_token_pattern(const at::Tensor& tokens) {
  at::Tensor t = flat_tokens(tokens);
  at::Tensor eq = (t.unsqueeze(0) == t.unsqueeze(1)).to(at::kFloat);
  eq.fill_diagonal_(0);  // a token always equals itself; ignore that
  return at::tril(eq);
}

at::Tensor induction_pattern(const at::Tensor& tokens) {
  at::Tensor dup = duplicate_token_pattern(tokens);
  // Shift right by one: attend to the token AFTER the earlier duplicate.
  at::Tensor shifted = at::zeros_like(dup);
  if (dup.size(1) > 1) shifted.slice(1, 1).copy_(dup.slice(1, 0, dup.size(1) - 1));
  return at::tril(shifted);
}

at::Tensor detection_pattern(const std::string& name, const at::Tensor& tokens) {
  if (name == "previous_token_head" || name == "previous") return previous_token_pattern(tokens);
  if (name == "duplicate_token_head" || name == "duplicate") return duplicate_token_pattern(tokens);
  if (name == "induction_head" || name == "induction") return induction_pattern(tokens);
  throw Error("unknown detection pattern \"" + name + "\" (previous, duplicate, induction)");
}

at::Tensor detect_head(HookedTransformer& m, const at::Tensor& tokens_in, const at::Tensor& pattern,
                       const DetectOptions& o) {
  at::Tensor tokens = flat_tokens(tokens_in).unsqueeze(0);
  const int64_t n = tokens.size(1);
  if (pattern.dim() != 2 || pattern.size(0) != n || pattern.size(1) != n)
    throw Error("detection pattern must be [pos, pos] for the " + std::to_string(n) + " tokens");
  if (o.error_measure != "mul" && o.error_measure != "abs") throw Error("error_measure must be mul or abs");
  at::NoGradGuard no_grad;
  const auto& c = m.cfg();
  const std::vector<std::string> names = act_names("pattern", c.n_layers);
  auto [logits, cache] = m.run_with_cache(tokens, names_in(names));
  at::Tensor out = at::empty({c.n_layers, c.n_heads});
  at::Tensor det = pattern.to(at::kFloat);
  for (int l = 0; l < c.n_layers; ++l) {
    at::Tensor layer = cache[names[l]][0].to(at::kFloat);
    for (int h = 0; h < c.n_heads; ++h) {
      at::Tensor a = layer[h].clone();
      double score;
      if (o.error_measure == "mul") {
        if (o.exclude_bos) a.select(1, 0).zero_();
        if (o.exclude_current_token) a.fill_diagonal_(0);
        score = ((a * det).sum() / a.sum()).item<double>();
      } else {
        at::Tensor diff = (a - det).abs();
        if (o.exclude_bos) diff.select(1, 0).zero_();
        if (o.exclude_current_token) diff.fill_diagonal_(0);
        score = 1.0 - std::round(diff.mean().item<double>() * n * 1000.0) / 1000.0;
      }
      out[l][h] = score;
    }
  }
  return out;
}

at::Tensor repeated_random_tokens(const HookedTransformer& m, int64_t half, uint64_t seed, int64_t bos) {
  if (half < 1 || 1 + 2 * half > m.cfg().n_ctx) throw Error("repeated sequence does not fit in n_ctx");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::Tensor r = at::randint(m.cfg().d_vocab, {half}, gen, at::kLong);
  at::Tensor b = at::full({1}, bos < 0 ? 0 : bos, at::kLong);
  return at::cat({b, r, r}).unsqueeze(0);
}

at::Tensor induction_scores(HookedTransformer& m, const at::Tensor& repeated) {
  const int64_t n = repeated.size(1), half = (n - 1) / 2;
  if (repeated.dim() != 2 || n != 1 + 2 * half) throw Error("expected [1, 1 + 2 * half] repeated tokens");
  at::NoGradGuard no_grad;
  const auto& c = m.cfg();
  const std::vector<std::string> names = act_names("pattern", c.n_layers);
  auto [logits, cache] = m.run_with_cache(repeated, names_in(names));
  at::Tensor out = at::empty({c.n_layers, c.n_heads});
  for (int l = 0; l < c.n_layers; ++l) {
    at::Tensor p = cache[names[l]].to(at::kFloat).mean(0);  // [H, q, k]
    // The second copy of token i sits at q = 1 + half + i; the token after its first
    // copy at k = 2 + i. So the stripe is the diagonal q - k = half - 1, for k in [2, 2 + half).
    at::Tensor stripe = p.diagonal(-(half - 1), -2, -1);  // entries (k + half - 1, k)
    out[l] = stripe.slice(-1, 2, 2 + half).mean(-1);
  }
  return out;
}

}  // namespace mechlens
