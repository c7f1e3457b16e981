#include "mechlens/train/optimizer.h"

#include <torch/torch.h>

#include "mechlens/core/error.h"

namespace mechlens {

void OptimizerConfig::validate(const std::string& where) const {
  if (kind != "adamw" && kind != "adam" && kind != "sgd") fail(where, "optimizer must be adamw, adam or sgd, not " + kind);
  if (!(lr >= 0)) fail(where, "learning rate must be >= 0");
  if (!(weight_decay >= 0)) fail(where, "weight decay must be >= 0");
  if (!(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1)) fail(where, "betas must lie in [0, 1)");
  if (!(eps >= 0)) fail(where, "eps must be >= 0");
  if (!(momentum >= 0)) fail(where, "momentum must be >= 0");
}

struct Optimizer::Impl {
  std::unique_ptr<torch::optim::Optimizer> opt;
};

Optimizer::Optimizer(const OptimizerConfig& cfg, NamedTensors params)
    : impl_(std::make_unique<Impl>()), cfg_(cfg), params_(std::move(params)) {
  cfg.validate("optimizer");
  std::vector<at::Tensor> ts;
  for (auto& [n, t] : params_) {
    if (!t.requires_grad()) throw Error("optimizer: parameter " + n + " does not require grad");
    ts.push_back(t);
  }
  if (cfg.kind == "adamw") {
    impl_->opt = std::make_unique<torch::optim::AdamW>(
        ts, torch::optim::AdamWOptions(cfg.lr)
                .betas({cfg.beta1, cfg.beta2})
                .eps(cfg.eps)
                .weight_decay(cfg.weight_decay));
  } else if (cfg.kind == "adam") {
    impl_->opt = std::make_unique<torch::optim::Adam>(
        ts, torch::optim::AdamOptions(cfg.lr).betas({cfg.beta1, cfg.beta2}).eps(cfg.eps).weight_decay(cfg.weight_decay));
  } else {
    impl_->opt = std::make_unique<torch::optim::SGD>(
        ts, torch::optim::SGDOptions(cfg.lr).momentum(cfg.momentum).weight_decay(cfg.weight_decay));
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() { impl_->opt->zero_grad(); }

double Optimizer::clip_grad_norm(double max_norm) {
  std::vector<at::Tensor> ts;
  for (auto& [n, t] : params_) ts.push_back(t);
  if (max_norm > 0) return torch::nn::utils::clip_grad_norm_(ts, max_norm);
  double sq = 0;
  for (auto& t : ts)
    if (t.grad().defined()) sq += t.grad().to(at::kDouble).pow(2).sum().item<double>();
  return std::sqrt(sq);
}

void Optimizer::step(double lr) {
  for (auto& g : impl_->opt->param_groups()) g.options().set_lr(lr);
  impl_->opt->step();
}

namespace {
std::string key_of(const at::Tensor& t) { return c10::guts::to_string(t.unsafeGetTensorImpl()); }
at::Tensor step_tensor(int64_t s) { return at::full({1}, s, at::kLong); }
}  // namespace

StateDict Optimizer::state() const {
  StateDict out;
  auto& st = impl_->opt->state();
  for (auto& [n, t] : params_) {
    auto it = st.find(key_of(t));
    if (it == st.end()) continue;  // no step taken yet
    if (cfg_.kind == "adamw") {
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      out[n + ".step"] = step_tensor(s.step());
      out[n + ".exp_avg"] = s.exp_avg();
      out[n + ".exp_avg_sq"] = s.exp_avg_sq();
    } else if (cfg_.kind == "adam") {
      auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
      out[n + ".step"] = step_tensor(s.step());
      out[n + ".exp_avg"] = s.exp_avg();
      out[n + ".exp_avg_sq"] = s.exp_avg_sq();
    } else {
      auto& s = static_cast<torch::optim::SGDParamState&>(*it->second);
      if (s.momentum_buffer().defined()) out[n + ".momentum_buffer"] = s.momentum_buffer();
    }
  }
  return out;
}

void Optimizer::load_state(const StateDict& s, const std::string& where) {
  auto& st = impl_->opt->state();
  st.clear();
  auto get = [&](const std::string& name, const at::Tensor& like) {
    auto it = s.find(name);
    if (it == s.end()) fail(where, "optimizer state lacks " + name);
    if (it->second.sizes() != like.sizes()) fail(where, "optimizer state " + name + " has the wrong shape");
    return it->second.to(like.scalar_type()).clone();
  };
  for (auto& [n, t] : params_) {
    const bool has = s.count(n + ".step") || s.count(n + ".momentum_buffer");
    if (!has) continue;
    if (cfg_.kind == "adamw" || cfg_.kind == "adam") {
      const int64_t step = s.at(n + ".step").item<int64_t>();
      if (cfg_.kind == "adamw") {
        auto ps = std::make_unique<torch::optim::AdamWParamState>();
        ps->step(step).exp_avg(get(n + ".exp_avg", t)).exp_avg_sq(get(n + ".exp_avg_sq", t));
        st[key_of(t)] = std::move(ps);
      } else {
        auto ps = std::make_unique<torch::optim::AdamParamState>();
        ps->step(step).exp_avg(get(n + ".exp_avg", t)).exp_avg_sq(get(n + ".exp_avg_sq", t));
        st[key_of(t)] = std::move(ps);
      }
    } else {
      auto ps = std::make_unique<torch::optim::SGDParamState>();
      ps->momentum_buffer(get(n + ".momentum_buffer", t));
      st[key_of(t)] = std::move(ps);
    }
  }
}

}  // namespace mechlens
