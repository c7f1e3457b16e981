// A thin RAII layer over SQLite: every failure becomes a mechlens::Error naming the file.
#pragma once
#include <cstdint>
#include <string>

struct sqlite3;
struct sqlite3_stmt;

namespace mechlens {

class SqliteDb {
 public:
  // readonly: opens an existing file and never writes (a missing file is an Error).
  SqliteDb(const std::string& path, bool readonly);
  ~SqliteDb();
  SqliteDb(const SqliteDb&) = delete;
  SqliteDb& operator=(const SqliteDb&) = delete;

  class Stmt {
   public:
    Stmt(SqliteDb& db, const std::string& sql);
    ~Stmt();
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    Stmt& bind(int i, int64_t v);
    Stmt& bind(int i, double v);
    Stmt& bind(int i, const std::string& v);
    Stmt& bind_blob(int i, const void* data, size_t bytes);
    Stmt& bind_null(int i);
    Stmt& bind_finite(int i, double v);  // NULL when v is not finite
    bool step();  // true while a row is available; throws on error
    void run();   // step to completion, then reset
    void reset();
    int64_t int_at(int col) const;
    double double_at(int col) const;
    bool null_at(int col) const;
    std::string text_at(int col) const;
    std::string blob_at(int col) const;

   private:
    SqliteDb& db_;
    sqlite3_stmt* s_ = nullptr;
  };

  void exec(const std::string& sql);
  bool has_table(const std::string& name);
  const std::string& path() const { return path_; }
  [[noreturn]] void fail_here(const std::string& what) const;

 private:
  friend class Stmt;
  std::string path_;
  sqlite3* db_ = nullptr;
};

}  // namespace mechlens
