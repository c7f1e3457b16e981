// Text generation: greedy or sampled (temperature, top-k, top-p), with or without a
// key/value cache. With the cache each step runs only the new token; hooks keep
// firing (on the new position) while it generates.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>

#include "mechlens/model/hooked_transformer.h"

namespace mechlens {

struct GenerateOptions {
  int max_new_tokens = 10;
  double temperature = 0.0;  // 0: greedy
  int top_k = 0;             // 0: off
  double top_p = 1.0;        // 1: off
  uint64_t seed = 0;
  bool use_kv_cache = true;
  int64_t stop_token = -1;   // stop a row once it emits this id (-1: never)
  // [batch, pos] for a left-padded batch of prompts (1 = real token), as HF's generate
  // takes them: every step runs masked, with positions counting real tokens only.
  // Right padding is refused (the next token follows each row's last column).
  at::Tensor attention_mask;
};

// tokens [batch, pos] -> [batch, pos + new]. Throws mechlens::Error when the result
// would be longer than n_ctx or the options are out of range.
at::Tensor generate(HookedTransformer& model, const at::Tensor& tokens, const GenerateOptions& opts);

// One sampling step on logits [batch, vocab] (exposed for tests).
at::Tensor sample_next(const at::Tensor& logits, const GenerateOptions& opts, at::Generator& gen);

}  // namespace mechlens
