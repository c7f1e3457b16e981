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

at::Tensor prompt_tokens(const Tokenizer& tok, const HookedTransformer& m, const std::string& text, bool prepend_bos) {
  if (prepend_bos && tok.bos_id < 0 && m.cfg().bos_token_id < 0) throw Error("the model has no BOS token; use --no-bos");
  return to_tokens(tok, m, text, prepend_bos);
}

}  // namespace mechlens::cli
