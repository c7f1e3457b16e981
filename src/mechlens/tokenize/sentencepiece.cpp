#include "mechlens/tokenize/sentencepiece.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <nlohmann/json.hpp>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/tokenize/bpe.h"

namespace mechlens {

namespace {

const std::string kSpace = "\xE2\x96\x81";  // U+2581, SentencePiece's whitespace mark

// The C interface of libmechlens_spm.so (see spm_shim/spm_shim.cpp).
struct Shim {
  void* (*load)(const char*, size_t, char*, size_t);
  void (*free)(void*);
  long (*encode)(void*, const char*, size_t, int*, size_t);
  int (*piece_size)(void*);
  long (*id_to_piece)(void*, int, char*, size_t);
  int (*piece_to_id)(void*, const char*, size_t);
  long (*decode)(void*, const int*, size_t, char*, size_t);
  int (*special_id)(void*, int);
  int (*piece_type)(void*, int);
};

// The folder of libmechlens.so itself (not of the program that loaded it: a Python
// interpreter, a user's program): the shim and the trainer are installed beside it.
std::string library_dir() {
  Dl_info info{};
  if (::dladdr(reinterpret_cast<void*>(&library_dir), &info) == 0 || !info.dli_fname) return ".";
  std::string p = info.dli_fname;
  const auto slash = p.rfind('/');
  return slash == std::string::npos ? "." : p.substr(0, slash);
}

const Shim& shim() {
  static Shim s = [] {
    std::vector<std::string> candidates;
    if (const char* env = std::getenv("MECHLENS_SPM_SHIM")) candidates.push_back(env);
    candidates.push_back(library_dir() + "/libmechlens_spm.so");
    void* h = nullptr;
    std::string errors;
    for (const auto& c : candidates) {
      // DEEPBIND: sentencepiece must bind to its own bundled protobuf (see the shim).
      h = ::dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (h) break;
      errors += std::string(" ") + ::dlerror() + ";";
    }
    if (!h) throw Error("cannot load the SentencePiece shim libmechlens_spm.so:" + errors);
    Shim s{};
    auto sym = [&](const char* name) {
      void* p = ::dlsym(h, name);
      if (!p) throw Error(std::string("libmechlens_spm.so lacks ") + name);
      return p;
    };
    s.load = reinterpret_cast<decltype(s.load)>(sym("mlspm_load"));
    s.free = reinterpret_cast<decltype(s.free)>(sym("mlspm_free"));
    s.encode = reinterpret_cast<decltype(s.encode)>(sym("mlspm_encode"));
    s.piece_size = reinterpret_cast<decltype(s.piece_size)>(sym("mlspm_piece_size"));
    s.id_to_piece = reinterpret_cast<decltype(s.id_to_piece)>(sym("mlspm_id_to_piece"));
    s.piece_to_id = reinterpret_cast<decltype(s.piece_to_id)>(sym("mlspm_piece_to_id"));
    s.decode = reinterpret_cast<decltype(s.decode)>(sym("mlspm_decode"));
    s.special_id = reinterpret_cast<decltype(s.special_id)>(sym("mlspm_special_id"));
    s.piece_type = reinterpret_cast<decltype(s.piece_type)>(sym("mlspm_piece_type"));
    return s;
  }();
  return s;
}

// --- protobuf wire format, just enough to switch add_dummy_prefix off -------------------
bool read_varint(const std::string& b, size_t& i, uint64_t& v) {
  v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (i >= b.size()) return false;
    uint8_t c = static_cast<uint8_t>(b[i++]);
    v |= static_cast<uint64_t>(c & 0x7F) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}
void write_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) out.push_back(static_cast<char>((v & 0x7F) | 0x80)), v >>= 7;
  out.push_back(static_cast<char>(v));
}

