// Token input for library users: text to token ids the way TransformerLens does it
// (to_tokens with an optional BOS, to_single_token), token-id files, and tensors of
// ids as plain vectors. The CLI, the explorer and the Python module share these.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/tokenize/tokenizer.h"

namespace mechlens {

// Text -> [1, pos], with BOS first when prepend_bos (the tokenizer's BOS, else the
// model config's). Throws Error if the model has no BOS or the text gives no tokens.
at::Tensor to_tokens(const Tokenizer& tok, const HookedTransformer& m, const std::string& text, bool prepend_bos);
// The id of a text that is exactly one token (mind the leading space: " Mary");
// throws Error naming how many tokens it is otherwise.
int64_t to_single_token(const Tokenizer& tok, const std::string& text);
// A JSON file holding an array of equal-length arrays of token ids -> [batch, pos];
// throws Error naming the file and the problem.
at::Tensor read_tokens_file(const std::string& path);
// Any integer tensor, flattened.
std::vector<int64_t> to_vector(const at::Tensor& t);

}  // namespace mechlens
