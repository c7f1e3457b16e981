// The initialisation of Nanda et al.'s toy transformers (grokking, 5-digit addition, the
// induction models): after torch.manual_seed(seed), every matrix is randn / sqrt(fan),
// created in the authors' module order (embed [d, V], pos_embed [n_ctx, d], then per
// layer W_K, W_Q, W_V [h, d_head, d], W_O [d, h d_head], W_in [d_mlp, d], W_out [d, d_mlp],
// then unembed [d, V_out] / sqrt(V_out)); biases zero. Returned in TransformerLens layout.
#pragma once
#include <cstdint>

#include "mechlens/model/config.h"
#include "mechlens/model/weights.h"

namespace mechlens {

StateDict authors_init(const ModelConfig& cfg, uint64_t seed);

// Names of the biases the authors' models lack (attention and unembedding): frozen at 0.
std::vector<std::string> authors_frozen_biases(const ModelConfig& cfg);

}  // namespace mechlens
