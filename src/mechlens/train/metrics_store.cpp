#include "mechlens/train/metrics_store.h"

#include <sqlite3.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

namespace mechlens {

namespace {
// A prepared statement that finalizes itself.
struct Stmt {
  sqlite3_stmt* s = nullptr;
  Stmt(sqlite3* db, const char* sql, const std::string& where) {
    if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) fail(where, sqlite3_errmsg(db));
  }
  ~Stmt() { sqlite3_finalize(s); }
};
}  // namespace

MetricsStore::MetricsStore(const std::string& path) : path_(path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "cannot open";
    sqlite3_close(db_);
    db_ = nullptr;
    fail(path, msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec("CREATE TABLE IF NOT EXISTS metrics (step INTEGER NOT NULL, name TEXT NOT NULL, value REAL, "
         "PRIMARY KEY (step, name))");
    exec("CREATE TABLE IF NOT EXISTS analysis (checkpoint INTEGER NOT NULL, name TEXT NOT NULL, value REAL, "
         "json TEXT, PRIMARY KEY (checkpoint, name))");
    exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

MetricsStore::~MetricsStore() {
  if (db_) sqlite3_close(db_);
}

void MetricsStore::exec(const std::string& sql) const {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "error";
    sqlite3_free(err);
    // "file is not a database" and the like: name the file.
    fail(path_, msg);
  }
}

void MetricsStore::add(int64_t step, const std::string& name, double value) { pending_.emplace_back(step, name, value); }

void MetricsStore::flush() {
  if (pending_.empty()) return;
  exec("BEGIN");
  {
    Stmt st(db_, "INSERT OR REPLACE INTO metrics (step, name, value) VALUES (?, ?, ?)", path_);
    for (auto& [step, name, v] : pending_) {
      sqlite3_bind_int64(st.s, 1, step);
      sqlite3_bind_text(st.s, 2, name.c_str(), -1, SQLITE_TRANSIENT);
      if (std::isfinite(v)) sqlite3_bind_double(st.s, 3, v);
      else sqlite3_bind_null(st.s, 3);
      if (sqlite3_step(st.s) != SQLITE_DONE) {
        std::string msg = sqlite3_errmsg(db_);
        exec("ROLLBACK");
        fail(path_, msg);
      }
      sqlite3_reset(st.s);
    }
  }
  exec("COMMIT");
  pending_.clear();
}

void MetricsStore::truncate_after(int64_t step) {
  pending_.clear();
  exec("DELETE FROM metrics WHERE step > " + std::to_string(step));
}

std::map<std::string, std::vector<std::pair<int64_t, double>>> MetricsStore::series() const {
  std::map<std::string, std::vector<std::pair<int64_t, double>>> out;
  Stmt st(db_, "SELECT step, name, value FROM metrics ORDER BY name, step", path_);
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    double v = sqlite3_column_type(st.s, 2) == SQLITE_NULL ? NAN : sqlite3_column_double(st.s, 2);
    out[reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1))].emplace_back(sqlite3_column_int64(st.s, 0), v);
  }
  return out;
}

std::vector<std::pair<int64_t, double>> MetricsStore::series(const std::string& name) const {
  std::vector<std::pair<int64_t, double>> out;
  Stmt st(db_, "SELECT step, value FROM metrics WHERE name = ? ORDER BY step", path_);
  sqlite3_bind_text(st.s, 1, name.c_str(), -1, SQLITE_TRANSIENT);
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    double v = sqlite3_column_type(st.s, 1) == SQLITE_NULL ? NAN : sqlite3_column_double(st.s, 1);
    out.emplace_back(sqlite3_column_int64(st.s, 0), v);
  }
  return out;
}

void MetricsStore::export_jsonl(const std::string& path) const {
  std::string outs;
  Stmt st(db_, "SELECT step, name, value FROM metrics ORDER BY step, name", path_);
  nlohmann::json row;
  int64_t cur = -1;
  auto emit = [&] {
    if (cur >= 0) outs += row.dump() + "\n";
  };
  while (sqlite3_step(st.s) == SQLITE_ROW) {
    int64_t s = sqlite3_column_int64(st.s, 0);
    if (s != cur) emit(), row = nlohmann::json{{"step", s}}, cur = s;
    const char* n = reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1));
    if (sqlite3_column_type(st.s, 2) == SQLITE_NULL) row[n] = nullptr;
    else row[n] = sqlite3_column_double(st.s, 2);
  }
  emit();
  write_file_atomic(path, outs);
}

void MetricsStore::clear_analysis(const std::string& prefix) {
  Stmt st(db_, "DELETE FROM analysis WHERE substr(name, 1, ?) = ?", path_);
  sqlite3_bind_int(st.s, 1, static_cast<int>(prefix.size()));
  sqlite3_bind_text(st.s, 2, prefix.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) fail(path_, sqlite3_errmsg(db_));
}

void MetricsStore::set_analysis(int64_t checkpoint, const std::string& name, double value) {
  Stmt st(db_, "INSERT OR REPLACE INTO analysis (checkpoint, name, value, json) VALUES (?, ?, ?, NULL)", path_);
  sqlite3_bind_int64(st.s, 1, checkpoint);
  sqlite3_bind_text(st.s, 2, name.c_str(), -1, SQLITE_TRANSIENT);
  if (std::isfinite(value)) sqlite3_bind_double(st.s, 3, value);
  else sqlite3_bind_null(st.s, 3);
  if (sqlite3_step(st.s) != SQLITE_DONE) fail(path_, sqlite3_errmsg(db_));
}

void MetricsStore::set_analysis_json(int64_t checkpoint, const std::string& name, const std::string& json) {
  Stmt st(db_, "INSERT OR REPLACE INTO analysis (checkpoint, name, value, json) VALUES (?, ?, NULL, ?)", path_);
  sqlite3_bind_int64(st.s, 1, checkpoint);
  sqlite3_bind_text(st.s, 2, name.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 3, json.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) fail(path_, sqlite3_errmsg(db_));
}

std::map<std::string, std::vector<std::pair<int64_t, double>>> MetricsStore::analysis_series() const {
  std::map<std::string, std::vector<std::pair<int64_t, double>>> out;
  Stmt st(db_, "SELECT checkpoint, name, value FROM analysis WHERE value IS NOT NULL ORDER BY name, checkpoint",
          path_);
  while (sqlite3_step(st.s) == SQLITE_ROW)
    out[reinterpret_cast<const char*>(sqlite3_column_text(st.s, 1))].emplace_back(sqlite3_column_int64(st.s, 0),
                                                                                  sqlite3_column_double(st.s, 2));
  return out;
}

void MetricsStore::set_meta(const std::string& key, const std::string& value) {
  Stmt st(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", path_);
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st.s, 2, value.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) != SQLITE_DONE) fail(path_, sqlite3_errmsg(db_));
}

std::optional<std::string> MetricsStore::meta(const std::string& key) const {
  Stmt st(db_, "SELECT value FROM meta WHERE key = ?", path_);
  sqlite3_bind_text(st.s, 1, key.c_str(), -1, SQLITE_TRANSIENT);
  if (sqlite3_step(st.s) == SQLITE_ROW) return std::string(reinterpret_cast<const char*>(sqlite3_column_text(st.s, 0)));
  return std::nullopt;
}

}  // namespace mechlens
