// FactoredMatrix: a (batch of) low-rank matrices kept as A @ B ([..., l, m] x
// [..., m, r]), so products, SVD, eigenvalues and norms never form the l x r matrix
// when it is large (e.g. full QK / OV circuits over the vocabulary).
#pragma once
#include <ATen/ATen.h>

#include <tuple>

namespace mechlens {

class FactoredMatrix {
 public:
  FactoredMatrix(at::Tensor A, at::Tensor B);

  const at::Tensor& A() const { return A_; }
  const at::Tensor& B() const { return B_; }
  int64_t ldim() const { return A_.size(-2); }
  int64_t mdim() const { return A_.size(-1); }
  int64_t rdim() const { return B_.size(-1); }

  at::Tensor AB() const;  // [..., l, r]
  at::Tensor BA() const;  // [..., m, m]... requires l == r: B @ A is [m, m]
  FactoredMatrix T() const;
  FactoredMatrix operator[](int64_t i) const;  // index the first leading axis
  FactoredMatrix left_mul(const at::Tensor& M) const;   // M @ (A B)
  FactoredMatrix right_mul(const at::Tensor& M) const;  // (A B) @ M

  // A B = U diag(S) V^T with U [..., l, k], S [..., k], V [..., r, k], k = min(l, m, r).
  std::tuple<at::Tensor, at::Tensor, at::Tensor> svd() const;
  at::Tensor S() const { return std::get<1>(svd()); }
  // Eigenvalues of A B (its nonzero ones): those of B A, complex, in LAPACK's order.
  at::Tensor eigenvalues() const;
  at::Tensor norm() const;  // Frobenius norm of A B
  at::Tensor corner(int64_t k = 3) const;  // (A B)[..., :k, :k]
  // diag(S) V^T [..., k, r] and U diag(S) [..., l, k] (TL's collapse_l / collapse_r).
  at::Tensor collapse_l() const;
  at::Tensor collapse_r() const;

 private:
  at::Tensor A_, B_;
  mutable at::Tensor U_, S_, V_;
};

// ||L R||_F / (||L||_F ||R||_F) for L = left (..., d, d) and R = right, broadcast over
// their leading axes (TL's utils.composition_scores).
at::Tensor composition_score(const FactoredMatrix& left, const FactoredMatrix& right);

}  // namespace mechlens
