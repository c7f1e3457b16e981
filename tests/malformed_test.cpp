// Malformed input: the safetensors parser, the config reader and the model loader
// turn random, truncated or inconsistent bytes into mechlens::Error, never a crash.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/families/family.h"
#include "mechlens/loading/load_model.h"
#include "mechlens/loading/safetensors.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

namespace {
std::string header_file(const std::string& header, const std::string& data) {
  std::string out;
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  return out + header + data;
}
std::string valid_bytes() {
  return safetensors_bytes({{"a", at::arange(6, at::kFloat).view({2, 3})}, {"b", at::ones({4}, at::kBFloat16)}},
                           {{"k", "v"}});
}
}  // namespace

TEST(Safetensors, RoundTripAllDtypes) {
  std::vector<std::pair<std::string, at::Tensor>> ts = {{"f32", at::randn({3, 4})},
                                                        {"f16", at::randn({5}).to(at::kHalf)},
                                                        {"bf16", at::randn({2, 2}).to(at::kBFloat16)},
                                                        {"i64", at::arange(7, at::kLong)},
                                                        {"empty", at::zeros({0, 3})}};
  auto f = SafetensorsFile::from_bytes(safetensors_bytes(ts, {{"m", "x"}}), "mem");
  for (const auto& [n, t] : ts) EXPECT_TRUE(at::equal(f->get(n), t)) << n;
  EXPECT_TRUE(at::allclose(f->get("bf16", at::kFloat), ts[2].second.to(at::kFloat)));
  EXPECT_EQ(f->metadata().at("m"), "x");
}

TEST(Safetensors, RejectsMalformedHeaders) {
  auto bad = [](const std::string& bytes) { EXPECT_THROW(SafetensorsFile::from_bytes(bytes, "bad.safetensors"), Error); };
  bad("");
  bad("1234567");
  bad(std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8) + "{}");         // huge header length
  bad(header_file("{}", "").substr(0, 8) + std::string(1, '{'));            // header past end of file
  bad(header_file("{not json", ""));
  bad(header_file("[1, 2]", ""));
  bad(header_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", "1234"));   // past the end
  bad(header_file(R"({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", "12345678"));  // size mismatch
  bad(header_file(R"({"a": {"dtype": "X9", "shape": [2], "data_offsets": [0, 8]}})", "12345678"));
  bad(header_file(R"({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", "12345678"));
  bad(header_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", "12345678"));
  bad(header_file(R"({"a": {"dtype": "F32", "shape": [2]}})", "12345678"));
  bad(header_file(R"({"a": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 8]}})", "12345678"));
  bad(header_file(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                     "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", "123456789012"));  // overlap
  bad(header_file(R"({"__metadata__": {"k": 3}})", ""));
}

TEST(Safetensors, TruncationsAndRandomBytesNeverCrash) {
  const std::string good = valid_bytes();
  ASSERT_NO_THROW(SafetensorsFile::from_bytes(good, "good"));
  int errors = 0;
  for (size_t cut = 0; cut < good.size(); ++cut) {
    try {
      SafetensorsFile::from_bytes(good.substr(0, cut), "cut");
    } catch (const Error&) {
      ++errors;
    }
  }
  EXPECT_EQ(errors, static_cast<int>(good.size()));  // every strict prefix is rejected
  std::mt19937 rng(1234);
  for (int trial = 0; trial < 2000; ++trial) {
    std::string b = good;
    int flips = 1 + rng() % 8;
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<char>(rng());
    try {
      auto f = SafetensorsFile::from_bytes(b, "fuzz");
      for (const auto& k : f->keys()) f->get(k);  // what validates must also read
    } catch (const Error&) {
    }
  }
  for (int trial = 0; trial < 500; ++trial) {
    std::string b(rng() % 64, '\0');
    for (auto& c : b) c = static_cast<char>(rng());
    try {
      SafetensorsFile::from_bytes(b, "random");
    } catch (const Error&) {
    }
  }
}

TEST(ConfigReader, RejectsBadConfigs) {
  auto cfg_error = [](const std::string& text) {
    json hf;
    try {
      hf = json::parse(text);
    } catch (...) {
      return;  // unreadable JSON is reported by read_json_file (tested through the CLI)
    }
    try {
      const Family& f = family_for(hf, "config.json");
      f.config(hf, "config.json").validate("config.json");
      ADD_FAILURE() << "accepted: " << text;
    } catch (const Error&) {
    }
  };
  cfg_error(R"({"model_type": "bert"})");
  cfg_error(R"({"architectures": ["FooForCausalLM"]})");
  cfg_error(R"({"model_type": "gpt2"})");
  cfg_error(R"({"model_type": "gpt2", "n_embd": "64", "n_layer": 2, "n_head": 4, "vocab_size": 10, "n_positions": 8})");
  cfg_error(R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 5, "vocab_size": 10, "n_positions": 8})");
  cfg_error(R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 10, "n_positions": 8,
                "activation_function": "tanhsoftplus"})");
  cfg_error(R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 3, "intermediate_size": 8, "vocab_size": 10, "max_position_embeddings": 8})");
  cfg_error(R"({"model_type": "llama", "hidden_size": 64, "num_hidden_layers": -2, "num_attention_heads": 4,
                "intermediate_size": 8, "vocab_size": 10, "max_position_embeddings": 8})");
  cfg_error(R"({"model_type": "gpt_neo", "hidden_size": 64, "num_layers": 2, "num_heads": 4, "vocab_size": 10,
                "max_position_embeddings": 8, "window_size": 4, "attention_layers": ["global"]})");
  EXPECT_THROW(ModelConfig::from_json(json::parse(R"({"n_layers": 1})"), "mechlens.json"), Error);
}

