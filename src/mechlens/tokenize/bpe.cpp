#include "mechlens/tokenize/bpe.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <climits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "mechlens/core/error.h"

namespace mechlens {

namespace {

// GPT-2's pre-tokenisation pattern.
const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// Splits a UTF-8 string into its characters (invalid bytes become single units).
std::vector<std::string> utf8_chars(const std::string& s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (i + n > s.size()) n = 1;
    out.push_back(s.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace

bool valid_utf8(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    i += n;
  }
  return true;
}

ByteLevelBPE::ByteLevelBPE() {
  kind = "bpe";
  // GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to 256+n.
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    uint32_t cp = printable ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
    byte_to_char_[b] = utf8(cp);
    char_to_byte_[byte_to_char_[b]] = static_cast<uint8_t>(b);
  }
  int err = 0;
  PCRE2_SIZE off = 0;
  regex_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kGpt2Pattern), PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                         &err, &off, nullptr);
  if (!regex_) throw std::logic_error("GPT-2 regex failed to compile");
  pcre2_jit_compile(static_cast<pcre2_code*>(regex_), PCRE2_JIT_COMPLETE);
}

ByteLevelBPE::~ByteLevelBPE() {
  if (regex_) pcre2_code_free(static_cast<pcre2_code*>(regex_));
}

void ByteLevelBPE::add_merge(const std::string& a, const std::string& b, int rank) {
  ranks_.emplace(a + " " + b, rank);
}

void ByteLevelBPE::finish(const std::string& where) {
  int64_t max_id = -1;
  for (const auto& [p, id] : piece_to_id_) max_id = std::max(max_id, id);
  if (max_id < 0) fail(where, "empty vocabulary");
  if (max_id > 10'000'000) fail(where, "token id " + std::to_string(max_id) + " is implausibly large");
  id_to_piece_.assign(max_id + 1, "");
  for (const auto& [p, id] : piece_to_id_) id_to_piece_[id] = p;
  std::sort(specials_.begin(), specials_.end(),
            [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
  auto eot = piece_to_id_.find("<|endoftext|>");
  if (eot != piece_to_id_.end()) bos_id = eos_id = eot->second;
}

std::unique_ptr<ByteLevelBPE> ByteLevelBPE::from_files(const std::string& vocab_json, const std::string& merges_txt,
                                                       const std::string& vocab_name, const std::string& merges_name) {
  std::unique_ptr<ByteLevelBPE> t(new ByteLevelBPE());
  nlohmann::json v;
  try {
    v = nlohmann::json::parse(vocab_json);
  } catch (const std::exception&) {
    fail(vocab_name, "unreadable JSON");
  }
  if (!v.is_object()) fail(vocab_name, "vocabulary must be a JSON object of token -> id");
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      fail(vocab_name, "id of \"" + it.key() + "\" is not a non-negative integer");
    t->piece_to_id_[it.key()] = it.value().get<int64_t>();
  }
  std::istringstream in(merges_txt);
  std::string line;
  int rank = 0, lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line.rfind("#version", 0) == 0) continue;
    auto sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
      fail(merges_name, "line " + std::to_string(lineno) + " is not a merge \"a b\"");
    t->add_merge(line.substr(0, sp), line.substr(sp + 1), rank++);
  }
  if (t->piece_to_id_.count("<|endoftext|>")) t->specials_.push_back({"<|endoftext|>", t->piece_to_id_["<|endoftext|>"]});
  t->finish(vocab_name);
  return t;
}