// ModelProto field 3 is normalizer_spec; NormalizerSpec field 3 is add_dummy_prefix.
// Appending "field 3 = false" to the submessage overrides any earlier value.
std::string without_dummy_prefix(const std::string& proto, const std::string& where) {
  std::string out;
  size_t i = 0;
  bool found = false;
  while (i < proto.size()) {
    size_t field_start = i;
    uint64_t tag;
    if (!read_varint(proto, i, tag)) fail(where, "corrupt SentencePiece model (bad protobuf tag)");
    const uint64_t field = tag >> 3, wire = tag & 7;
    if (wire == 0) {
      uint64_t v;
      if (!read_varint(proto, i, v)) fail(where, "corrupt SentencePiece model (bad varint)");
    } else if (wire == 1 || wire == 5) {
      i += wire == 1 ? 8 : 4;
    } else if (wire == 2) {
      uint64_t len;
      if (!read_varint(proto, i, len) || len > proto.size() - i) fail(where, "corrupt SentencePiece model (bad length)");
      if (field == 3) {
        std::string sub = proto.substr(i, len) + std::string("\x18\x00", 2);
        write_varint(out, tag);
        write_varint(out, sub.size());
        out += sub;
        i += len;
        found = true;
        continue;
      }
      i += len;
    } else {
      fail(where, "corrupt SentencePiece model (unknown wire type)");
    }
    if (i > proto.size()) fail(where, "truncated SentencePiece model");
    out.append(proto, field_start, i - field_start);
  }
  if (!found) {  // no normalizer_spec at all: add one
    write_varint(out, (3 << 3) | 2);
    write_varint(out, 2);
    out += std::string("\x18\x00", 2);
  }
  return out;
}

}  // namespace

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& model_path,
                                                                     const std::string& config_path,
                                                                     int legacy_override) {
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->kind = "sentencepiece";
  t->path_ = model_path;
  const std::string bytes = read_file(model_path);
  if (bytes.empty()) fail(model_path, "empty SentencePiece model");
  const std::string nodummy = without_dummy_prefix(bytes, model_path);  // also validates the framing
  const Shim& s = shim();
  char err[512] = {0};
  t->sp_ = s.load(bytes.data(), bytes.size(), err, sizeof(err));
  if (!t->sp_) fail(model_path, std::string("not a valid SentencePiece model (") + err + ")");
  t->sp_nodummy_ = s.load(nodummy.data(), nodummy.size(), err, sizeof(err));
  if (!t->sp_nodummy_) fail(model_path, std::string("not a valid SentencePiece model (") + err + ")");
  t->n_pieces_ = s.piece_size(t->sp_);
  t->bos_id = s.special_id(t->sp_, 0);
  t->eos_id = s.special_id(t->sp_, 1);
  const int unk = s.special_id(t->sp_, 2);
  if (unk >= 0) t->unk_piece_ = t->piece(unk);
  // Control and unknown pieces (<s>, </s>, <unk>) are special-token text in HF.
  for (int id = 0; id < t->n_pieces_; ++id) {
    int type = s.piece_type(t->sp_, id);
    if (type == 1 || type == 2) t->specials_.push_back({t->piece(id), id});
  }
  // HF's default when tokenizer_config.json does not say: legacy = True.
  t->legacy_ = true;
  if (!config_path.empty()) {
    json cfg = read_json_file(config_path);
    if (!cfg.is_object()) fail(config_path, "tokenizer config is not a JSON object");
    t->legacy_ = json_get_or<bool>(cfg, "legacy", true, config_path);
    t->add_prefix_space_ = json_get_or<bool>(cfg, "add_prefix_space", true, config_path);
    if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
      for (auto it = cfg["added_tokens_decoder"].begin(); it != cfg["added_tokens_decoder"].end(); ++it) {
        const auto& v = it.value();
        if (!v.is_object() || !v.contains("content") || !v["content"].is_string())
          fail(config_path, "malformed added_tokens_decoder entry");
        int64_t id;
        try {
          id = std::stoll(it.key());
        } catch (const std::exception&) {
          fail(config_path, "added_tokens_decoder key \"" + it.key() + "\" is not an id");
        }
        std::string content = v["content"].get<std::string>();
        bool known = false;
        for (auto& sp : t->specials_) known |= sp.first == content;
        if (!known) t->specials_.push_back({content, id});
      }
    }
  }
  if (legacy_override >= 0) t->legacy_ = legacy_override == 1;
  std::sort(t->specials_.begin(), t->specials_.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  t->unk_len_ = t->sp_encode(t->sp_nodummy_, t->unk_piece_).size();
  return t;
}

SentencePieceTokenizer::~SentencePieceTokenizer() {
  if (sp_) shim().free(sp_);
  if (sp_nodummy_) shim().free(sp_nodummy_);
}

std::vector<int> SentencePieceTokenizer::sp_encode(void* model, const std::string& text) const {
  const Shim& s = shim();
  std::vector<int> ids(text.size() + 16);
  long n = s.encode(model, text.data(), text.size(), ids.data(), ids.size());
  if (n < 0) throw Error(path_ + ": SentencePiece failed to encode the text");
  if (static_cast<size_t>(n) > ids.size()) {
    ids.resize(n);
    n = s.encode(model, text.data(), text.size(), ids.data(), ids.size());
  }
  ids.resize(n);
  return ids;
}

