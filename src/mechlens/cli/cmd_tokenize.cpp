// mechlens tokenize --model DIR [--prepend-bos] [--str | --pieces] < text
#include <iostream>
#include <iterator>

#include "mechlens/cli/common.h"
#include "mechlens/core/io.h"

namespace mechlens::cli {

void add_tokenize(CLI::App& app) {
  auto* sub = app.add_subcommand("tokenize", "UTF-8 text on stdin -> JSON array of token ids on stdout");
  struct Opts {
    std::string model;
    bool bos = false, str = false, pieces = false;
  };
  auto o = std::make_shared<Opts>();
  sub->add_option("--model", o->model, "folder with tokenizer.json, vocab.json + merges.txt, or tokenizer.model "
                                       "(default: GPT-2's embedded vocabulary)");
  sub->add_flag("--prepend-bos", o->bos, "put the BOS token first");
  auto* s = sub->add_flag("--str", o->str, "print string tokens (each token decoded, as TransformerLens's to_str_tokens)");
  sub->add_flag("--pieces", o->pieces, "print vocabulary pieces (e.g. \"Ġworld\", \"▁wor\")")->excludes(s);
  sub->callback([o] {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto tok = o->model.empty() ? gpt2_tokenizer() : load_tokenizer(o->model);
    std::vector<int64_t> ids = tok->encode(text, o->bos);
    json out = json::array();
    if (o->str) {
      for (const auto& t : tok->to_str_tokens(ids)) out.push_back(t);
    } else if (o->pieces) {
      for (int64_t id : ids) out.push_back(tok->piece(id));
    } else {
      out = ids;
    }
    std::printf("%s\n", out.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  });
}

}  // namespace mechlens::cli
