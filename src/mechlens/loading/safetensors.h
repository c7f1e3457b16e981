// Our own safetensors reader and writer.
//
// The reader memory-maps the file, parses and validates the whole header up front
// (header length, JSON, dtypes, shapes, offsets inside the data section, sizes that
// match dtype x shape, no overlapping tensors), and only touches tensor bytes when a
// tensor is asked for. f32, f16, bf16 (and f64, integer and bool) tensors are read.
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mechlens {

struct SafetensorsEntry {
  std::string dtype;            // "F32", "BF16", ...
  at::ScalarType scalar_type;   // the matching ATen type
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // offsets into the data section
};

class SafetensorsFile {
 public:
  // Opens and validates; throws mechlens::Error naming the file on any problem.
  static std::shared_ptr<SafetensorsFile> open(const std::string& path);
  // Parses from bytes in memory (used by the fuzz tests); `name` is used in errors.
  static std::shared_ptr<SafetensorsFile> from_bytes(std::string bytes, const std::string& name);
  ~SafetensorsFile();

  const std::string& path() const { return path_; }
  std::vector<std::string> keys() const;  // sorted
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }
  const SafetensorsEntry& entry(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // A fresh, owned, contiguous tensor. If `to` is given the values are converted.
  at::Tensor get(const std::string& name) const;
  at::Tensor get(const std::string& name, at::ScalarType to) const;  // cast once from the mapping

 private:
  SafetensorsFile() = default;
  void parse(const std::string& where);

  std::string path_;
  const uint8_t* base_ = nullptr;  // whole file
  void release(const SafetensorsEntry& e) const;  // drops the tensor's mapped pages from RSS
  size_t size_ = 0;
  void* map_ = nullptr;            // mmap'ed region (nullptr when from_bytes)
  std::string owned_;              // bytes when from_bytes
  size_t data_offset_ = 0;
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Writes tensors (converted to contiguous CPU) with optional string metadata, atomically.
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Serialises to bytes (what save_safetensors writes).
std::string safetensors_bytes(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata = {});

const char* safetensors_dtype_name(at::ScalarType t);

}  // namespace mechlens
