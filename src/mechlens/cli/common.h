// What the subcommands share: loading the model a command names (or the built-in
// default), its tokenizer, token files and prompts. The commands stay thin: parse,
// call the library, print.
#pragma once
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

#include "mechlens/model/hooked_transformer.h"
#include "mechlens/tokenize/tokenizer.h"
#include "mechlens/tokenize/tokens.h"

namespace mechlens::cli {

using nlohmann::json;

struct ModelArgs {
  std::string model;               // --model DIR ("" = built-in default)
  std::string processing = "none"; // --processing
  std::string dtype;               // --dtype
  std::string device = "cpu";      // --device
  void add_to(CLI::App* app, bool model_required);
};

// The built-in default: a small GPT-2-style model (random weights, seed 0) that
// mechlens builds once and saves in its own checkpoint format.
std::string default_model_dir();
std::unique_ptr<HookedTransformer> load(const ModelArgs& a);
// The tokenizer in the model folder; GPT-2's embedded one for the default model or a
// folder without one whose vocabulary is GPT-2's. Throws Error otherwise.
std::unique_ptr<Tokenizer> tokenizer_for(const ModelArgs& a, const HookedTransformer& m);

// to_tokens (tokenize/tokens.h) with the CLI's advice when the model has no BOS.
at::Tensor prompt_tokens(const Tokenizer& tok, const HookedTransformer& m, const std::string& text, bool prepend_bos);

// Registration, one per file.
void add_info(CLI::App& app);
void add_verify(CLI::App& app);
void add_tokenize(CLI::App& app);
void add_run(CLI::App& app);
void add_generate(CLI::App& app);
void add_cache(CLI::App& app);
void add_bench(CLI::App& app);
void add_patch(CLI::App& app);
void add_heads(CLI::App& app);
void add_dla(CLI::App& app);
void add_ablate(CLI::App& app);
void add_circuits(CLI::App& app);
void add_ioi(CLI::App& app);
void add_lens(CLI::App& app);
void add_init(CLI::App& app);
void add_train(CLI::App& app);
void add_analyze(CLI::App& app);
void add_scope(CLI::App& app);
void add_explore(CLI::App& app);

}  // namespace mechlens::cli
