#include <cerrno>
#include "mechlens/loading/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

namespace mechlens {

namespace {

constexpr uint64_t kMaxHeader = 100ull << 20;  // the format's own limit is 100 MB

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  size_t size;
};
const DtypeInfo kDtypes[] = {
    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},   {"BF16", at::kBFloat16, 2},
    {"F64", at::kDouble, 8}, {"I64", at::kLong, 8},   {"I32", at::kInt, 4},
    {"I16", at::kShort, 2},  {"I8", at::kChar, 1},    {"U8", at::kByte, 1},
    {"BOOL", at::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& s) {
  for (const auto& d : kDtypes)
    if (s == d.name) return &d;
  return nullptr;
}

}  // namespace

const char* safetensors_dtype_name(at::ScalarType t) {
  for (const auto& d : kDtypes)
    if (d.type == t) return d.name;
  throw Error(std::string("safetensors: unsupported dtype ") + c10::toString(t));
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  if (dir_exists(path)) fail(path, "is a directory, expected a .safetensors file");
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    if (errno == ENOENT) fail_not_found(path, "file not found");
    fail(path, "cannot open file (unreadable)");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, "cannot stat file");
  }
  f->size_ = static_cast<size_t>(st.st_size);
  if (f->size_ < 8) {
    ::close(fd);
    fail(path, "truncated safetensors file (" + std::to_string(f->size_) + " bytes, need at least 8)");
  }
  void* m = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) fail(path, "cannot memory-map file");
  f->map_ = m;
  f->base_ = static_cast<const uint8_t*>(m);
  f->parse(path);
  return f;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::from_bytes(std::string bytes, const std::string& name) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = name;
  f->owned_ = std::move(bytes);
  f->base_ = reinterpret_cast<const uint8_t*>(f->owned_.data());
  f->size_ = f->owned_.size();
  if (f->size_ < 8) fail(name, "truncated safetensors file (" + std::to_string(f->size_) + " bytes, need at least 8)");
  f->parse(name);
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, size_);
}

void SafetensorsFile::parse(const std::string& where) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | base_[i];
  if (n > kMaxHeader) fail(where, "safetensors header length " + std::to_string(n) + " is larger than 100 MB; corrupt file");
  if (n > size_ - 8)
    fail(where, "safetensors header length " + std::to_string(n) + " runs past the end of the file (" +
                    std::to_string(size_) + " bytes); truncated or corrupt");
  data_offset_ = 8 + n;
  const uint64_t data_size = size_ - data_offset_;
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(reinterpret_cast<const char*>(base_ + 8), reinterpret_cast<const char*>(base_ + 8 + n));
  } catch (const std::exception& e) {
    fail(where, "safetensors header is not valid JSON");
  }
  if (!header.is_object()) fail(where, "safetensors header is not a JSON object");
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const auto& v = it.value();
    if (key == "__metadata__") {
      if (!v.is_object()) fail(where, "__metadata__ is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string()) fail(where, "__metadata__ value for \"" + m.key() + "\" is not a string");
        metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string ctx = "tensor \"" + key + "\"";
    if (!v.is_object()) fail(where, ctx + ": header entry is not an object");
    auto dt = v.find("dtype");
    auto sh = v.find("shape");
    auto off = v.find("data_offsets");
    if (dt == v.end() || !dt->is_string()) fail(where, ctx + ": missing or non-string dtype");
    if (sh == v.end() || !sh->is_array()) fail(where, ctx + ": missing or non-array shape");
    if (off == v.end() || !off->is_array() || off->size() != 2) fail(where, ctx + ": data_offsets must be [begin, end]");
    const DtypeInfo* info = find_dtype(dt->get<std::string>());
    if (!info) fail(where, ctx + ": unsupported dtype " + dt->get<std::string>());
    SafetensorsEntry e;
    e.dtype = info->name;
    e.scalar_type = info->type;
    uint64_t numel = 1;
    for (const auto& d : *sh) {
      if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
        fail(where, ctx + ": shape entries must be non-negative integers");
      uint64_t dim = d.get<uint64_t>();
      if (dim > (1ull << 40) || (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / 8 / dim))
        fail(where, ctx + ": shape is absurdly large");
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    for (const auto& o : *off)
      if (!o.is_number_unsigned() && !(o.is_number_integer() && o.get<int64_t>() >= 0))
        fail(where, ctx + ": data_offsets must be non-negative integers");
    e.begin = (*off)[0].get<uint64_t>();
    e.end = (*off)[1].get<uint64_t>();
    if (e.begin > e.end) fail(where, ctx + ": data_offsets begin > end");
    if (e.end > data_size)
      fail(where, ctx + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                      "] run past the end of the file (data section is " + std::to_string(data_size) +
                      " bytes); truncated?");
    if (e.end - e.begin != numel * info->size)
      fail(where, ctx + ": " + std::to_string(e.end - e.begin) + " bytes do not match dtype " + e.dtype +
                      " and shape (" + std::to_string(numel * info->size) + " bytes expected)");
    ranges.push_back({e.begin, e.end});
    entries_.emplace(key, std::move(e));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second) fail(where, "two tensors overlap in the data section; corrupt file");
}

std::vector<std::string> SafetensorsFile::keys() const {
  std::vector<std::string> k;
  for (const auto& e : entries_) k.push_back(e.first);
  return k;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) fail(path_, "no tensor named \"" + name + "\"");
  return it->second;
}

void SafetensorsFile::release(const SafetensorsEntry& e) const {
  // The mapping is read-only and private: dropping its pages frees them from this
  // process's resident set (the page cache keeps them), so a loaded model does not also
  // hold the file it came from. Only whole pages inside the tensor's range.
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t a = reinterpret_cast<uintptr_t>(base_ + data_offset_ + e.begin);
  const uintptr_t b = reinterpret_cast<uintptr_t>(base_ + data_offset_ + e.end);
  const uintptr_t lo = (a + page - 1) / page * page, hi = b / page * page;
  if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

at::Tensor SafetensorsFile::get(const std::string& name) const {
  const auto& e = entry(name);
  at::Tensor t = at::empty(e.shape, at::TensorOptions().dtype(e.scalar_type));
  if (e.end > e.begin) std::memcpy(t.data_ptr(), base_ + data_offset_ + e.begin, e.end - e.begin);
  release(e);
  return t;
}

at::Tensor SafetensorsFile::get(const std::string& name, at::ScalarType to) const {
  const auto& e = entry(name);
  if (e.scalar_type == to || e.end == e.begin) {
    at::Tensor t = get(name);
    return t.scalar_type() == to ? t : t.to(to);
  }
  // Cast once, straight from the mapping: no copy in the file's dtype first.
  void* src = const_cast<uint8_t*>(base_ + data_offset_ + e.begin);
  at::Tensor t = at::from_blob(src, e.shape, at::TensorOptions().dtype(e.scalar_type)).to(to);
  release(e);
  return t;
}

std::string safetensors_bytes(const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                              const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> contig;
  uint64_t offset = 0;
  for (const auto& [name, t0] : tensors) {
    at::Tensor t = t0.detach().to(at::kCPU).contiguous();
    uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", safetensors_dtype_name(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    contig.push_back(t);
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // keep the data section 8-byte aligned
  std::string out;
  out.reserve(8 + h.size() + offset);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += h;
  for (const auto& t : contig)
    out.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * t.element_size());
  return out;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  write_file_atomic(path, safetensors_bytes(tensors, metadata));
}

}  // namespace mechlens
