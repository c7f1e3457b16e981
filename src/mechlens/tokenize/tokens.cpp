#include "mechlens/tokenize/tokens.h"

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

namespace mechlens {

namespace {
std::vector<std::vector<int64_t>> json_rows(const json& j, const std::string& path, const char* what) {
  if (!j.is_array() || j.empty()) fail(path, std::string(what) + " must be a non-empty JSON array of arrays of token ids");
  std::vector<std::vector<int64_t>> rows;
  for (size_t r = 0; r < j.size(); ++r) {
    if (!j[r].is_array()) fail(path, std::string(what) + " row " + std::to_string(r) + " is not an array");
    if (j[r].empty()) fail(path, std::string(what) + " row " + std::to_string(r) + " is empty");
    std::vector<int64_t> row;
    for (const auto& v : j[r]) {
      if (!v.is_number_integer()) fail(path, std::string(what) + " row " + std::to_string(r) + " holds a non-integer");
      row.push_back(v.get<int64_t>());
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

at::Tensor stack_rows(const std::vector<std::vector<int64_t>>& rows) {
  std::vector<int64_t> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return at::tensor(flat, at::kLong).view({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
}
}  // namespace

PaddingSide parse_padding_side(const std::string& s, const std::string& where) {
  if (s == "right") return PaddingSide::Right;
  if (s == "left") return PaddingSide::Left;
  fail(where, "padding side must be left or right, got \"" + s + "\"");
}

int64_t default_pad_id(const ModelConfig& cfg) { return cfg.eos_token_id >= 0 ? cfg.eos_token_id : 0; }

TokenBatch pad_token_rows(const std::vector<std::vector<int64_t>>& rows, PaddingSide side, int64_t pad_id) {
  if (rows.empty()) throw Error("no sequences to batch");
  size_t n = 0;
  bool ragged = false;
  for (const auto& r : rows) {
    if (r.empty()) throw Error("sequences must not be empty");
    ragged = ragged || (n && r.size() != n);
    n = std::max(n, r.size());
  }
  std::vector<int64_t> tok, mask, len;
  for (const auto& r : rows) {
    const size_t pad = n - r.size();
    if (side == PaddingSide::Left) tok.insert(tok.end(), pad, pad_id), mask.insert(mask.end(), pad, 0);
    tok.insert(tok.end(), r.begin(), r.end()), mask.insert(mask.end(), r.size(), 1);
    if (side == PaddingSide::Right) tok.insert(tok.end(), pad, pad_id), mask.insert(mask.end(), pad, 0);
    len.push_back(static_cast<int64_t>(r.size()));
  }
  const int64_t b = static_cast<int64_t>(rows.size()), p = static_cast<int64_t>(n);
  TokenBatch out;
  out.tokens = at::tensor(tok, at::kLong).view({b, p});
  if (ragged) out.attention_mask = at::tensor(mask, at::kLong).view({b, p});
  out.lengths = at::tensor(len, at::kLong);
  return out;
}

TokenBatch read_token_batch(const std::string& path, PaddingSide side, int64_t pad_id) {
  json j = read_json_file(path);
  if (j.is_object()) {
    if (!j.contains("input_ids")) fail(path, "a tokens object needs \"input_ids\" (and optionally \"attention_mask\")");
    auto ids = json_rows(j["input_ids"], path, "input_ids");
    for (size_t r = 1; r < ids.size(); ++r)
      if (ids[r].size() != ids[0].size())
        fail(path, "input_ids row " + std::to_string(r) + " has " + std::to_string(ids[r].size()) + " tokens, row 0 has " +
                       std::to_string(ids[0].size()) + " (with an attention_mask, rows come padded to one length)");
    TokenBatch out;
    out.tokens = stack_rows(ids);
    if (j.contains("attention_mask")) {
      auto m = json_rows(j["attention_mask"], path, "attention_mask");
      if (m.size() != ids.size()) fail(path, "attention_mask has " + std::to_string(m.size()) + " rows, input_ids " + std::to_string(ids.size()));
      for (size_t r = 0; r < m.size(); ++r) {
        if (m[r].size() != ids[r].size()) fail(path, "attention_mask row " + std::to_string(r) + " is not as long as its input_ids row");
        for (int64_t v : m[r])
          if (v != 0 && v != 1) fail(path, "attention_mask values must be 0 or 1");
      }
      out.attention_mask = stack_rows(m);
      out.lengths = out.attention_mask.sum(1);
      if (out.lengths.min().item<int64_t>() == 0) fail(path, "an attention_mask row has no real token");
    } else {
      out.lengths = at::full({out.tokens.size(0)}, out.tokens.size(1), at::kLong);
    }
    return out;
  }
  try {
    return pad_token_rows(json_rows(j, path, "tokens"), side, pad_id);
  } catch (const Error& e) {
    if (std::string(e.what()).rfind(path, 0) == 0) throw;
    fail(path, e.what());
  }
}

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
