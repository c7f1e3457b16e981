// Byte-level BPE as in GPT-2: text is split by the GPT-2 regex (PCRE2 with Unicode
// properties), bytes are mapped to printable unicode characters, and merges are
// applied by rank. Special tokens (e.g. <|endoftext|>) are split out first.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "mechlens/tokenize/tokenizer.h"

namespace mechlens {

bool valid_utf8(const std::string& s);

class ByteLevelBPE : public Tokenizer {
 public:
  // vocab: encoder.json / vocab.json text; merges: vocab.bpe / merges.txt text.
  static std::unique_ptr<ByteLevelBPE> from_files(const std::string& vocab_json, const std::string& merges_txt,
                                                  const std::string& vocab_name, const std::string& merges_name);
  // An HF tokenizers tokenizer.json with a BPE model and ByteLevel pre-tokenizer.
  static std::unique_ptr<ByteLevelBPE> from_tokenizer_json(const std::string& text, const std::string& name);
  ~ByteLevelBPE() override;

  using Tokenizer::encode;
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string piece(int64_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_piece_.size()); }

 private:
  ByteLevelBPE();
  void add_merge(const std::string& a, const std::string& b, int rank);
  void finish(const std::string& where);
  void encode_chunk(const std::string& text, std::vector<int64_t>& out) const;
  const std::vector<int64_t>& bpe(const std::string& word) const;
  const std::string& piece_ref(int64_t id) const;

  std::unordered_map<std::string, int64_t> piece_to_id_;
  std::vector<std::string> id_to_piece_;
  std::unordered_map<std::string, int> ranks_;  // "a b" -> rank
  std::vector<SpecialToken> specials_;  // split out before BPE, longest first
  bool add_prefix_space_ = false;
  std::string byte_to_char_[256];
  std::unordered_map<std::string, uint8_t> char_to_byte_;
  void* regex_ = nullptr;  // pcre2_code*
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace mechlens
