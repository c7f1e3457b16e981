// Model weights under TransformerLens's parameter names and shapes
// (embed.W_E [d_vocab, d_model], blocks.L.attn.W_Q [n_heads, d_model, d_head], ...).
// A StateDict is what converters produce, what weight processing rewrites and what
// mechlens checkpoints store; the model keeps typed references into it.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "mechlens/model/config.h"

namespace mechlens {

using StateDict = std::map<std::string, at::Tensor>;

// The names and shapes a config implies, in a stable order. Biases the family lacks
// are still present (as zeros), as in TransformerLens.
std::vector<std::pair<std::string, std::vector<int64_t>>> expected_parameters(const ModelConfig& cfg);

// Throws mechlens::Error (naming `where`) unless `sd` has exactly the expected names and shapes.
void check_state_dict(const StateDict& sd, const ModelConfig& cfg, const std::string& where);

// Fills every expected parameter that is absent with zeros (biases a family lacks)
// or ones (norm weights), so converters only set what the checkpoint has.
void fill_missing_defaults(StateDict& sd, const ModelConfig& cfg);

// Random weights for benchmarks and toy models: N(0, 1/fan_in) matrices, N(0, 0.5^2)
// embeddings, unit norm weights, zero biases.
StateDict random_state_dict(const ModelConfig& cfg, uint64_t seed);

}  // namespace mechlens
