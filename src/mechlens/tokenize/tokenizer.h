// Tokenizers: byte-level BPE (GPT-2, GPT-NeoX/Pythia; from vocab.json + merges.txt or
// an HF tokenizer.json) and SentencePiece (LLaMA-2, Gemma; tokenizer.model with
// Hugging Face's LlamaTokenizer conventions). Each encodes WITHOUT a BOS token;
// encode_with_bos adds one when asked.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mechlens {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  // The vocabulary entry of an id as stored (e.g. "Ġworld", "▁wor").
  virtual std::string piece(int64_t id) const = 0;
  virtual int64_t vocab_size() const = 0;
  // TransformerLens's to_str_tokens: each token decoded on its own (" world").
  std::vector<std::string> to_str_tokens(const std::vector<int64_t>& ids) const;
  std::vector<int64_t> encode(const std::string& text, bool prepend_bos) const;

  int64_t bos_id = -1;
  int64_t eos_id = -1;
  std::string kind;  // "bpe" or "sentencepiece"
};

// A special token's text and id.
using SpecialToken = std::pair<std::string, int64_t>;
// Splits text at special-token text (the earliest match; the longest at a tie when
// `specials` is sorted longest first). Plain chunks get id -1.
std::vector<SpecialToken> split_on_specials(const std::string& text, const std::vector<SpecialToken>& specials);

// Loads the tokenizer in a folder: tokenizer.json, vocab.json + merges.txt, or
// tokenizer.model (checked in that order). Throws mechlens::Error if none is there
// or a file is malformed.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);
bool has_tokenizer(const std::string& dir);
// GPT-2's tokenizer from the vocabulary embedded in the binary.
std::unique_ptr<Tokenizer> gpt2_tokenizer();
// A model folder's tokenizer: its own files, else GPT-2's embedded one when the
// vocabulary has GPT-2's 50,257 ids, else nullptr. Throws Error for a malformed file.
std::unique_ptr<Tokenizer> model_tokenizer(const std::string& dir, int64_t d_vocab);

}  // namespace mechlens
