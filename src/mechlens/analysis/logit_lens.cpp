#include "mechlens/analysis/logit_lens.h"

namespace mechlens {

namespace {
ComponentStack resid_stack(HookedTransformer& m, const at::Tensor& tokens, bool incl_mid, PosSlice pos) {
  at::NoGradGuard no_grad;
  auto [logits, cache] = m.run_with_cache(tokens, names_matching("hook_resid_(pre|mid|post)$"));
  ResidualAnalysis ra(m, cache);
  return ra.accumulated_resid(-1, incl_mid, false, pos);
}
}  // namespace

LogitLens logit_lens(HookedTransformer& m, const at::Tensor& tokens, bool incl_mid, PosSlice pos) {
  ComponentStack acc = resid_stack(m, tokens, incl_mid, pos);
  at::NoGradGuard no_grad;
  return {acc.labels, m.unembed(acc.stack).to(at::kFloat).log_softmax(-1)};
}

LogitLensTop logit_lens_top(HookedTransformer& m, const at::Tensor& tokens, int64_t k, bool incl_mid) {
  ComponentStack acc = resid_stack(m, tokens, incl_mid, {});
  at::NoGradGuard no_grad;
  k = std::min<int64_t>(k, m.cfg().d_vocab_out > 0 ? m.cfg().d_vocab_out : m.cfg().d_vocab);
  std::vector<at::Tensor> ids, lps;
  for (int64_t c = 0; c < acc.stack.size(0); ++c) {
    at::Tensor lp = m.unembed(acc.stack[c]).to(at::kFloat).log_softmax(-1);  // [batch, pos, vocab]
    auto [v, i] = lp.topk(k, -1);
    ids.push_back(i), lps.push_back(v);
  }
  return {acc.labels, at::stack(ids), at::stack(lps)};
}

}  // namespace mechlens
