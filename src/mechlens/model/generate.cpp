#include "mechlens/model/generate.h"

#include <ATen/CPUGeneratorImpl.h>

#include "mechlens/core/error.h"

namespace mechlens {

at::Tensor sample_next(const at::Tensor& logits_in, const GenerateOptions& o, at::Generator& gen) {
  at::Tensor logits = logits_in.to(at::kFloat);
  if (o.temperature <= 0) return logits.argmax(-1);
  logits = logits / o.temperature;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  if (o.top_k > 0 && o.top_k < logits.size(-1)) {
    at::Tensor kth = std::get<0>(logits.topk(o.top_k, -1)).select(-1, o.top_k - 1).unsqueeze(-1);
    logits = logits.masked_fill(logits < kth, neg_inf);
  }
  if (o.top_p < 1.0) {
    auto [sorted, idx] = logits.sort(-1, true);
    at::Tensor cum = sorted.softmax(-1).cumsum(-1);
    at::Tensor remove = cum > o.top_p;
    // Keep the first token past the threshold (shift right by one).
    remove = at::cat({at::zeros_like(remove.slice(-1, 0, 1)), remove.slice(-1, 0, -1)}, -1);
    logits = logits.scatter(-1, idx, sorted.masked_fill(remove, neg_inf));
  }
  return at::multinomial(logits.softmax(-1), 1, false, gen).squeeze(-1);
}

at::Tensor generate(HookedTransformer& model, const at::Tensor& tokens, const GenerateOptions& o) {
  if (o.max_new_tokens < 0) throw Error("max_new_tokens must be >= 0");
  if (o.top_k < 0) throw Error("top_k must be >= 0");
  if (!(o.top_p > 0.0 && o.top_p <= 1.0)) throw Error("top_p must be in (0, 1]");
  if (o.temperature < 0) throw Error("temperature must be >= 0");
  model.check_tokens(tokens);
  if (tokens.size(1) + o.max_new_tokens > model.cfg().n_ctx)
    throw Error("prompt (" + std::to_string(tokens.size(1)) + ") + max new tokens (" + std::to_string(o.max_new_tokens) +
                ") is longer than n_ctx = " + std::to_string(model.cfg().n_ctx));
  at::NoGradGuard no_grad;
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
  at::Tensor out = tokens;
  at::Tensor finished = at::zeros({tokens.size(0)}, at::kBool);
  KVCache cache;
  ForwardOptions fo;
  if (o.use_kv_cache) fo.kv_cache = &cache;
  at::Tensor mask;
  if (o.attention_mask.defined()) {
    if (o.attention_mask.sizes() != tokens.sizes()) throw Error("attention_mask must have the prompts' shape");
    mask = o.attention_mask.ne(0).to(at::kLong).to(tokens.device());
    if (!mask.select(1, mask.size(1) - 1).all().item<bool>())
      throw Error("generation continues each row after its last column: pad prompts on the left");
  }
  for (int step = 0; step < o.max_new_tokens; ++step) {
    // With the cache, the first step runs the prompt and later steps only the new token.
    at::Tensor input = (o.use_kv_cache && step > 0) ? out.slice(1, out.size(1) - 1) : out;
    if (mask.defined()) fo.attention_mask = mask;
    at::Tensor logits = model.forward(input, fo);
    at::Tensor next = sample_next(logits.select(1, logits.size(1) - 1).to(at::kCPU), o, gen);
    if (o.stop_token >= 0) {
      next = at::where(finished, at::full_like(next, o.stop_token), next);
      finished = finished | (next == o.stop_token);
    }
    out = at::cat({out, next.unsqueeze(1).to(out.device())}, 1);
    if (mask.defined()) mask = at::cat({mask, at::ones({mask.size(0), 1}, mask.options())}, 1);
    if (o.stop_token >= 0 && finished.all().item<bool>()) break;
  }
  return out;
}

}  // namespace mechlens
