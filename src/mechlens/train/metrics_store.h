// A run's metrics in SQLite (metrics.sqlite): one row per (step, name) for training
// metrics, one per (checkpoint, name) for analyses run over checkpoints, and key/value
// metadata. Rows are buffered and written in one transaction per flush(), so the file
// is consistent after a kill -9 at any moment.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mechlens {

class SqliteDb;

class MetricsStore {
 public:
  // Opens (creating the file and tables if needed, unless read-only); throws Error
  // naming the file.
  explicit MetricsStore(const std::string& path, bool readonly = false);
  ~MetricsStore();
  MetricsStore(const MetricsStore&) = delete;
  MetricsStore& operator=(const MetricsStore&) = delete;

  const std::string& path() const { return path_; }
  void add(int64_t step, const std::string& name, double value);  // buffered
  void flush();                                                   // one transaction
  // Deletes training rows with step > `step` (what a resumed run will redo).
  void truncate_after(int64_t step);

  // name -> [(step, value)] sorted by step.
  std::map<std::string, std::vector<std::pair<int64_t, double>>> series() const;
  std::vector<std::pair<int64_t, double>> series(const std::string& name) const;
  // Exports the training rows as JSON lines, one object per step: {"step": s, name: value, ...}.
  void export_jsonl(const std::string& path) const;

  // Analysis results: a number or a JSON value per (checkpoint step, name).
  void clear_analysis(const std::string& prefix);  // names starting with prefix
  void set_analysis(int64_t checkpoint, const std::string& name, double value);
  void set_analysis_json(int64_t checkpoint, const std::string& name, const std::string& json);
  std::map<std::string, std::vector<std::pair<int64_t, double>>> analysis_series() const;

  void set_meta(const std::string& key, const std::string& value);
  std::optional<std::string> meta(const std::string& key) const;

 private:
  std::string path_;
  std::unique_ptr<SqliteDb> db_;
  std::vector<std::tuple<int64_t, std::string, double>> pending_;
};

}  // namespace mechlens
