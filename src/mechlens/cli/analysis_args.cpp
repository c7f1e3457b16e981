#include "mechlens/cli/analysis_args.h"

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

namespace mechlens::cli {

void TextOrTokens::add(CLI::App* app, const std::string& text_flag, const std::string& file_flag, const std::string& what) {
  name = text_flag;
  auto* t = app->add_option(text_flag, text, what + " (text)");
  app->add_option(file_flag, file, what + " (JSON file: array of arrays of token ids)")->excludes(t);
}

at::Tensor TextOrTokens::resolve(const Tokenizer* tok, const HookedTransformer& m, bool no_bos) const {
  if (!file.empty()) {
    at::Tensor t = read_tokens_file(file);
    try {
      m.check_tokens(t);
    } catch (const Error& e) {
      fail(file, e.what());
    }
    return t;
  }
  if (text.empty()) throw Error("give " + name + " TEXT or its token file");
  if (!tok) throw Error("the model has no tokenizer: give token files instead of " + name);
  at::Tensor t = prompt_tokens(*tok, m, text, !no_bos);
  m.check_tokens(t);
  return t;
}

void TokenArg::add(CLI::App* app, const std::string& flag, const std::string& what) {
  auto* s = app->add_option(flag, text, what + " as text; must be one token (e.g. \" Mary\")");
  app->add_option(flag + "-id", id, what + " as a token id")->excludes(s);
}

int64_t TokenArg::resolve(const Tokenizer* tok, const HookedTransformer& m, const std::string& flag) const {
  if (id >= 0) {
    if (id >= m.cfg().vocab_out()) throw Error(flag + "-id " + std::to_string(id) + " is out of range");
    return id;
  }
  if (text.empty()) throw Error("give " + flag + " or " + flag + "-id");
  if (!tok) throw Error("the model has no tokenizer: use " + flag + "-id");
  try {
    return to_single_token(*tok, text);
  } catch (const Error& e) {
    throw Error(flag + ": " + e.what() + "; or give " + flag + "-id");
  }
}

void Output::add(CLI::App* app) {
  app->add_flag("--json", json, "print one JSON object on stdout");
  app->add_option("--out", out, "also write the JSON object to this file");
}

void Output::emit(const nlohmann::json& j, const std::function<void()>& summary) const {
  const std::string text = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (!out.empty()) write_file_atomic(out, text + "\n");
  if (json) std::printf("%s\n", text.c_str());
  else summary();
}

std::unique_ptr<Tokenizer> maybe_tokenizer(const ModelArgs& a, const HookedTransformer& m) {
  try {
    return tokenizer_for(a, m);
  } catch (const Error&) {
    return nullptr;
  }
}

void print_grid(const at::Tensor& grid, const std::vector<std::string>& rows, const std::vector<std::string>& cols,
                const std::string& title) {
  std::printf("%s\n%8s", title.c_str(), "");
  for (const auto& c : cols) std::printf(" %8s", c.c_str());
  std::printf("\n");
  at::Tensor g = grid.to(at::kDouble);
  for (int64_t r = 0; r < g.size(0); ++r) {
    std::printf("%8s", r < static_cast<int64_t>(rows.size()) ? rows[r].c_str() : "");
    for (int64_t c = 0; c < g.size(1); ++c) std::printf(" %8.4f", g[r][c].item<double>());
    std::printf("\n");
  }
}

}  // namespace mechlens::cli
