// Streaming per-neuron statistics for the neuron index (Neuroscope): the top-k
// max-activating documents, an exact histogram, mean, max, min and the fraction of
// positive positions, all updated batch by batch from activations [docs, ctx, n] so
// memory is O(n x k x ctx) whatever the corpus size.
//
// Top-k is over documents: a document's activation is its maximum over positions
// (the first position holding it is its `pos`), as Neuroscope ranks texts. Ties keep
// the earlier document, so the result equals a stable descending sort of all documents.
//
// The histogram has `bins` equal bins over [-R, R) with R = 2^e the smallest power of
// two above max |x| seen so far; when a larger value arrives, R doubles and pairs of
// bins merge, so the counts stay exact for the final edges (dyadic, exact in floats).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <string>

namespace mechlens {

struct NeuronStatsOptions {
  int64_t top_k = 20;
  int64_t bins = 64;  // a multiple of 4
};

class NeuronAccumulator {
 public:
  NeuronAccumulator(int64_t n_neurons, int64_t ctx, NeuronStatsOptions opts = {});
  // acts [docs, ctx, n] (any float dtype); documents first_doc, first_doc + 1, ...
  void add(const at::Tensor& acts, int64_t first_doc);

  int64_t n_neurons() const { return n_; }
  int64_t ctx() const { return ctx_; }
  const NeuronStatsOptions& options() const { return opts_; }
  int64_t positions() const { return positions_; }

  // Results. top_* are [k, n] (doc -1 and act -inf where fewer than k documents were
  // seen), top_acts [k, ctx, n] the whole document's activations.
  const at::Tensor& top_act() const { return top_act_; }
  const at::Tensor& top_doc() const { return top_doc_; }
  const at::Tensor& top_pos() const { return top_pos_; }
  at::Tensor top_acts() const { return top_acts_.permute({1, 2, 0}); }
  at::Tensor mean() const;                      // [n] float64
  const at::Tensor& max() const { return max_; }  // [n] float64
  const at::Tensor& min() const { return min_; }
  at::Tensor frac_positive() const;             // [n] float64
  const at::Tensor& hist_counts() const { return hist_; }  // [n, bins] int64
  // Per neuron the exponent e of R = 2^e: the edges are -R + i * 2R / bins.
  const at::Tensor& hist_exponent() const { return hist_exp_; }  // [n] int64

  // Everything needed to resume, as named tensors (and back).
  std::map<std::string, at::Tensor> state() const;
  void load_state(const std::map<std::string, at::Tensor>& s, const std::string& where);

 private:
  void merge_histograms(const at::Tensor& new_exp);
  int64_t n_, ctx_;
  NeuronStatsOptions opts_;
  int64_t positions_ = 0;
  at::Tensor top_act_, top_doc_, top_pos_;
  at::Tensor top_acts_;  // [n, k, ctx]: one neuron's kept documents together
  at::Tensor sum_, max_, min_, positive_, hist_, hist_exp_;
};

}  // namespace mechlens