TEST(ModelLoader, MismatchedAndMissingFiles) {
  REQUIRE_GOLDEN();
  char tmpl[] = "/tmp/mechlens_badXXXXXX";
  const std::string dir = mkdtemp(tmpl);
  EXPECT_THROW(load_model(dir), Error);  // empty folder
  EXPECT_THROW(load_model(dir + "/nope"), Error);
  // A gpt2 config with more layers than the weights hold.
  json cfg = read_json_file(golden_dir() + "/gpt2/config.json");
  cfg["n_layer"] = 3;
  write_file_atomic(dir + "/config.json", cfg.dump());
  std::system(("cp " + golden_dir() + "/gpt2/model.safetensors " + dir + "/").c_str());
  EXPECT_THROW(load_model(dir), Error);
  cfg["n_layer"] = 2;
  cfg["n_embd"] = 32;
  write_file_atomic(dir + "/config.json", cfg.dump());
  EXPECT_THROW(load_model(dir), Error);
  // Truncated weights.
  cfg["n_embd"] = 64;
  write_file_atomic(dir + "/config.json", cfg.dump());
  std::string w = read_file(golden_dir() + "/gpt2/model.safetensors");
  write_file_atomic(dir + "/model.safetensors", w.substr(0, w.size() / 2));
  EXPECT_THROW(load_model(dir), Error);
  // A sharded index pointing at a missing shard.
  std::remove((dir + "/model.safetensors").c_str());
  write_file_atomic(dir + "/model.safetensors.index.json", R"({"weight_map": {"transformer.wte.weight": "shard-1.safetensors"}})");
  EXPECT_THROW(load_model(dir), Error);
  std::system(("rm -rf " + dir).c_str());
}

TEST(ModelLoader, ShardedIndexLoadsLikeTheSingleFile) {
  REQUIRE_GOLDEN();
  char tmpl[] = "/tmp/mechlens_shardXXXXXX";
  const std::string dir = mkdtemp(tmpl);
  auto f = SafetensorsFile::open(golden_dir() + "/llama/model.safetensors");
  std::vector<std::pair<std::string, at::Tensor>> a, b;
  json map = json::object();
  int i = 0;
  for (const auto& k : f->keys()) {
    const bool first = (i++ % 2) == 0;
    (first ? a : b).push_back({k, f->get(k)});
    map[k] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  save_safetensors(dir + "/model-00001-of-00002.safetensors", a);
  save_safetensors(dir + "/model-00002-of-00002.safetensors", b);
  write_file_atomic(dir + "/model.safetensors.index.json", json{{"metadata", json::object()}, {"weight_map", map}}.dump());
  std::system(("cp " + golden_dir() + "/llama/config.json " + dir + "/").c_str());
  at::Tensor tokens = SafetensorsFile::open(golden_dir() + "/llama/expected.safetensors")->get("input_ids");
  EXPECT_TRUE(at::equal(load_model(dir)->forward(tokens), load_model(golden_dir() + "/llama")->forward(tokens)));
  std::system(("rm -rf " + dir).c_str());
}
