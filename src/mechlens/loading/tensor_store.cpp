#include "mechlens/loading/tensor_store.h"

#include <sstream>

#include "mechlens/core/error.h"
#include "mechlens/core/io.h"

namespace mechlens {

namespace {
std::string shape_str(at::IntArrayRef s) {
  std::ostringstream o;
  o << "[";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << "]";
  return o.str();
}
}  // namespace

TensorStore TensorStore::from_file(std::shared_ptr<SafetensorsFile> f) {
  TensorStore s;
  s.where_name_ = f->path();
  for (const auto& k : f->keys()) s.where_[k] = 0;
  s.files_.push_back(std::move(f));
  return s;
}

TensorStore TensorStore::open_folder(const std::string& dir) {
  const std::string single = join_path(dir, "model.safetensors");
  const std::string index = join_path(dir, "model.safetensors.index.json");
  if (file_exists(single)) return from_file(SafetensorsFile::open(single));
  if (!file_exists(index)) {
    if (file_exists(join_path(dir, "pytorch_model.bin")))
      fail(dir, "only pytorch_model.bin found; mechlens reads safetensors (convert with safetensors' convert script)");
    fail(dir, "no model.safetensors or model.safetensors.index.json");
  }
  json j = read_json_file(index);
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    fail(index, "missing \"weight_map\" object");
  TensorStore s;
  s.where_name_ = dir;
  std::map<std::string, size_t> shard_of_file;
  for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
    if (!it.value().is_string()) fail(index, "weight_map entry for \"" + it.key() + "\" is not a file name");
    std::string shard = it.value().get<std::string>();
    if (shard.find('/') != std::string::npos || shard.find("..") != std::string::npos)
      fail(index, "weight_map names a file outside the folder: " + shard);
    auto f = shard_of_file.find(shard);
    if (f == shard_of_file.end()) {
      s.files_.push_back(SafetensorsFile::open(join_path(dir, shard)));
      f = shard_of_file.emplace(shard, s.files_.size() - 1).first;
    }
    if (!s.files_[f->second]->contains(it.key()))
      fail(join_path(dir, shard), "index says it holds \"" + it.key() + "\" but it does not");
    s.where_[it.key()] = f->second;
  }
  return s;
}

std::vector<std::string> TensorStore::keys() const {
  std::vector<std::string> k;
  for (const auto& e : where_) k.push_back(e.first);
  return k;
}

at::Tensor TensorStore::get(const std::string& name, const std::vector<int64_t>& expect) const {
  auto it = where_.find(name);
  if (it == where_.end()) fail(where_name_, "weights do not match the config: missing tensor \"" + name + "\"");
  const auto& f = files_[it->second];
  const auto& e = f->entry(name);
  if (!expect.empty() && e.shape != expect)
    fail(f->path(), "weights do not match the config: \"" + name + "\" has shape " + shape_str(e.shape) +
                        ", config implies " + shape_str(expect));
  if (!at::isFloatingType(e.scalar_type))
    fail(f->path(), "tensor \"" + name + "\" has dtype " + e.dtype + "; weights must be floating point");
  // Kept in the checkpoint's dtype: the model casts to its own dtype once, so a
  // bfloat16 checkpoint loaded as bfloat16 never exists in float32.
  return f->get(name);
}

}  // namespace mechlens
