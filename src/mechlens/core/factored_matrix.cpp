#include "mechlens/core/factored_matrix.h"

#include "mechlens/core/error.h"

namespace mechlens {

FactoredMatrix::FactoredMatrix(at::Tensor A, at::Tensor B) : A_(std::move(A)), B_(std::move(B)) {
  if (A_.dim() < 2 || B_.dim() < 2 || A_.size(-1) != B_.size(-2))
    throw Error("FactoredMatrix: A [..., l, m] and B [..., m, r] do not fit");
}

at::Tensor FactoredMatrix::AB() const { return at::matmul(A_, B_); }

at::Tensor FactoredMatrix::BA() const {
  if (ldim() != rdim()) throw Error("FactoredMatrix: BA needs a square matrix");
  return at::matmul(B_, A_);
}

FactoredMatrix FactoredMatrix::T() const { return {B_.transpose(-1, -2), A_.transpose(-1, -2)}; }

FactoredMatrix FactoredMatrix::operator[](int64_t i) const {
  if (A_.dim() < 3) throw Error("FactoredMatrix: no leading axis to index");
  auto pick = [i](const at::Tensor& t) { return t.dim() > 2 && t.size(0) > 1 ? t[i] : (t.dim() > 2 ? t[0] : t); };
  return {pick(A_), pick(B_)};
}

FactoredMatrix FactoredMatrix::left_mul(const at::Tensor& M) const { return {at::matmul(M, A_), B_}; }
FactoredMatrix FactoredMatrix::right_mul(const at::Tensor& M) const { return {A_, at::matmul(B_, M)}; }

std::tuple<at::Tensor, at::Tensor, at::Tensor> FactoredMatrix::svd() const {
  if (!S_.defined()) {
    // SVD of each factor, then of the small middle matrix (TL's method).
    auto [Ua, Sa, Vha] = at::linalg_svd(A_, false);
    auto [Ub, Sb, Vhb] = at::linalg_svd(B_, false);
    at::Tensor middle = Sa.unsqueeze(-1) * at::matmul(Vha, Ub) * Sb.unsqueeze(-2);
    auto [Um, Sm, Vhm] = at::linalg_svd(middle, false);
    U_ = at::matmul(Ua, Um);
    S_ = Sm;
    V_ = at::matmul(Vhb.transpose(-1, -2), Vhm.transpose(-1, -2));
  }
  return {U_, S_, V_};
}

at::Tensor FactoredMatrix::eigenvalues() const { return at::linalg_eigvals(BA()); }

at::Tensor FactoredMatrix::norm() const { return S().pow(2).sum(-1).sqrt(); }

at::Tensor FactoredMatrix::corner(int64_t k) const {
  return at::matmul(A_.slice(-2, 0, std::min(k, ldim())), B_.slice(-1, 0, std::min(k, rdim())));
}

at::Tensor FactoredMatrix::collapse_l() const {
  auto [U, S, V] = svd();
  return S.unsqueeze(-1) * V.transpose(-1, -2);
}

at::Tensor FactoredMatrix::collapse_r() const {
  auto [U, S, V] = svd();
  return U * S.unsqueeze(-2);
}

at::Tensor composition_score(const FactoredMatrix& left, const FactoredMatrix& right) {
  if (left.rdim() != right.ldim()) throw Error("composition_score: left.rdim != right.ldim");
  at::Tensor l = left.collapse_l(), r = right.collapse_r();  // [..., k, d], [..., d, k']
  auto fro = [](const at::Tensor& t) { return t.pow(2).sum({-2, -1}).sqrt(); };
  return fro(at::matmul(l, r)) / fro(l) / fro(r);
}

}  // namespace mechlens
