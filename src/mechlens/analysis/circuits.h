// Circuits read from the weights (Elhage et al. 2021): per-head QK and OV circuits,
// full circuits through the embedding and unembedding, composition scores between
// heads, top tokens of singular vectors and each neuron's direct logit effect.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "mechlens/core/factored_matrix.h"
#include "mechlens/model/hooked_transformer.h"

namespace mechlens {

// [n_layers, n_heads, d_model, d_model] as factors. Keys and values of grouped-query
// models are repeated to one per query head.
FactoredMatrix qk_circuit(const HookedTransformer& m);  // W_Q @ W_K^T
FactoredMatrix ov_circuit(const HookedTransformer& m);  // W_V @ W_O
// Through the vocabulary: W_E W_Q W_K^T W_E^T and W_E W_V W_O W_U, [L, H, vocab, vocab].
FactoredMatrix full_qk_circuit(const HookedTransformer& m);
FactoredMatrix full_ov_circuit(const HookedTransformer& m);

// TL's all_composition_scores: [L, H, L, H], zero unless layer_left < layer_right.
// mode "Q": OV_left with QK_right; "K": OV_left with QK_right^T; "V": OV_left with OV_right.
at::Tensor all_composition_scores(const HookedTransformer& m, const std::string& mode);

// The n strongest head pairs of composition scores [L, H, L, H], strongest first.
struct CompositionPair {
  int layer_left;
  int64_t head_left;
  int layer_right;
  int64_t head_right;
  double score;
};
std::vector<CompositionPair> strongest_compositions(const at::Tensor& scores, int64_t n);

struct TokenScore {
  int64_t id;
  double score;
};
// The n largest entries of a vector of token scores.
std::vector<TokenScore> top_tokens(const at::Tensor& scores, int64_t n, bool largest = true);

// The tokens that load most on the k-th singular vector of a vocabulary x vocabulary
// circuit (e.g. full_ov_circuit(m)[l][h]): `inputs` from U[:, k] (rows: source
// tokens), `outputs` from V[:, k] (columns: predicted tokens). Signs are aligned so the
// outputs' largest entry is positive.
struct SingularDirectionTokens {
  double singular_value;
  std::vector<TokenScore> inputs, outputs;
};
SingularDirectionTokens singular_vector_tokens(const FactoredMatrix& circuit, int64_t k, int64_t n);

// Direct logit effect of each neuron of a layer: W_out[layer] @ W_U, [d_mlp, vocab].
at::Tensor neuron_logit_effects(const HookedTransformer& m, int layer);

// Olsson et al. 2022's copying score per head: of the full OV circuit's eigenvalues,
// sum(Re lambda) / sum(|lambda|) ([L, H], 1 = pure copying).
at::Tensor copying_scores(const HookedTransformer& m);
// The same score of any square circuit(s) [..., n, n]: one per leading index.
at::Tensor copying_score(const FactoredMatrix& circuit);
// The diagonal of a square circuit [..., n, n] without forming it: for a full OV circuit,
// how much each token raises its own logit.
at::Tensor circuit_diagonal(const FactoredMatrix& circuit);

// One head's circuits: what `mechlens circuits --head L.H` reports.
struct HeadCircuits {
  at::Tensor ov_singular_values, qk_singular_values;  // of W_V W_O and W_Q W_K^T
  double ov_norm = 0, qk_norm = 0;                    // their Frobenius norms
  double copying_score = 0;                           // of the full OV circuit
  // The tokens the full OV circuit copies most (largest diagonal entries of W_E W_V W_O W_U).
  std::vector<TokenScore> top_self_copied;
  // The first min(n_directions, d_head) singular directions of the full OV circuit.
  std::vector<SingularDirectionTokens> full_ov_directions;
};
// top_n tokens per list. Throws Error for a head out of range.
HeadCircuits head_circuits(const HookedTransformer& m, int layer, int64_t head, int64_t top_n,
                           int64_t n_directions = 3);

}  // namespace mechlens
