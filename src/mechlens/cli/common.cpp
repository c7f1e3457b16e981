#include "mechlens/cli/common.h"

#include <sys/stat.h>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/loading/load_model.h"

namespace mechlens::cli {

void ModelArgs::add_to(CLI::App* app, bool model_required) {
  auto* o = app->add_option("--model", model, "model folder (Hugging Face or mechlens checkpoint)");
  if (model_required) o->required();
  app->add_option("--processing", processing,
                  "weight processing: none (default) | tl (TransformerLens from_pretrained defaults) | tl+refactor");
  app->add_option("--dtype", dtype, "float32 | bfloat16 | float16");
  app->add_option("--device", device, "cpu, or cuda when libtorch has it");
}

std::string default_model_dir() {
  std::string base;
  if (const char* x = std::getenv("MECHLENS_HOME")) base = x;
  else if (const char* h = std::getenv("HOME")) base = std::string(h) + "/.cache/mechlens";
  else base = "/tmp/mechlens";
  return base + "/default-gpt2-tiny";
}

namespace {
void mkdirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i)
    if (i == path.size() || path[i] == '/') ::mkdir(path.substr(0, i).c_str(), 0755);
}
}  // namespace

std::unique_ptr<HookedTransformer> load(const ModelArgs& a) {
  LoadOptions opts;
  try {
    opts.processing = ProcessingOptions::parse(a.processing);
  } catch (const Error& e) {
    throw Error(std::string("--processing: ") + e.what());
  }
  opts.dtype = a.dtype;
  opts.device = a.device;
  if (!a.model.empty()) return load_model(a.model, opts);
  const std::string dir = default_model_dir();
  if (!file_exists(dir + "/mechlens.json")) {
    ModelConfig cfg = ModelConfig::preset("gpt2-tiny");
    HookedTransformer m(cfg, random_state_dict(cfg, 0), "none");
    mkdirs(dir);
    save_checkpoint(m, dir);
    std::fprintf(stderr, "mechlens: built the default model (gpt2-tiny, random weights, seed 0) in %s\n", dir.c_str());
  }
  return load_model(dir, opts);
}

std::unique_ptr<Tokenizer> tokenizer_for(const ModelArgs& a, const HookedTransformer& m) {
  if (a.model.empty()) return gpt2_tokenizer();
  if (auto t = model_tokenizer(a.model, m.cfg().d_vocab)) return t;
  fail(a.model, "no tokenizer in the model folder (tokenizer.json, vocab.json + merges.txt or tokenizer.model); "
                "pass token ids with --tokens instead");
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

at::Tensor prompt_tokens(const Tokenizer& tok, const HookedTransformer& m, const std::string& text, bool prepend_bos) {
  std::vector<int64_t> ids = tok.encode(text);
  if (prepend_bos) {
    int64_t bos = tok.bos_id >= 0 ? tok.bos_id : m.cfg().bos_token_id;
    if (bos < 0) throw Error("the model has no BOS token; use --no-bos");
    ids.insert(ids.begin(), bos);
  }
  if (ids.empty()) throw Error("the prompt is empty");
  return at::tensor(ids, at::kLong).view({1, -1});
}

std::vector<int64_t> to_vector(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU).to(at::kLong).contiguous().view(-1);
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

}  // namespace mechlens::cli
