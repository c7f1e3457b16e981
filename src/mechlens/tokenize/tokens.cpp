#include "mechlens/tokenize/tokens.h"

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

namespace mechlens {

at::Tensor read_tokens_file(const std::string& path) {
  json j = read_json_file(path);
  if (!j.is_array() || j.empty()) fail(path, "tokens must be a non-empty JSON array of arrays of token ids");
  if (!j[0].is_array()) fail(path, "tokens must be an array of arrays (one array per sequence)");
  const size_t len = j[0].size();
  if (len == 0) fail(path, "sequences must not be empty");
  std::vector<int64_t> flat;
  for (size_t r = 0; r < j.size(); ++r) {
    if (!j[r].is_array()) fail(path, "row " + std::to_string(r) + " is not an array");
    if (j[r].size() != len)
      fail(path, "row " + std::to_string(r) + " has " + std::to_string(j[r].size()) + " tokens, row 0 has " +
                     std::to_string(len) + " (rows must have equal length)");
    for (const auto& v : j[r]) {
      if (!v.is_number_integer()) fail(path, "row " + std::to_string(r) + " holds a non-integer token id");
      flat.push_back(v.get<int64_t>());
    }
  }
  return at::tensor(flat, at::kLong).view({static_cast<int64_t>(j.size()), static_cast<int64_t>(len)});
}

at::Tensor to_tokens(const Tokenizer& tok, const HookedTransformer& m, const std::string& text, bool prepend_bos) {
  std::vector<int64_t> ids = tok.encode(text);
  if (prepend_bos) {
    int64_t bos = tok.bos_id >= 0 ? tok.bos_id : m.cfg().bos_token_id;
    if (bos < 0) throw Error("the model has no BOS token (to_tokens with prepend_bos = false)");
    ids.insert(ids.begin(), bos);
  }
  if (ids.empty()) throw Error("the prompt is empty");
  return at::tensor(ids, at::kLong).view({1, -1});
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU).to(at::kLong).contiguous().view(-1);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

int64_t to_single_token(const Tokenizer& tok, const std::string& text) {
  std::vector<int64_t> ids = tok.encode(text);
  if (ids.size() != 1)
    throw Error("\"" + text + "\" is " + std::to_string(ids.size()) + " tokens, not one (mind the leading space)");
  return ids[0];
}

}  // namespace mechlens
