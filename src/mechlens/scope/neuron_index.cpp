#include "mechlens/scope/neuron_index.h"

#include <cmath>
#include <cstring>

#include "mechlens/core/error.h"
#include "mechlens/core/sqlite_db.h"

namespace mechlens {

using nlohmann::json;

namespace {

const char* dtype_name(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kLong: return "int64";
    case at::kInt: return "int32";
    default: return "";
  }
}
at::ScalarType dtype_of(const std::string& s, const std::string& where) {
  if (s == "float32") return at::kFloat;
  if (s == "float64") return at::kDouble;
  if (s == "int64") return at::kLong;
  if (s == "int32") return at::kInt;
  fail(where, "unknown dtype " + s + " in the resume state");
}

std::string tensor_bytes(const at::Tensor& t) {
  at::Tensor c = t.contiguous().cpu();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

at::Tensor tensor_from(const std::string& bytes, at::ScalarType dt, const std::vector<int64_t>& shape,
                       const std::string& where) {
  at::Tensor t = at::empty(shape, dt);
  if (static_cast<size_t>(t.numel() * t.element_size()) != bytes.size()) fail(where, "resume state has the wrong size");
  std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

const char* kSchema =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);"
    "CREATE TABLE IF NOT EXISTS docs (id INTEGER PRIMARY KEY, tokens BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS vocab (id INTEGER PRIMARY KEY, token TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS neurons (layer INTEGER, neuron INTEGER, max_act REAL, min_act REAL, mean REAL,"
    " frac_positive REAL, hist_exp INTEGER, hist BLOB, PRIMARY KEY (layer, neuron));"
    "CREATE TABLE IF NOT EXISTS examples (layer INTEGER, neuron INTEGER, rank INTEGER, doc INTEGER, pos INTEGER,"
    " act REAL, acts BLOB, PRIMARY KEY (layer, neuron, rank));"
    "CREATE TABLE IF NOT EXISTS logit_effects (layer INTEGER, neuron INTEGER, kind TEXT, rank INTEGER,"
    " token INTEGER, value REAL, PRIMARY KEY (layer, neuron, kind, rank));"
    "CREATE TABLE IF NOT EXISTS state (name TEXT PRIMARY KEY, dtype TEXT, shape TEXT, data BLOB);";

}  // namespace

// ---------------------------------------------------------------- writer

NeuronIndexWriter::NeuronIndexWriter(const std::string& path) : db_(std::make_unique<SqliteDb>(path, false)) {
  // The file is renamed into place only when complete, so only a process kill (not a
  // power cut) has to leave it consistent: the rollback journal does that without fsync.
  db_->exec("PRAGMA synchronous = OFF");
  db_->exec(kSchema);
}
NeuronIndexWriter::~NeuronIndexWriter() = default;

std::optional<json> NeuronIndexWriter::build_meta() {
  SqliteDb::Stmt st(*db_, "SELECT value FROM meta WHERE key = 'build'");
  if (!st.step()) return std::nullopt;
  try {
    return json::parse(st.text_at(0));
  } catch (const std::exception&) {
    db_->fail_here("meta 'build' is not JSON");
  }
}

bool NeuronIndexWriter::complete() {
  SqliteDb::Stmt st(*db_, "SELECT value FROM meta WHERE key = 'complete'");
  return st.step() && st.text_at(0) == "1";
}

void NeuronIndexWriter::begin(const json& build, const at::Tensor& docs, const std::vector<std::string>& vocab) {
  db_->exec("BEGIN");
  db_->exec("DELETE FROM meta; DELETE FROM docs; DELETE FROM vocab; DELETE FROM neurons; DELETE FROM examples;"
            " DELETE FROM logit_effects; DELETE FROM state;");
  {
    SqliteDb::Stmt st(*db_, "INSERT INTO meta (key, value) VALUES (?, ?)");
    st.bind(1, std::string("build")).bind(2, build.dump()).run();
    st.bind(1, std::string("format")).bind(2, std::string("mechlens-neuron-index 1")).run();
    st.bind(1, std::string("complete")).bind(2, std::string("0")).run();
  }
  {
    at::Tensor d = docs.to(at::kInt).contiguous();
    SqliteDb::Stmt st(*db_, "INSERT INTO docs (id, tokens) VALUES (?, ?)");
    for (int64_t i = 0; i < d.size(0); ++i) {
      at::Tensor row = d[i];
      st.bind(1, i).bind_blob(2, row.data_ptr(), row.numel() * sizeof(int32_t)).run();
    }
  }
  {
    SqliteDb::Stmt st(*db_, "INSERT INTO vocab (id, token) VALUES (?, ?)");
    for (size_t i = 0; i < vocab.size(); ++i) st.bind(1, static_cast<int64_t>(i)).bind(2, vocab[i]).run();
  }
  db_->exec("COMMIT");
}

void NeuronIndexWriter::save_state(int64_t done_docs, const std::vector<NeuronAccumulator>& layers) {
  db_->exec("BEGIN");
  try {
    SqliteDb::Stmt st(*db_, "INSERT OR REPLACE INTO state (name, dtype, shape, data) VALUES (?, ?, ?, ?)");
    for (size_t l = 0; l < layers.size(); ++l) {
      for (const auto& [name, t] : layers[l].state()) {
        const std::string bytes = tensor_bytes(t);
        st.bind(1, std::to_string(l) + "." + name).bind(2, std::string(dtype_name(t.scalar_type())))
            .bind(3, json(t.sizes().vec()).dump()).bind_blob(4, bytes.data(), bytes.size()).run();
      }
    }
    st.bind(1, std::string("done_docs")).bind(2, std::string("int64")).bind(3, std::string("[1]"));
    const int64_t d = done_docs;
    st.bind_blob(4, &d, sizeof d).run();
  } catch (...) {
    db_->exec("ROLLBACK");
    throw;
  }
  db_->exec("COMMIT");
}

int64_t NeuronIndexWriter::load_state(std::vector<NeuronAccumulator>& layers) {
  std::map<std::string, at::Tensor> all;
  SqliteDb::Stmt st(*db_, "SELECT name, dtype, shape, data FROM state");
  while (st.step()) {
    std::vector<int64_t> shape;
    try {
      shape = json::parse(st.text_at(2)).get<std::vector<int64_t>>();
    } catch (const std::exception&) {
      db_->fail_here("resume state has a malformed shape");
    }
    all[st.text_at(0)] = tensor_from(st.blob_at(3), dtype_of(st.text_at(1), db_->path()), shape, db_->path());
  }
  auto it = all.find("done_docs");
  if (it == all.end()) return 0;
  for (size_t l = 0; l < layers.size(); ++l) {
    std::map<std::string, at::Tensor> mine;
    const std::string prefix = std::to_string(l) + ".";
    for (auto& [name, t] : all)
      if (name.rfind(prefix, 0) == 0) mine[name.substr(prefix.size())] = t;
    layers[l].load_state(mine, db_->path());
  }
  return it->second[0].item<int64_t>();
}

void NeuronIndexWriter::finish(const std::vector<NeuronAccumulator>& layers, const std::vector<LogitEffects>& effects) {
  db_->exec("BEGIN");
  bool had_state = false;
  try {
    db_->exec("DELETE FROM neurons; DELETE FROM examples; DELETE FROM logit_effects;");
    SqliteDb::Stmt nst(*db_, "INSERT INTO neurons VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    SqliteDb::Stmt est(*db_, "INSERT INTO examples VALUES (?, ?, ?, ?, ?, ?, ?)");
    SqliteDb::Stmt lst(*db_, "INSERT INTO logit_effects VALUES (?, ?, ?, ?, ?, ?)");
    for (size_t l = 0; l < layers.size(); ++l) {
      const auto& a = layers[l];
      const int64_t L = static_cast<int64_t>(l);
      at::Tensor mean = a.mean(), fpos = a.frac_positive(), mx = a.max(), mn = a.min();
      at::Tensor hist = a.hist_counts().contiguous(), hexp = a.hist_exponent();
      at::Tensor tact = a.top_act(), tdoc = a.top_doc(), tpos = a.top_pos();
      at::Tensor tacts = a.top_acts().permute({2, 0, 1}).contiguous();  // [n, k, ctx]
      auto mean_a = mean.accessor<double, 1>(), fpos_a = fpos.accessor<double, 1>();
      auto mx_a = mx.accessor<double, 1>(), mn_a = mn.accessor<double, 1>();
      auto hexp_a = hexp.accessor<int64_t, 1>();
      auto tact_a = tact.accessor<float, 2>();
      auto tdoc_a = tdoc.accessor<int64_t, 2>(), tpos_a = tpos.accessor<int64_t, 2>();
      for (int64_t n = 0; n < a.n_neurons(); ++n) {
        at::Tensor h = hist[n];
        nst.bind(1, L).bind(2, n).bind(3, mx_a[n]).bind(4, mn_a[n]).bind(5, mean_a[n]).bind(6, fpos_a[n])
            .bind(7, hexp_a[n]).bind_blob(8, h.data_ptr(), h.numel() * sizeof(int64_t)).run();
        for (int64_t r = 0; r < tact.size(0); ++r) {
          if (tdoc_a[r][n] < 0) break;
          at::Tensor row = tacts[n][r];
          est.bind(1, L).bind(2, n).bind(3, r).bind(4, tdoc_a[r][n]).bind(5, tpos_a[r][n])
              .bind(6, static_cast<double>(tact_a[r][n])).bind_blob(7, row.data_ptr(), row.numel() * sizeof(float)).run();
        }
      }
      if (l < effects.size()) {
        const auto& e = effects[l];
        auto put = [&](const at::Tensor& ids, const at::Tensor& vals, const std::string& kind) {
          at::Tensor i = ids.contiguous(), v = vals.to(at::kDouble).contiguous();
          auto ia = i.accessor<int64_t, 2>();
          auto va = v.accessor<double, 2>();
          for (int64_t n = 0; n < i.size(0); ++n)
            for (int64_t r = 0; r < i.size(1); ++r)
              lst.bind(1, L).bind(2, n).bind(3, kind).bind(4, r).bind(5, ia[n][r]).bind(6, va[n][r]).run();
        };
        put(e.top_ids, e.top_values, "top");
        put(e.bottom_ids, e.bottom_values, "bottom");
      }
    }
    had_state = SqliteDb::Stmt(*db_, "SELECT 1 FROM state LIMIT 1").step();
    db_->exec("DELETE FROM state");
    db_->exec("UPDATE meta SET value = '1' WHERE key = 'complete'");
  } catch (...) {
    db_->exec("ROLLBACK");
    throw;
  }
  db_->exec("COMMIT");
  if (had_state) db_->exec("VACUUM");  // give back the resume state's pages
}

// ---------------------------------------------------------------- reader

NeuronIndex::NeuronIndex(const std::string& path) : path_(path) {
  db_ = std::make_unique<SqliteDb>(path, true);
  for (const char* t : {"meta", "docs", "vocab", "neurons", "examples", "logit_effects"})
    if (!db_->has_table(t)) fail(path, "not a mechlens neuron index (no table " + std::string(t) + ")");
  std::map<std::string, std::string> meta;
  {
    SqliteDb::Stmt st(*db_, "SELECT key, value FROM meta");
    while (st.step()) meta[st.text_at(0)] = st.text_at(1);
  }
  if (meta["complete"] != "1") fail(path, "the neuron index is unfinished (resume its build with the same command)");
  try {
    build_ = json::parse(meta["build"]);
    n_layers_ = build_.at("n_layers").get<int64_t>();
    n_neurons_ = build_.at("n_neurons").get<int64_t>();
    n_docs_ = build_.at("n_docs").get<int64_t>();
  } catch (const std::exception&) {
    fail(path, "meta 'build' is missing or malformed");
  }
  SqliteDb::Stmt st(*db_, "SELECT id, token FROM vocab ORDER BY id");
  while (st.step()) {
    if (st.int_at(0) != static_cast<int64_t>(vocab_.size())) fail(path, "vocab ids are not 0..n-1");
    vocab_.push_back(st.text_at(1));
  }
}
NeuronIndex::~NeuronIndex() = default;

std::string NeuronIndex::token(int64_t id) const {
  return id >= 0 && id < static_cast<int64_t>(vocab_.size()) ? vocab_[id] : "<" + std::to_string(id) + ">";
}

std::vector<int64_t> NeuronIndex::doc_tokens(int64_t doc) const {
  std::lock_guard<std::mutex> lock(mu_);
  SqliteDb::Stmt st(*db_, "SELECT tokens FROM docs WHERE id = ?");
  st.bind(1, doc);
  if (!st.step()) fail(path_, "no document " + std::to_string(doc));
  const std::string b = st.blob_at(0);
  std::vector<int64_t> out(b.size() / sizeof(int32_t));
  for (size_t i = 0; i < out.size(); ++i) {
    int32_t v;
    std::memcpy(&v, b.data() + i * sizeof v, sizeof v);
    out[i] = v;
  }
  return out;
}

NeuronRecord NeuronIndex::neuron(int64_t layer, int64_t index) const {
  if (layer < 0 || layer >= n_layers_) fail("", "layer " + std::to_string(layer) + " out of range [0, " + std::to_string(n_layers_) + ")");
  if (index < 0 || index >= n_neurons_)
    fail("", "neuron " + std::to_string(index) + " out of range [0, " + std::to_string(n_neurons_) + ")");
  NeuronRecord r;
  r.layer = layer, r.neuron = index;
  std::vector<std::pair<int64_t, int64_t>> doc_pos;
  {
    std::lock_guard<std::mutex> lock(mu_);
    SqliteDb::Stmt st(*db_, "SELECT max_act, min_act, mean, frac_positive, hist_exp, hist FROM neurons WHERE layer = ? AND neuron = ?");
    st.bind(1, layer).bind(2, index);
    if (!st.step()) fail(path_, "neuron " + std::to_string(layer) + "/" + std::to_string(index) + " is missing");
    r.max_act = st.double_at(0), r.min_act = st.double_at(1), r.mean = st.double_at(2), r.frac_positive = st.double_at(3);
    const int64_t e = st.int_at(4);
    const std::string hb = st.blob_at(5);
    std::vector<int64_t> counts(hb.size() / sizeof(int64_t));
    std::memcpy(counts.data(), hb.data(), counts.size() * sizeof(int64_t));
    const int64_t B = static_cast<int64_t>(counts.size());
    int64_t lo = 0, hi = B;
    while (lo < hi && counts[lo] == 0) ++lo;
    while (hi > lo && counts[hi - 1] == 0) --hi;
    const double R = std::ldexp(1.0, static_cast<int>(e));
    for (int64_t i = lo; i <= hi; ++i) r.edges.push_back(-R + static_cast<double>(i) * 2.0 * R / static_cast<double>(B));
    r.counts.assign(counts.begin() + lo, counts.begin() + hi);

    SqliteDb::Stmt ex(*db_, "SELECT doc, pos, act, acts FROM examples WHERE layer = ? AND neuron = ? ORDER BY rank");
    ex.bind(1, layer).bind(2, index);
    while (ex.step()) {
      IndexedExample x;
      x.doc = ex.int_at(0), x.pos = ex.int_at(1), x.act = ex.double_at(2);
      const std::string ab = ex.blob_at(3);
      x.acts.resize(ab.size() / sizeof(float));
      std::memcpy(x.acts.data(), ab.data(), x.acts.size() * sizeof(float));
      r.examples.push_back(std::move(x));
    }
    SqliteDb::Stmt lt(*db_, "SELECT kind, token, value FROM logit_effects WHERE layer = ? AND neuron = ? ORDER BY kind, rank");
    lt.bind(1, layer).bind(2, index);
    while (lt.step()) (lt.text_at(0) == "top" ? r.top : r.bottom).push_back({lt.int_at(1), lt.double_at(2)});
  }
  for (auto& x : r.examples) x.tokens = doc_tokens(x.doc);
  return r;
}

json neuron_json(const NeuronRecord& r, const NeuronIndex& index) {
  auto tv = [&](const std::vector<TokenValue>& v) {
    json a = json::array();
    for (const auto& t : v) a.push_back({{"token", index.token(t.id)}, {"id", t.id}, {"value", t.value}});
    return a;
  };
  json ex = json::array();
  for (const auto& e : r.examples) {
    std::vector<std::string> toks;
    for (int64_t id : e.tokens) toks.push_back(index.token(id));
    ex.push_back({{"doc", e.doc}, {"pos", e.pos}, {"act", e.act}, {"tokens", toks}, {"ids", e.tokens}, {"acts", e.acts}});
  }
  return {{"layer", r.layer},
          {"neuron", r.neuron},
          {"hook", index.build().value("hook", "")},
          {"max_act", r.max_act},
          {"min_act", r.min_act},
          {"mean", r.mean},
          {"frac_positive", r.frac_positive},
          {"histogram", {{"edges", r.edges}, {"counts", r.counts}}},
          {"examples", ex},
          {"logit_effects", {{"top", tv(r.top)}, {"bottom", tv(r.bottom)}}}};
}

}  // namespace mechlens
