// Arguments shared by the analysis commands: text or token-file inputs, answer tokens
// given as strings or ids, and the JSON output (--json to stdout, --out to a file).
#pragma once
#include "mechlens/cli/common.h"
#include "mechlens/core/tensor_json.h"

namespace mechlens::cli {

// `--NAME TEXT` or `--NAME-tokens FILE.json` (an array of arrays of ids).
struct TextOrTokens {
  std::string text, file;
  bool given_text = false;
  std::string name;
  void add(CLI::App* app, const std::string& text_flag, const std::string& file_flag, const std::string& what);
  bool given() const { return !text.empty() || !file.empty(); }
  // Text is tokenized with a BOS first (as TransformerLens does) unless no_bos.
  at::Tensor resolve(const Tokenizer* tok, const HookedTransformer& m, bool no_bos) const;
};

// `--NAME TOK` (a string that must be one token, e.g. " Mary") or `--NAME-id ID`.
struct TokenArg {
  std::string text;
  int64_t id = -1;
  void add(CLI::App* app, const std::string& flag, const std::string& what);
  bool given() const { return !text.empty() || id >= 0; }
  int64_t resolve(const Tokenizer* tok, const HookedTransformer& m, const std::string& flag) const;
};

struct Output {
  bool json = false;
  std::string out;
  void add(CLI::App* app);
  // Writes the object to --out (atomically) and/or stdout; otherwise prints the summary.
  void emit(const nlohmann::json& j, const std::function<void()>& summary) const;
};

// The tokenizer when the model has one (nullptr otherwise).
std::unique_ptr<Tokenizer> maybe_tokenizer(const ModelArgs& a, const HookedTransformer& m);
// Prints a [rows, cols] grid with row/column labels.
void print_grid(const at::Tensor& grid, const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                const std::string& title);

}  // namespace mechlens::cli
