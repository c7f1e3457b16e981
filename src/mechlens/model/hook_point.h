// HookPoint: a named place in the forward pass where an activation can be read,
// replaced, or have its gradient observed. With nothing attached, calling it returns
// its input: one branch on an empty vector, no copy, no allocation, no string work.
#pragma once
#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mechlens {

class HookPoint;

// Forward hook: receives the activation; returns a tensor to use downstream instead
// (return the argument unchanged to only read it).
using ForwardHook = std::function<at::Tensor(const at::Tensor& activation, const HookPoint& hook)>;
// Backward hook: receives the gradient of the loss with respect to the activation;
// may return a replacement gradient.
using BackwardHook =
    std::function<std::optional<at::Tensor>(const at::Tensor& grad, const HookPoint& hook)>;

class HookPoint {
 public:
  explicit HookPoint(std::string name) : name_(std::move(name)) {}
  HookPoint(const HookPoint&) = delete;
  HookPoint& operator=(const HookPoint&) = delete;

  const std::string& name() const { return name_; }
  bool active() const { return !fwd_.empty() || !bwd_.empty(); }

  at::Tensor operator()(at::Tensor x) {
    if (fwd_.empty() && bwd_.empty()) return x;
    return run(std::move(x));
  }

  // Returns an id usable with remove().
  int add_forward(ForwardHook fn, bool permanent = false);
  int add_backward(BackwardHook fn, bool permanent = false);
  void remove(int id);
  // Removes temporary hooks, and permanent ones too if asked.
  void clear(bool including_permanent = false);

 private:
  at::Tensor run(at::Tensor x);
  template <class F>
  struct Entry {
    int id;
    bool permanent;
    F fn;
  };
  std::string name_;
  std::vector<Entry<ForwardHook>> fwd_;
  std::vector<Entry<BackwardHook>> bwd_;
  int next_id_ = 1;
};

}  // namespace mechlens
