#include "mechlens/analysis/logit_lens.h"

#include "mechlens/core/error.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

namespace {
ComponentStack resid_stack(HookedTransformer& m, const at::Tensor& tokens, bool incl_mid, PosSlice pos) {
  at::NoGradGuard no_grad;
  std::vector<std::string> names;
  for (const char* site : {"resid_pre", "resid_mid", "resid_post"})
    for (auto& n : act_names(site, m.cfg().n_layers)) names.push_back(std::move(n));
  auto [logits, cache] = m.run_with_cache(tokens, names_in(std::move(names)));
  ResidualAnalysis ra(m, cache);
  return ra.accumulated_resid(-1, incl_mid, false, pos);
}
}  // namespace

LogitLens logit_lens(HookedTransformer& m, const at::Tensor& tokens, bool incl_mid, PosSlice pos) {
  ComponentStack acc = resid_stack(m, tokens, incl_mid, pos);
  at::NoGradGuard no_grad;
  return {acc.labels, m.unembed(acc.stack).to(at::kFloat).log_softmax(-1)};
}

std::vector<LensReading> lens_readings(const LogitLens& lens, int64_t k, int64_t answer, int64_t row) {
  const at::Tensor& lp = lens.log_probs;
  if (lp.dim() != 3) throw Error("lens_readings needs the lens at one position ([component, batch, vocab])");
  if (row < 0 || row >= lp.size(1)) throw Error("batch row " + std::to_string(row) + " is out of range");
  if (answer >= lp.size(2)) throw Error("answer token id " + std::to_string(answer) + " is out of range");
  k = std::min<int64_t>(k, lp.size(2));
  std::vector<LensReading> out;
  for (int64_t c = 0; c < lp.size(0); ++c) {
    at::Tensor r = lp[c][row];
    auto [v, idx] = r.topk(k);
    LensReading reading;
    reading.label = c < static_cast<int64_t>(lens.labels.size()) ? lens.labels[c] : std::to_string(c);
    for (int64_t i = 0; i < k; ++i)
      reading.top_ids.push_back(idx[i].item<int64_t>()), reading.top_log_probs.push_back(v[i].item<double>());
    if (answer >= 0) {
      reading.answer_log_prob = r[answer].item<double>();
      reading.answer_rank = (r > reading.answer_log_prob).sum().item<int64_t>();
    }
    out.push_back(std::move(reading));
  }
  return out;
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
