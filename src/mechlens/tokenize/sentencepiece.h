// SentencePiece tokenizers (LLaMA-2, Gemma: tokenizer.model) through Debian's
// libsentencepiece, with Hugging Face LlamaTokenizer's conventions on top:
// special-token text (<s>, </s>, <unk>, added tokens) is split out first, and the
// `legacy` flag of tokenizer_config.json chooses how text after a special token is
// prefixed (legacy: every chunk gets SentencePiece's dummy-prefix space; non-legacy:
// only the start of the text does).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "mechlens/tokenize/tokenizer.h"

namespace mechlens {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // model_path: tokenizer.model; config_path: tokenizer_config.json or "" if absent.
  // legacy_override: -1 reads `legacy` from the config (HF's default: true), 0/1 force it.
  static std::unique_ptr<SentencePieceTokenizer> load(const std::string& model_path, const std::string& config_path,
                                                      int legacy_override = -1);
  ~SentencePieceTokenizer() override;

  using Tokenizer::encode;
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  std::string piece(int64_t id) const override;
  int64_t vocab_size() const override { return n_pieces_; }
  bool legacy() const { return legacy_; }

 private:
  SentencePieceTokenizer() = default;
  std::vector<int> sp_encode(void* model, const std::string& text) const;

  void* sp_ = nullptr;          // the model as saved (dummy prefix on)
  void* sp_nodummy_ = nullptr;  // the same with add_dummy_prefix = false (non-legacy path)
  int64_t n_pieces_ = 0;
  bool legacy_ = true;
  bool add_prefix_space_ = true;  // non-legacy: mark the start of the text with "▁"
  std::string unk_piece_ = "<unk>";
  size_t unk_len_ = 0;  // how many pieces the no-dummy model splits unk_piece_ into
  std::vector<SpecialToken> specials_;
  std::string path_;
};

// Trains a SentencePiece model (model_prefix + ".model") on a UTF-8 text file, one
// sentence per line, with SentencePiece's own trainer. Throws Error naming the file.
void train_sentencepiece(const std::string& text_file, const std::string& model_prefix, int vocab_size,
                         const std::string& model_type = "bpe");

}  // namespace mechlens
