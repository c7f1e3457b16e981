#include "mechlens/core/tensor_json.h"

namespace mechlens {

namespace {

nlohmann::json nested(const double* p, const int64_t* sizes, const int64_t* strides, int64_t rank) {
  if (rank == 0) return *p;
  nlohmann::json arr = nlohmann::json::array();
  for (int64_t i = 0; i < sizes[0]; ++i) arr.push_back(nested(p + i * strides[0], sizes + 1, strides + 1, rank - 1));
  return arr;
}

}  // namespace

nlohmann::json to_json(const at::Tensor& t0) {
  at::Tensor t = t0.detach().to(at::kCPU).to(at::kDouble).contiguous();
  return nested(t.data_ptr<double>(), t.sizes().data(), t.strides().data(), t.dim());
}

}  // namespace mechlens
