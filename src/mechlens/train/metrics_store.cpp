#include "mechlens/train/metrics_store.h"

#include <cmath>
#include <nlohmann/json.hpp>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"
#include "mechlens/core/sqlite_db.h"

namespace mechlens {

using Stmt = SqliteDb::Stmt;

MetricsStore::MetricsStore(const std::string& path, bool readonly)
    : path_(path), db_(std::make_unique<SqliteDb>(path, readonly)) {
  if (readonly) {
    for (const char* t : {"metrics", "analysis", "meta"})
      if (!db_->has_table(t)) fail(path, "not a mechlens metrics store (no table " + std::string(t) + ")");
    return;
  }
  db_->exec("CREATE TABLE IF NOT EXISTS metrics (step INTEGER NOT NULL, name TEXT NOT NULL, value REAL, "
            "PRIMARY KEY (step, name))");
  db_->exec("CREATE TABLE IF NOT EXISTS analysis (checkpoint INTEGER NOT NULL, name TEXT NOT NULL, value REAL, "
            "json TEXT, PRIMARY KEY (checkpoint, name))");
  db_->exec("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT)");
}

MetricsStore::~MetricsStore() = default;

void MetricsStore::add(int64_t step, const std::string& name, double value) { pending_.emplace_back(step, name, value); }

void MetricsStore::flush() {
  if (pending_.empty()) return;
  db_->exec("BEGIN");
  try {
    Stmt st(*db_, "INSERT OR REPLACE INTO metrics (step, name, value) VALUES (?, ?, ?)");
    for (auto& [step, name, v] : pending_) st.bind(1, step).bind(2, name).bind_finite(3, v).run();
  } catch (...) {
    db_->exec("ROLLBACK");
    throw;
  }
  db_->exec("COMMIT");
  pending_.clear();
}

void MetricsStore::truncate_after(int64_t step) {
  pending_.clear();
  Stmt(*db_, "DELETE FROM metrics WHERE step > ?").bind(1, step).run();
}

std::map<std::string, std::vector<std::pair<int64_t, double>>> MetricsStore::series() const {
  std::map<std::string, std::vector<std::pair<int64_t, double>>> out;
  Stmt st(*db_, "SELECT step, name, value FROM metrics ORDER BY name, step");
  while (st.step()) out[st.text_at(1)].emplace_back(st.int_at(0), st.null_at(2) ? NAN : st.double_at(2));
  return out;
}

std::vector<std::pair<int64_t, double>> MetricsStore::series(const std::string& name) const {
  std::vector<std::pair<int64_t, double>> out;
  Stmt st(*db_, "SELECT step, value FROM metrics WHERE name = ? ORDER BY step");
  st.bind(1, name);
  while (st.step()) out.emplace_back(st.int_at(0), st.null_at(1) ? NAN : st.double_at(1));
  return out;
}

void MetricsStore::export_jsonl(const std::string& path) const {
  std::string outs;
  Stmt st(*db_, "SELECT step, name, value FROM metrics ORDER BY step, name");
  nlohmann::json row;
  int64_t cur = -1;
  auto emit = [&] {
    if (cur >= 0) outs += row.dump() + "\n";
  };
  while (st.step()) {
    const int64_t s = st.int_at(0);
    if (s != cur) emit(), row = nlohmann::json{{"step", s}}, cur = s;
    const std::string n = st.text_at(1);
    if (st.null_at(2)) row[n] = nullptr;
    else row[n] = st.double_at(2);
  }
  emit();
  write_file_atomic(path, outs);
}

void MetricsStore::clear_analysis(const std::string& prefix) {
  Stmt(*db_, "DELETE FROM analysis WHERE substr(name, 1, ?) = ?")
      .bind(1, static_cast<int64_t>(prefix.size())).bind(2, prefix).run();
}

void MetricsStore::set_analysis(int64_t checkpoint, const std::string& name, double value) {
  Stmt(*db_, "INSERT OR REPLACE INTO analysis (checkpoint, name, value, json) VALUES (?, ?, ?, NULL)")
      .bind(1, checkpoint).bind(2, name).bind_finite(3, value).run();
}

void MetricsStore::set_analysis_json(int64_t checkpoint, const std::string& name, const std::string& json) {
  Stmt(*db_, "INSERT OR REPLACE INTO analysis (checkpoint, name, value, json) VALUES (?, ?, NULL, ?)")
      .bind(1, checkpoint).bind(2, name).bind(3, json).run();
}

std::map<std::string, std::vector<std::pair<int64_t, double>>> MetricsStore::analysis_series() const {
  std::map<std::string, std::vector<std::pair<int64_t, double>>> out;
  Stmt st(*db_, "SELECT checkpoint, name, value FROM analysis WHERE value IS NOT NULL ORDER BY name, checkpoint");
  while (st.step()) out[st.text_at(1)].emplace_back(st.int_at(0), st.double_at(2));
  return out;
}

void MetricsStore::set_meta(const std::string& key, const std::string& value) {
  Stmt(*db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)").bind(1, key).bind(2, value).run();
}

std::optional<std::string> MetricsStore::meta(const std::string& key) const {
  Stmt st(*db_, "SELECT value FROM meta WHERE key = ?");
  st.bind(1, key);
  if (st.step()) return st.text_at(0);
  return std::nullopt;
}

}  // namespace mechlens
