// The weights of one model folder: a single model.safetensors or the shards named by
// model.safetensors.index.json, behind one name -> tensor lookup.
#pragma once
#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "mechlens/loading/safetensors.h"

namespace mechlens {

class TensorStore {
 public:
  // Opens DIR/model.safetensors, or DIR/model.safetensors.index.json and its shards.
  static TensorStore open_folder(const std::string& dir);
  static TensorStore from_file(std::shared_ptr<SafetensorsFile> f);

  bool contains(const std::string& name) const { return where_.count(name) > 0; }
  std::vector<std::string> keys() const;
  // An owned copy of a tensor in the checkpoint's (floating) dtype; throws an Error
  // naming the folder if it is missing, not floating point, or its shape is not
  // `expect` (when given).
  at::Tensor get(const std::string& name, const std::vector<int64_t>& expect = {}) const;
  const std::string& where() const { return where_name_; }

 private:
  std::string where_name_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> where_;
};

}  // namespace mechlens
