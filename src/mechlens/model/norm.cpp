#include "mechlens/model/components.h"
#include "mechlens/model/hook_names.h"

namespace mechlens {

Norm::Norm(int l, const std::string& m, const ModelConfig& cfg)
    : layer(l),
      module(m),
      type(cfg.normalization_type),
      eps(cfg.eps),
      hook_scale(act_name("scale", l, m)),
      hook_normalized(act_name("normalized", l, m)) {}

void Norm::bind(const StateDict& sd) {
  auto w_it = sd.find(param_name("w", layer, module));
  auto b_it = sd.find(param_name("b", layer, module));
  w = w_it != sd.end() ? w_it->second : at::Tensor();
  b = b_it != sd.end() ? b_it->second : at::Tensor();
}

at::Tensor Norm::operator()(const at::Tensor& x_in) {
  if (type == NormType::None) return x_in;
  // Half-precision models normalise in float32, as TransformerLens does.
  at::Tensor x = x_in.scalar_type() == at::kFloat || x_in.scalar_type() == at::kDouble ? x_in : x_in.to(at::kFloat);
  const bool rms = type == NormType::RMS || type == NormType::RMSPre;
  if (!rms) x = x - x.mean(-1, true);
  at::Tensor scale = hook_scale((x.pow(2).mean(-1, true) + eps).sqrt());
  at::Tensor y = x / scale;
  if (rms) {
    y = hook_normalized(y).to(x_in.scalar_type());
    return w.defined() ? y * w : y;
  }
  if (w.defined()) y = y * w;
  if (b.defined()) y = y + b;
  return hook_normalized(y).to(x_in.scalar_type());
}

}  // namespace mechlens
