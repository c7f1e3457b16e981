#include "mechlens/model/activation_cache.h"

#include "mechlens/core/error.h"
#include "mechlens/loading/safetensors.h"

namespace mechlens {

void ActivationCache::set(const std::string& name, at::Tensor t) {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) {
      tensors_[i] = std::move(t);
      return;
    }
  names_.push_back(name);
  tensors_.push_back(std::move(t));
}

bool ActivationCache::contains(const std::string& name) const {
  for (const auto& n : names_)
    if (n == name) return true;
  return false;
}

const at::Tensor& ActivationCache::at(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return tensors_[i];
  throw Error("activation cache has no \"" + name + "\" (" + std::to_string(names_.size()) + " names cached)");
}

void ActivationCache::save(const std::string& path) const {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (size_t i = 0; i < names_.size(); ++i) out.push_back({names_[i], tensors_[i].to(at::kFloat)});
  save_safetensors(path, out);
}

}  // namespace mechlens