std::unique_ptr<ByteLevelBPE> ByteLevelBPE::from_tokenizer_json(const std::string& text, const std::string& name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception&) {
    fail(name, "unreadable JSON");
  }
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object()) fail(name, "missing \"model\" object");
  const auto& m = j["model"];
  if (m.value("type", std::string("BPE")) != "BPE") fail(name, "only BPE tokenizer.json models are supported");
  if (!m.contains("vocab") || !m["vocab"].is_object()) fail(name, "model.vocab must be an object");
  if (!m.contains("merges") || !m["merges"].is_array()) fail(name, "model.merges must be an array");
  std::unique_ptr<ByteLevelBPE> t(new ByteLevelBPE());
  for (auto it = m["vocab"].begin(); it != m["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
      fail(name, "id of \"" + it.key() + "\" is not a non-negative integer");
    t->piece_to_id_[it.key()] = it.value().get<int64_t>();
  }
  int rank = 0;
  for (const auto& mg : m["merges"]) {
    if (mg.is_string()) {
      std::string s = mg.get<std::string>();
      auto sp = s.find(' ');
      if (sp == std::string::npos) fail(name, "merge \"" + s + "\" is not \"a b\"");
      t->add_merge(s.substr(0, sp), s.substr(sp + 1), rank++);
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      t->add_merge(mg[0].get<std::string>(), mg[1].get<std::string>(), rank++);
    } else {
      fail(name, "malformed merge entry");
    }
  }
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["id"].is_number_integer() ||
          !a["content"].is_string())
        fail(name, "malformed added_tokens entry");
      int64_t id = a["id"].get<int64_t>();
      std::string content = a["content"].get<std::string>();
      if (id < 0) fail(name, "added token id is negative");
      t->piece_to_id_[content] = id;
      t->specials_.push_back({content, id});
    }
  }
  // ByteLevel pre-tokenizer, alone or inside a Sequence.
  std::function<void(const nlohmann::json&)> scan = [&](const nlohmann::json& p) {
    if (!p.is_object()) return;
    if (p.value("type", std::string()) == "ByteLevel") t->add_prefix_space_ = p.value("add_prefix_space", false);
    if (p.contains("pretokenizers") && p["pretokenizers"].is_array())
      for (const auto& q : p["pretokenizers"]) scan(q);
  };
  if (j.contains("pre_tokenizer")) scan(j["pre_tokenizer"]);
  t->finish(name);
  return t;
}

const std::vector<int64_t>& ByteLevelBPE::bpe(const std::string& word) const {
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) return it->second;
  }
  std::vector<std::string> parts = utf8_chars(word);
  while (parts.size() > 1) {
    int best = INT_MAX;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      auto r = ranks_.find(parts[i] + " " + parts[i + 1]);
      if (r != ranks_.end() && r->second < best) best = r->second, at = i;
    }
    if (best == INT_MAX) break;
    // Merge every occurrence of the best pair, left to right.
    const std::string a = parts[at], b = parts[at + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < parts.size();) {
      if (i + 1 < parts.size() && parts[i] == a && parts[i + 1] == b) {
        merged.push_back(a + b);
        i += 2;
      } else {
        merged.push_back(parts[i++]);
      }
    }
    parts.swap(merged);
  }
  std::vector<int64_t> ids;
  for (const auto& p : parts) {
    auto it = piece_to_id_.find(p);
    if (it == piece_to_id_.end()) throw Error("tokenizer: piece \"" + p + "\" is not in the vocabulary");
    ids.push_back(it->second);
  }
  std::lock_guard<std::mutex> lock(cache_mu_);
  return cache_.emplace(word, std::move(ids)).first->second;
}

void ByteLevelBPE::encode_chunk(const std::string& text0, std::vector<int64_t>& out) const {
  const std::string text = text0;
  auto* re = static_cast<pcre2_code*>(regex_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(re, nullptr);
  PCRE2_SIZE start = 0;
  while (start < text.size()) {
    int rc = pcre2_match(re, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, PCRE2_NO_UTF_CHECK, md,
                         nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] == ov[0]) {  // empty match cannot happen with this pattern; guard anyway
      ++start;
      continue;
    }
    std::string word;
    for (PCRE2_SIZE i = ov[0]; i < ov[1]; ++i) word += byte_to_char_[static_cast<unsigned char>(text[i])];
    const auto& ids = bpe(word);
    out.insert(out.end(), ids.begin(), ids.end());
    start = ov[1];
  }
  pcre2_match_data_free(md);
}

std::vector<int64_t> ByteLevelBPE::encode(const std::string& text_in) const {
  if (!valid_utf8(text_in)) throw Error("input text is not valid UTF-8");
  std::string text = add_prefix_space_ && !text_in.empty() && text_in[0] != ' ' ? " " + text_in : text_in;
  std::vector<int64_t> out;
  for (const auto& [chunk, id] : split_on_specials(text, specials_)) {
    if (id >= 0) out.push_back(id);
    else encode_chunk(chunk, out);
  }
  return out;
}

const std::string& ByteLevelBPE::piece_ref(int64_t id) const {
  if (id < 0 || id >= vocab_size()) throw Error("token id " + std::to_string(id) + " is out of range");
  return id_to_piece_[id];
}

std::string ByteLevelBPE::piece(int64_t id) const { return piece_ref(id); }

std::string ByteLevelBPE::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    const std::string& p = piece_ref(id);
    bool special = false;
    for (const auto& s : specials_) special |= s.second == id;
    if (special) {
      out += p;
      continue;
    }
    for (const auto& ch : utf8_chars(p)) {
      auto it = char_to_byte_.find(ch);
      out += it != char_to_byte_.end() ? std::string(1, static_cast<char>(it->second)) : ch;
    }
  }
  return out;
}

}  // namespace mechlens
