#include "mechlens/scope/neuron_stats.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "mechlens/core/error.h"

namespace mechlens {

namespace {
constexpr int64_t kNoExponent = -62;  // a row with no counts yet
int64_t log2_exact(int64_t v) {
  int64_t l = 0;
  while ((int64_t{1} << l) < v) ++l;
  return l;
}
}  // namespace

NeuronAccumulator::NeuronAccumulator(int64_t n_neurons, int64_t ctx, NeuronStatsOptions opts)
    : n_(n_neurons), ctx_(ctx), opts_(opts) {
  if (n_ <= 0 || ctx_ <= 0) fail("neuron index", "needs at least one neuron and one position");
  if (opts_.top_k <= 0) fail("neuron index", "top-k must be positive");
  if (opts_.bins < 4 || opts_.bins % 4 != 0 || (opts_.bins & (opts_.bins - 1)) != 0)
    fail("neuron index", "histogram bins must be a power of two >= 4");
  const int64_t k = opts_.top_k;
  auto f64 = at::TensorOptions().dtype(at::kDouble);
  auto i64 = at::TensorOptions().dtype(at::kLong);
  top_act_ = at::full({k, n_}, -std::numeric_limits<float>::infinity(), at::kFloat);
  top_doc_ = at::full({k, n_}, -1, i64);
  top_pos_ = at::full({k, n_}, -1, i64);
  top_acts_ = at::zeros({n_, k, ctx_}, at::kFloat);
  sum_ = at::zeros({n_}, f64);
  max_ = at::full({n_}, -std::numeric_limits<double>::infinity(), f64);
  min_ = at::full({n_}, std::numeric_limits<double>::infinity(), f64);
  positive_ = at::zeros({n_}, i64);
  hist_ = at::zeros({n_, opts_.bins}, i64);
  hist_exp_ = at::full({n_}, kNoExponent, i64);
}

void NeuronAccumulator::merge_histograms(const at::Tensor& need) {
  at::Tensor target = at::maximum(hist_exp_, need);
  at::Tensor empty = hist_.sum(1) == 0;
  at::Tensor diff = (target - hist_exp_).masked_fill(empty, 0);
  const int64_t B = opts_.bins;
  // After log2(B) merges every count sits in the two middle bins, which further
  // merges leave in place: more rounds change nothing.
  const int64_t rounds = std::min(diff.max().item<int64_t>(), log2_exact(B) + 1);
  for (int64_t d = 1; d <= rounds; ++d) {
    at::Tensor rows = (diff >= d).nonzero().squeeze(1);
    if (rows.numel() == 0) break;
    at::Tensor h = hist_.index_select(0, rows);
    at::Tensor merged = at::zeros_like(h);
    // Old bin i lands in new bin B/4 + i/2 when R doubles.
    merged.slice(1, B / 4, 3 * B / 4).copy_(h.view({-1, B / 2, 2}).sum(2));
    hist_.index_copy_(0, rows, merged);
  }
  hist_exp_ = target;
}

void NeuronAccumulator::add(const at::Tensor& acts, int64_t first_doc) {
  if (acts.dim() != 3 || acts.size(1) != ctx_ || acts.size(2) != n_)
    fail("neuron index", "activations must be [docs, " + std::to_string(ctx_) + ", " + std::to_string(n_) + "]");
  at::NoGradGuard no_grad;
  at::Tensor x = acts.to(at::kCPU, at::kFloat).contiguous();  // the loops below read host memory
  const int64_t D = x.size(0), P = ctx_, k = opts_.top_k, B = opts_.bins, n = n_;
  if (D == 0) return;
  at::Tensor flat = x.view({D * P, n});
  if (!at::isfinite(flat).all().item<bool>())
    fail("neuron index", "activations of documents " + std::to_string(first_doc) + "-" + std::to_string(first_doc + D - 1) +
                             " hold NaN or inf (an overflow in a low-precision dtype?)");

  // Pass 1 (ATen): extremes, which fix this batch's histogram ranges.
  max_ = at::maximum(max_, flat.amax(0).to(at::kDouble));
  min_ = at::minimum(min_, flat.amin(0).to(at::kDouble));
  positions_ += D * P;
  // R = 2^e > max |x| (frexp: |x| = m 2^e with m in [0.5, 1)).
  at::Tensor maxabs = at::maximum(max_.abs(), min_.abs());
  at::Tensor need = std::get<1>(at::frexp(maxabs)).to(at::kLong).clamp_min(kNoExponent + 1);
  merge_histograms(need);
  // bin = floor(x B / (2R)) + B/2: x times a power of two, exact in float32 here
  // (|x B / 2R| < B/2, far from overflow and from the subnormals).
  at::Tensor scale_t = at::pow(2.0, (log2_exact(B / 2) - hist_exp_).to(at::kDouble)).to(at::kFloat).contiguous();

  // Pass 2 (one loop over the activations, neurons split across threads): sums,
  // positive counts, histogram counts, and each document's max with its first position.
  at::Tensor dmax = at::full({D, n}, -std::numeric_limits<float>::infinity(), at::kFloat);
  at::Tensor dpos = at::zeros({D, n}, at::kLong);
  const float* xp = x.data_ptr<float>();
  const float* scale = scale_t.data_ptr<float>();
  double* sum = sum_.data_ptr<double>();
  int64_t* positive = positive_.data_ptr<int64_t>();
  int64_t* hist = hist_.data_ptr<int64_t>();
  float* dm = dmax.data_ptr<float>();
  int64_t* dp = dpos.data_ptr<int64_t>();
  const int64_t half = B / 2;
  at::parallel_for(0, n, 256, [&](int64_t j0, int64_t j1) {
    for (int64_t d = 0; d < D; ++d) {
      float* m = dm + d * n;
      int64_t* mp = dp + d * n;
      for (int64_t p = 0; p < P; ++p) {
        const float* row = xp + (d * P + p) * n;
        for (int64_t j = j0; j < j1; ++j) {
          const float v = row[j];
          sum[j] += v;
          positive[j] += v > 0;
          int64_t b = static_cast<int64_t>(std::floor(v * scale[j])) + half;
          b = b < 0 ? 0 : (b >= B ? B - 1 : b);
          ++hist[j * B + b];
          if (v > m[j]) m[j] = v, mp[j] = p;
        }
      }
    }
  });

  // Top-k documents. Kept entries come first, so a stable descending sort keeps the
  // earlier document at a tie.
  at::Tensor docs = (at::arange(D, at::kLong) + first_doc).unsqueeze(1).expand({D, n});
  at::Tensor cand_act = at::cat({top_act_, dmax}, 0);  // [k + D, n]
  at::Tensor sel = std::get<1>(at::sort(cand_act, /*stable=*/true, /*dim=*/0, /*descending=*/true)).slice(0, 0, k).contiguous();
  top_act_ = cand_act.gather(0, sel);
  top_doc_ = at::cat({top_doc_, docs}, 0).gather(0, sel);
  top_pos_ = at::cat({top_pos_, dpos}, 0).gather(0, sel);
  // The kept documents' activations [n, k, ctx], updated in place: an entry that
  // stays moves only to a later rank (sel[r] <= r), so filling ranks from the last
  // reads every old entry before it is overwritten. Unchanged ranks are skipped.
  const int64_t* sp = sel.data_ptr<int64_t>();
  float* ta = top_acts_.data_ptr<float>();
  at::parallel_for(0, n, 64, [&](int64_t j0, int64_t j1) {
    for (int64_t j = j0; j < j1; ++j) {
      float* mine = ta + j * k * P;
      for (int64_t r = k - 1; r >= 0; --r) {
        const int64_t src = sp[r * n + j];
        if (src == r) continue;
        float* dst = mine + r * P;
        if (src < k) {
          std::copy(mine + src * P, mine + (src + 1) * P, dst);
        } else {
          const float* col = xp + (src - k) * P * n + j;
          for (int64_t p = 0; p < P; ++p) dst[p] = col[p * n];
        }
      }
    }
  });
}

at::Tensor NeuronAccumulator::mean() const {
  return positions_ ? sum_ / static_cast<double>(positions_) : at::full({n_}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
}

at::Tensor NeuronAccumulator::frac_positive() const {
  return positions_ ? positive_.to(at::kDouble) / static_cast<double>(positions_)
                    : at::full({n_}, std::numeric_limits<double>::quiet_NaN(), at::kDouble);
}

std::map<std::string, at::Tensor> NeuronAccumulator::state() const {
  return {{"top_act", top_act_}, {"top_doc", top_doc_}, {"top_pos", top_pos_}, {"top_acts", top_acts_},
          {"sum", sum_},         {"max", max_},         {"min", min_},         {"positive", positive_},
          {"hist", hist_},       {"hist_exp", hist_exp_}, {"positions", at::full({1}, positions_, at::kLong)}};
}

void NeuronAccumulator::load_state(const std::map<std::string, at::Tensor>& s, const std::string& where) {
  auto mine = state();
  for (auto& [name, t] : mine) {
    auto it = s.find(name);
    if (it == s.end()) fail(where, "resume state lacks " + name);
    if (it->second.sizes() != t.sizes() || it->second.scalar_type() != t.scalar_type())
      fail(where, "resume state " + name + " has the wrong shape or dtype");
  }
  top_act_ = s.at("top_act").clone(), top_doc_ = s.at("top_doc").clone(), top_pos_ = s.at("top_pos").clone();
  top_acts_ = s.at("top_acts").clone(), sum_ = s.at("sum").clone(), max_ = s.at("max").clone();
  min_ = s.at("min").clone(), positive_ = s.at("positive").clone(), hist_ = s.at("hist").clone();
  hist_exp_ = s.at("hist_exp").clone(), positions_ = s.at("positions")[0].item<int64_t>();
}

}  // namespace mechlens
