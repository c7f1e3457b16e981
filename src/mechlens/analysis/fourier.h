// The Fourier analysis of modular addition (Nanda et al. 2023, "Progress measures for
// grokking via mechanistic interpretability"): the basis, key frequencies by the
// authors' method, and the restricted / excluded decomposition of the logits.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <vector>

namespace mechlens {

// [p, p] float64, rows: the constant 1/sqrt(p), then cos(2 pi k x / p), sin(2 pi k x / p)
// for k = 1 .. p/2, each of unit norm (orthonormal for odd p).
at::Tensor fourier_basis(int64_t p);

struct KeyFrequencies {
  std::vector<int64_t> neuron_freq;  // per neuron: its best frequency (1 .. p/2 - 1), -1 if dead
  std::vector<double> neuron_frac;   // the fraction of its variance that frequency explains (NaN if dead)
  std::map<int64_t, int64_t> counts; // frequency -> neurons (dead ones under -1)
  int64_t dead = 0;
  // Frequencies used by at least min_neurons neurons, most used first.
  std::vector<int64_t> key(int64_t min_neurons) const;
};

// The authors' calculate_key_freqs: activations [p*p, neurons] over every input (a, b)
// at row a * p + b, centred per neuron, 2D Fourier transform, the fraction of each
// neuron's squared norm in the {0, 2k-1, 2k} x {0, 2k-1, 2k} block for k = 1 .. p/2 - 1.
KeyFrequencies key_frequencies(const at::Tensor& acts, int64_t p);

// Directions over the p*p inputs: cos(w_k (a + b)) and sin(w_k (a + b)) for each given
// frequency, unit norm; [p*p, 2 * freqs.size()] float64, orthonormal.
at::Tensor sum_directions(int64_t p, const std::vector<int64_t>& freqs);

// Splits logits [p*p, c] over all inputs into the part along the key frequencies'
// (a + b) directions and the rest: key + rest == logits exactly (up to rounding).
struct LogitSplit {
  at::Tensor key, rest;  // both [p*p, c] float64
};
LogitSplit split_logits(const at::Tensor& logits, int64_t p, const std::vector<int64_t>& freqs);

}  // namespace mechlens
