#include "mechlens/model/components.h"
#include "mechlens/model/hook_names.h"

#include <cmath>
#include <stdexcept>

namespace mechlens {

at::Tensor activation(ActFn act_fn, const at::Tensor& x) {
  switch (act_fn) {
    case ActFn::GeluNew:
    case ActFn::GeluPytorchTanh:
      return at::gelu(x, "tanh");
    case ActFn::Gelu:
      return at::gelu(x);
    case ActFn::Relu:
      return at::relu(x);
    case ActFn::Silu:
      return at::silu(x);
    case ActFn::GeluFast:
      return 0.5 * x * (1.0 + at::tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)));
    case ActFn::SoluLn:
      return x * at::softmax(x, -1);
  }
  throw std::logic_error("unknown activation " + std::to_string(static_cast<int>(act_fn)));
}

MLP::MLP(int l, const ModelConfig& c)
    : cfg(&c),
      layer(l),
      act_fn(c.act_fn),
      gated(c.gated_mlp),
      hook_pre(act_name("pre", l)),
      hook_pre_linear(act_name("pre_linear", l)),
      hook_mid(act_name("mid", l)),
      hook_post(act_name("post", l)) {
  if (act_fn == ActFn::SoluLn) {
    ModelConfig ln_cfg = c;
    ln_cfg.normalization_type = NormType::LN;
    ln = std::make_unique<Norm>(l, "mlp.ln", ln_cfg);
  }
}

void MLP::bind(const StateDict& sd) {
  W_in = sd.at(param_name("W_in", layer));
  b_in = sd.at(param_name("b_in", layer));
  W_gate = gated ? sd.at(param_name("W_gate", layer)) : at::Tensor();
  W_out = sd.at(param_name("W_out", layer));
  b_out = sd.at(param_name("b_out", layer));
  if (ln) ln->bind(sd);
}

at::Tensor MLP::operator()(const at::Tensor& x) {
  at::Tensor post;
  if (gated) {
    at::Tensor pre = hook_pre(at::matmul(x, W_gate));
    at::Tensor pre_linear = hook_pre_linear(at::matmul(x, W_in) + b_in);
    post = hook_post(activation(act_fn, pre) * pre_linear);
  } else {
    at::Tensor pre = hook_pre(at::matmul(x, W_in) + b_in);
    if (ln) {
      at::Tensor mid = hook_mid(activation(act_fn, pre));
      post = hook_post((*ln)(mid));
    } else {
      post = hook_post(activation(act_fn, pre));
    }
  }
  return at::matmul(post, W_out) + b_out;
}

}  // namespace mechlens