std::vector<int64_t> SentencePieceTokenizer::encode(const std::string& text_in) const {
  if (!valid_utf8(text_in)) throw Error("input text is not valid UTF-8");
  if (text_in.empty()) return {};
  std::string text = text_in;
  if (!legacy_) {
    // Non-legacy: literal "▁" becomes a space, and one "▁" marks the start of the text.
    std::string t;
    for (size_t i = 0; i < text.size();) {
      if (text.compare(i, kSpace.size(), kSpace) == 0) t += ' ', i += kSpace.size();
      else t += text[i++];
    }
    text = add_prefix_space_ ? kSpace + t : t;
  }
  const std::vector<SpecialToken> chunks = split_on_specials(text, specials_);
  std::vector<int64_t> out;
  std::vector<bool> is_special;
  for (const auto& [chunk, id] : chunks) {
    if (id >= 0) {
      out.push_back(id);
      is_special.push_back(true);
      continue;
    }
    std::vector<int> ids;
    if (legacy_) {
      ids = sp_encode(sp_, chunk);
    } else if (chunk.compare(0, kSpace.size(), kSpace) == 0 || chunk[0] == ' ') {
      // Encode behind the unk piece so the leading space is kept, then drop the unk pieces.
      ids = sp_encode(sp_nodummy_, unk_piece_ + chunk);
      ids.erase(ids.begin(), ids.begin() + std::min(unk_len_, ids.size()));
    } else {
      ids = sp_encode(sp_nodummy_, chunk);
    }
    for (int i : ids) out.push_back(i), is_special.push_back(false);
  }
  // Non-legacy: a lone "▁" right before a special token is dropped.
  if (!legacy_ && out.size() > 1 && is_special[1] && piece(out[0]) == kSpace) out.erase(out.begin());
  return out;
}

std::string SentencePieceTokenizer::piece(int64_t id) const {
  if (id < 0 || id >= n_pieces_) {
    for (const auto& s : specials_)
      if (s.second == id) return s.first;
    throw Error("token id " + std::to_string(id) + " is out of range");
  }
  char buf[256];
  long n = shim().id_to_piece(sp_, static_cast<int>(id), buf, sizeof(buf));
  if (n < static_cast<long>(sizeof(buf))) return std::string(buf, n);
  std::string big(n + 1, '\0');
  shim().id_to_piece(sp_, static_cast<int>(id), big.data(), big.size());
  big.resize(n);
  return big;
}

std::string SentencePieceTokenizer::decode(const std::vector<int64_t>& ids) const {
  // Special tokens are written as their text; runs of ordinary pieces go through
  // SentencePiece (which also turns byte pieces back into bytes).
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    std::vector<char> buf(run.size() * 32 + 64);
    long n = shim().decode(sp_, run.data(), run.size(), buf.data(), buf.size());
    if (n >= static_cast<long>(buf.size())) {
      buf.resize(n + 1);
      n = shim().decode(sp_, run.data(), run.size(), buf.data(), buf.size());
    }
    if (n > 0) out.append(buf.data(), n);
    run.clear();
  };
  for (int64_t id : ids) {
    bool special = id < 0 || id >= n_pieces_;
    for (const auto& s : specials_) special |= s.second == id;
    if (special) {
      flush();
      out += piece(id);
    } else {
      run.push_back(static_cast<int>(id));
    }
  }
  flush();
  return out;
}

void train_sentencepiece(const std::string& text_file, const std::string& model_prefix, int vocab_size,
                         const std::string& model_type) {
  if (vocab_size < 16) throw Error("a SentencePiece vocabulary needs at least 16 pieces");
  if (model_type != "bpe" && model_type != "unigram") throw Error("SentencePiece model type must be bpe or unigram");
  // SentencePiece's trainer runs in its own small process (mechlens_spm_train beside
  // libmechlens.so, linked with libsentencepiece_train and not with libtorch): in this
  // process it would meet libtorch's protobuf, and behind RTLD_DEEPBIND its logging crashes.
  std::string bin = library_dir() + "/mechlens_spm_train";
  if (const char* env = std::getenv("MECHLENS_SPM_TRAIN")) bin = env;
  if (::access(bin.c_str(), X_OK) != 0) throw Error("cannot run the SentencePiece trainer " + bin);
  // Deterministic: every sentence, in file order, one thread; byte fallback so any text
  // encodes; <unk> 0, <s> 1, </s> 2 as LLaMA's tokenizer.model.
  std::vector<std::string> args = {bin,
                                   "--input=" + text_file,
                                   "--model_prefix=" + model_prefix,
                                   "--vocab_size=" + std::to_string(vocab_size),
                                   "--model_type=" + model_type,
                                   "--character_coverage=1.0",
                                   "--byte_fallback=true",
                                   "--num_threads=1",
                                   "--input_sentence_size=0",
                                   "--shuffle_input_sentence=false",
                                   "--max_sentence_length=100000",
                                   "--unk_id=0",
                                   "--bos_id=1",
                                   "--eos_id=2",
                                   "--pad_id=-1",
                                   "--minloglevel=2"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string log = model_prefix + ".log";
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw Error("cannot start the SentencePiece trainer " + bin);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string out = file_exists(log) ? read_file(log) : "";
  ::unlink(log.c_str());
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    while (!out.empty() && out.back() == '\n') out.pop_back();
    const size_t nl = out.rfind('\n');
    fail(text_file, "SentencePiece training failed: " + (nl == std::string::npos ? out : out.substr(nl + 1)));
  }
}

}  // namespace mechlens
