// ActivationCache: activations by TransformerLens hook name, in execution order.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace mechlens {

class ActivationCache {
 public:
  void set(const std::string& name, at::Tensor t);
  bool contains(const std::string& name) const;
  // Throws mechlens::Error listing what is cached if `name` is not.
  const at::Tensor& at(const std::string& name) const;
  const at::Tensor& operator[](const std::string& name) const { return at(name); }
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }

 private:
  std::vector<std::string> names_;
  std::vector<at::Tensor> tensors_;
  std::unordered_map<std::string, size_t> index_;
};

}  // namespace mechlens
