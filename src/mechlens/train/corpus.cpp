#include "mechlens/train/corpus.h"

#include <algorithm>
#include <filesystem>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

#ifndef MECHLENS_NPM_DIR
#define MECHLENS_NPM_DIR "third_party/npm/node_modules"
#endif

namespace mechlens {

namespace fs = std::filesystem;

size_t Corpus::bytes() const {
  size_t n = 0;
  for (auto& d : docs) n += d.size();
  return n;
}

std::string npm_modules_dir() {
  if (const char* e = std::getenv("MECHLENS_NPM_DIR")) return e;
  return MECHLENS_NPM_DIR;
}

namespace {
void split_heldout(Corpus& c) {
  c.heldout.resize(c.docs.size());
  for (size_t i = 0; i < c.docs.size(); ++i) c.heldout[i] = i % 20 == 19;
}
std::string data_dir(const std::string& package) {
  const std::string d = join_path(npm_modules_dir(), "@stdlib/" + package + "/data");
  if (!dir_exists(d)) fail(d, "corpus missing: run `make deps` (npm install @stdlib/" + package + ")");
  return d;
}
}  // namespace

Corpus load_corpus(const std::string& what) {
  Corpus c;
  c.name = what;
  if (what == "moby-dick") {
    const std::string d = data_dir("datasets-moby-dick");
    c.docs.push_back(read_file(join_path(d, "etymology.txt")));
    c.docs.push_back(read_file(join_path(d, "extracts.txt")));
    for (int i = 1; i <= 135; ++i) c.docs.push_back(read_file(join_path(d, "chapter_" + std::to_string(i) + ".txt")));
    c.docs.push_back(read_file(join_path(d, "epilogue.txt")));
  } else if (what == "sotu") {
    const std::string d = data_dir("datasets-sotu");
    std::vector<std::string> files;
    for (auto& e : fs::directory_iterator(d))
      if (e.path().extension() == ".txt") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());  // by year
    for (auto& f : files) c.docs.push_back(read_file(f));
  } else {
    if (!file_exists(what)) fail(what, "no such corpus file (or name: moby-dick, sotu)");
    const std::string text = read_file(what);
    std::string doc;
    int paragraphs = 0;
    size_t i = 0;
    while (i < text.size()) {
      size_t j = text.find("\n\n", i);
      if (j == std::string::npos) j = text.size();
      doc += text.substr(i, j - i) + "\n\n";
      if (++paragraphs == 50) c.docs.push_back(doc), doc.clear(), paragraphs = 0;
      i = j + 2;
    }
    if (!doc.empty()) c.docs.push_back(doc);
  }
  if (c.docs.size() < 2) fail(what, "a corpus needs at least 2 documents (one is held out in 20)");
  split_heldout(c);
  if (std::none_of(c.heldout.begin(), c.heldout.end(), [](bool b) { return b; })) c.heldout.back() = true;
  return c;
}

}  // namespace mechlens
