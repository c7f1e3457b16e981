// `mechlens scope build`: streams documents through a model once and builds its
// neuron index (neuron_index.h) from reductions inside the MLP hooks, never a full
// activation cache. Resumable: the streaming state is saved to OUT.partial every few
// seconds, and a rerun of the same build continues from there.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/tokenize/tokenizer.h"
#include "mechlens/train/corpus.h"

namespace mechlens {

struct ScopeBuildOptions {
  int64_t top_k = 20;
  int64_t bins = 64;
  int64_t batch = 8;      // documents per forward
  int64_t logit_k = 10;   // tokens per side of each neuron's W_out W_U
  double save_every_s = 10;     // resume-state period in seconds
  int64_t save_every_batches = 0;  // ... or in batches when > 0
  bool progress = true;
};

// The hook each MLP neuron is read at: blocks.L.mlp.hook_post, or hook_mid for SoLU
// (the activation before its LayerNorm). Throws Error for attention-only models.
std::string neuron_hook_name(const ModelConfig& cfg, int layer);
// FNV-1a over the weights' bytes (parameters() in name order), as 16 hex digits.
std::string model_fingerprint(const HookedTransformer& m);

// The string of every token id, as the index stores them: TransformerLens's
// to_str_tokens, or "<id>" without a tokenizer.
std::vector<std::string> vocab_strings(const Tokenizer* tok, int64_t d_vocab);

// Documents of `ctx` tokens from a corpus: each corpus document is encoded and cut into
// consecutive windows of BOS + ctx - 1 tokens (ctx without a BOS token); a shorter tail
// is dropped. At most max_tokens tokens in all (< 0: no limit). [D, ctx] int64.
at::Tensor corpus_windows(const Tokenizer& tok, const Corpus& corpus, int64_t ctx, int64_t max_tokens);

struct ScopeBuildStats {
  double pass_s = 0;           // the streaming pass (forwards + reductions in the hooks)
  double logit_effects_s = 0;  // W_out W_U top and bottom tokens
  double write_s = 0;          // writing the results to SQLite
  int64_t resumed_docs = 0;    // documents done by an earlier, killed build
};

// Builds the index of `docs` [D, ctx] into `out` (via out + ".partial"). `source`
// describes where the documents came from ({"kind": "corpus"|"tokens", "name": ...});
// `vocab` is the string of every token id. Throws Error when `out` exists, when a
// partial file from another build is in the way, or on bad input.
ScopeBuildStats build_neuron_index(HookedTransformer& m, const at::Tensor& docs, const std::vector<std::string>& vocab,
                        const nlohmann::json& source, const std::string& model_dir, const std::string& out,
                        const ScopeBuildOptions& opts = {});

}  // namespace mechlens
