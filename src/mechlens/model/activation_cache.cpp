#include "mechlens/model/activation_cache.h"

#include "mechlens/core/error.h"

namespace mechlens {

void ActivationCache::set(const std::string& name, at::Tensor t) {
  auto it = index_.find(name);
  if (it != index_.end()) {
    tensors_[it->second] = std::move(t);
    return;
  }
  index_.emplace(name, names_.size());
  names_.push_back(name);
  tensors_.push_back(std::move(t));
}

bool ActivationCache::contains(const std::string& name) const { return index_.count(name) > 0; }

const at::Tensor& ActivationCache::at(const std::string& name) const {
  auto it = index_.find(name);
  if (it != index_.end()) return tensors_[it->second];
  throw Error("activation cache has no \"" + name + "\" (" + std::to_string(names_.size()) + " names cached)");
}

}  // namespace mechlens
