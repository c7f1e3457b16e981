#include "mechlens/core/sqlite_db.h"

#include <sqlite3.h>

#include <cmath>

#include "mechlens/core/error.h"

namespace mechlens {

SqliteDb::SqliteDb(const std::string& path, bool readonly) : path_(path) {
  const int flags = readonly ? (SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX)
                             : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX);
  if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "cannot open";
    sqlite3_close(db_);
    db_ = nullptr;
    fail(path, msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  // A file that is not a database only shows itself on the first read.
  try {
    exec("SELECT count(*) FROM sqlite_master");
  } catch (...) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw;
  }
}

SqliteDb::~SqliteDb() {
  if (db_) sqlite3_close(db_);
}

void SqliteDb::fail_here(const std::string& what) const { fail(path_, what); }

void SqliteDb::exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "error";
    sqlite3_free(err);
    fail(path_, msg);
  }
}

bool SqliteDb::has_table(const std::string& name) {
  Stmt st(*this, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?");
  st.bind(1, name);
  return st.step();
}

SqliteDb::Stmt::Stmt(SqliteDb& db, const std::string& sql) : db_(db) {
  if (sqlite3_prepare_v2(db.db_, sql.c_str(), -1, &s_, nullptr) != SQLITE_OK) db.fail_here(sqlite3_errmsg(db.db_));
}
SqliteDb::Stmt::~Stmt() { sqlite3_finalize(s_); }

SqliteDb::Stmt& SqliteDb::Stmt::bind(int i, int64_t v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
SqliteDb::Stmt& SqliteDb::Stmt::bind(int i, double v) {
  sqlite3_bind_double(s_, i, v);
  return *this;
}
SqliteDb::Stmt& SqliteDb::Stmt::bind(int i, const std::string& v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
SqliteDb::Stmt& SqliteDb::Stmt::bind_blob(int i, const void* data, size_t bytes) {
  sqlite3_bind_blob64(s_, i, data, bytes, SQLITE_TRANSIENT);
  return *this;
}

SqliteDb::Stmt& SqliteDb::Stmt::bind_null(int i) {
  sqlite3_bind_null(s_, i);
  return *this;
}
SqliteDb::Stmt& SqliteDb::Stmt::bind_finite(int i, double v) { return std::isfinite(v) ? bind(i, v) : bind_null(i); }

bool SqliteDb::Stmt::step() {
  const int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string msg = sqlite3_errmsg(db_.db_);
  sqlite3_reset(s_);
  db_.fail_here(msg);
}

void SqliteDb::Stmt::run() {
  while (step()) {
  }
  reset();
}
void SqliteDb::Stmt::reset() {
  sqlite3_reset(s_);
  sqlite3_clear_bindings(s_);
}
int64_t SqliteDb::Stmt::int_at(int col) const { return sqlite3_column_int64(s_, col); }
double SqliteDb::Stmt::double_at(int col) const { return sqlite3_column_double(s_, col); }
bool SqliteDb::Stmt::null_at(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }
std::string SqliteDb::Stmt::text_at(int col) const {
  const unsigned char* t = sqlite3_column_text(s_, col);
  return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(s_, col)) : std::string();
}
std::string SqliteDb::Stmt::blob_at(int col) const {
  const void* b = sqlite3_column_blob(s_, col);
  return b ? std::string(static_cast<const char*>(b), sqlite3_column_bytes(s_, col)) : std::string();
}

}  // namespace mechlens
