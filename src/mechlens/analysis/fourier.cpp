#include "mechlens/analysis/fourier.h"

#include <algorithm>
#include <cmath>

#include "mechlens/core/error.h"

namespace mechlens {

at::Tensor fourier_basis(int64_t p) {
  if (p < 2) throw Error("the Fourier basis needs p >= 2");
  at::Tensor x = at::arange(p, at::kDouble);
  std::vector<at::Tensor> rows{at::ones({p}, at::kDouble) / std::sqrt(static_cast<double>(p))};
  for (int64_t k = 1; k <= p / 2; ++k) {
    at::Tensor c = at::cos(2 * M_PI * k * x / p), s = at::sin(2 * M_PI * k * x / p);
    rows.push_back(c / c.norm());
    if (static_cast<int64_t>(rows.size()) < p) rows.push_back(s / s.norm());  // even p: sin(pi x) is 0
  }
  return at::stack(rows, 0);
}

std::vector<int64_t> KeyFrequencies::key(int64_t min_neurons) const {
  std::vector<std::pair<int64_t, int64_t>> v;
  for (auto [f, n] : counts)
    if (f > 0 && n >= min_neurons) v.push_back({n, f});
  std::sort(v.begin(), v.end(), [](auto a, auto b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  std::vector<int64_t> out;
  for (auto [n, f] : v) out.push_back(f);
  return out;
}

KeyFrequencies key_frequencies(const at::Tensor& acts_in, int64_t p) {
  if (acts_in.dim() != 2 || acts_in.size(0) != p * p) throw Error("key_frequencies needs activations [p*p, neurons]");
  const int64_t n = acts_in.size(1);
  at::Tensor acts = acts_in.to(at::kDouble);
  acts = acts - acts.mean(0, true);
  at::Tensor B = fourier_basis(p);
  at::Tensor F2 = at::einsum("xyz,fx,gy->fgz", {acts.view({p, p, n}), B, B});  // [p, p, n]
  at::Tensor denom = F2.pow(2).sum(at::IntArrayRef{0, 1});                                 // [n]
  std::vector<at::Tensor> fracs;
  for (int64_t k = 1; k < p / 2; ++k) {
    at::Tensor idx = at::tensor(std::vector<int64_t>{0, 2 * k - 1, 2 * k}, at::kLong);
    fracs.push_back(F2.index_select(0, idx).index_select(1, idx).pow(2).sum(at::IntArrayRef{0, 1}) / denom);
  }
  KeyFrequencies out;
  if (fracs.empty()) throw Error("key_frequencies needs p >= 5");
  at::Tensor fr = at::stack(fracs, 0);  // [freqs, n]
  auto [best, arg] = fr.max(0);
  auto d = denom.accessor<double, 1>();
  auto b = best.accessor<double, 1>();
  auto a = arg.accessor<int64_t, 1>();
  for (int64_t i = 0; i < n; ++i) {
    const bool dead = !(d[i] > 0);
    out.neuron_freq.push_back(dead ? -1 : a[i] + 1);
    out.neuron_frac.push_back(dead ? NAN : b[i]);
    out.counts[out.neuron_freq.back()]++;
    out.dead += dead;
  }
  return out;
}

at::Tensor sum_directions(int64_t p, const std::vector<int64_t>& freqs) {
  at::Tensor a = at::arange(p, at::kDouble).view({p, 1}), b = at::arange(p, at::kDouble).view({1, p});
  at::Tensor s = (a + b).reshape({-1});
  std::vector<at::Tensor> cols;
  for (int64_t k : freqs) {
    if (k < 1 || 2 * k >= p) throw Error("frequency " + std::to_string(k) + " is out of range for p = " + std::to_string(p));
    at::Tensor c = at::cos(2 * M_PI * k * s / p), sn = at::sin(2 * M_PI * k * s / p);
    cols.push_back(c / c.norm());
    cols.push_back(sn / sn.norm());
  }
  if (cols.empty()) return at::zeros({p * p, 0}, at::kDouble);
  return at::stack(cols, 1);
}

LogitSplit split_logits(const at::Tensor& logits, int64_t p, const std::vector<int64_t>& freqs) {
  if (logits.dim() != 2 || logits.size(0) != p * p) throw Error("split_logits needs logits [p*p, c]");
  at::Tensor L = logits.to(at::kDouble);
  at::Tensor D = sum_directions(p, freqs);  // [p*p, 2k]
  at::Tensor key = at::matmul(D, at::matmul(D.t(), L));
  return {key, L - key};
}

}  // namespace mechlens
