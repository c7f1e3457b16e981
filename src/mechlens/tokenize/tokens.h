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
// Ragged batches, padded as TransformerLens pads them (right by default).
enum class PaddingSide { Right, Left };
PaddingSide parse_padding_side(const std::string& s, const std::string& where);  // "left" | "right"
struct TokenBatch {
  at::Tensor tokens;          // [batch, max_len] int64, pads filled with the pad id
  at::Tensor attention_mask;  // [batch, max_len] int64, 1 = real token; undefined when no row is padded
  at::Tensor lengths;         // [batch] int64, real tokens per row
};
// Rows of any (non-zero) lengths -> one padded batch.
TokenBatch pad_token_rows(const std::vector<std::vector<int64_t>>& rows, PaddingSide side, int64_t pad_id);
// A JSON file holding either an array of arrays of token ids of any lengths (padded on
// `side` with pad_id), or an object {"input_ids": [[...]], "attention_mask": [[...]]} of
// equal-length rows with the mask given (1 = real, 0 = padding, anywhere). Throws Error
// naming the file and the problem.
TokenBatch read_token_batch(const std::string& path, PaddingSide side, int64_t pad_id);
// The pad id a model uses when none is given: its EOS (as TransformerLens sets GPT-2's
// pad token), else 0.
int64_t default_pad_id(const ModelConfig& cfg);

// Any integer tensor, flattened.
std::vector<int64_t> to_vector(const at::Tensor& t);

}  // namespace mechlens
