#include "mechlens/model/hook_point.h"

#include <algorithm>

#include "mechlens/core/error.h"

namespace mechlens {

int HookPoint::add_forward(ForwardHook fn, bool permanent) {
  fwd_.push_back({next_id_, permanent, std::move(fn)});
  return next_id_++;
}

int HookPoint::add_backward(BackwardHook fn, bool permanent) {
  bwd_.push_back({next_id_, permanent, std::move(fn)});
  return next_id_++;
}

void HookPoint::remove(int id) {
  fwd_.erase(std::remove_if(fwd_.begin(), fwd_.end(), [&](const auto& e) { return e.id == id; }), fwd_.end());
  bwd_.erase(std::remove_if(bwd_.begin(), bwd_.end(), [&](const auto& e) { return e.id == id; }), bwd_.end());
}

void HookPoint::clear(bool including_permanent) {
  auto drop = [&](const auto& e) { return including_permanent || !e.permanent; };
  fwd_.erase(std::remove_if(fwd_.begin(), fwd_.end(), drop), fwd_.end());
  bwd_.erase(std::remove_if(bwd_.begin(), bwd_.end(), drop), bwd_.end());
}

at::Tensor HookPoint::run(at::Tensor x) {
  for (auto& e : fwd_) {
    at::Tensor y = e.fn(x, *this);
    if (!y.defined()) throw Error("hook on " + name_ + " returned an undefined tensor");
    if (y.sizes() != x.sizes())
      throw Error("hook on " + name_ + " changed the activation's shape; hooks must keep it");
    x = std::move(y);
  }
  if (!bwd_.empty() && !x.requires_grad()) {
    // No weight or input upstream needs a gradient, so nothing would reach this point:
    // make the activation itself a leaf that does, so the backward hooks fire.
    if (!at::GradMode::is_enabled())
      throw Error("backward hook on " + name_ + " cannot fire: gradients are switched off (no_grad) for this run");
    x = x.detach().requires_grad_(true);
  }
  if (!bwd_.empty()) {
    // Copy the hook list: the tensor hook may fire after hooks were reset.
    auto hooks = bwd_;
    const HookPoint* self = this;
    x.register_hook([hooks, self](const at::Tensor& g) -> at::Tensor {
      at::Tensor grad = g;
      for (const auto& e : hooks) {
        auto r = e.fn(grad, *self);
        if (r.has_value()) grad = *r;
      }
      return grad;
    });
  }
  return x;
}

}  // namespace mechlens
