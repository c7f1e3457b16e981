// Small file and JSON helpers that turn every failure into a mechlens::Error naming the file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>

namespace mechlens {

using json = nlohmann::json;

std::string read_file(const std::string& path);
json read_json_file(const std::string& path);
bool file_exists(const std::string& path);
bool dir_exists(const std::string& path);
std::string join_path(const std::string& dir, const std::string& name);

// Writes via a temporary file in the same folder and renames it into place, so a
// failure never leaves a half-written file behind.
void write_file_atomic(const std::string& path, const std::string& bytes);

[[noreturn]] void throw_missing_key(const std::string& key, const std::string& where);
[[noreturn]] void throw_bad_key(const std::string& key, const std::string& where);

// Typed JSON field access with errors that name the file and the key.
template <class T>
T json_get(const json& j, const std::string& key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) throw_missing_key(key, where);
  try {
    return it->get<T>();
  } catch (const std::exception&) {
    throw_bad_key(key, where);
  }
}
template <class T>
T json_get_or(const json& j, const std::string& key, T dflt, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return dflt;
  try {
    return it->get<T>();
  } catch (const std::exception&) {
    throw_bad_key(key, where);
  }
}

}  // namespace mechlens
