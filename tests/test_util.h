// Shared helpers for the tests: where the golden vectors are, and tensor comparison.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "mechlens/core/io.h"

namespace mechlens::testing {

// ../shared/golden beside the checkout (or $MECHLENS_GOLDEN); "" if absent.
inline std::string golden_dir() {
  if (const char* env = std::getenv("MECHLENS_GOLDEN")) return dir_exists(env) ? env : "";
  std::string d = std::string(MECHLENS_SOURCE_DIR) + "/../shared/golden";
  return dir_exists(d) ? d : "";
}

#define REQUIRE_GOLDEN()                                                                   \
  do {                                                                                     \
    if (::mechlens::testing::golden_dir().empty())                                         \
      GTEST_SKIP() << "../shared/golden is absent (fresh clone): golden parity not checked"; \
  } while (0)

inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  at::Tensor x = a.to(at::kDouble), y = b.to(at::kDouble);
  // -inf in the same places (masked attention scores) counts as equal.
  at::Tensor both_inf = at::isinf(x) & at::isinf(y) & (at::sign(x) == at::sign(y));
  at::Tensor d = at::where(both_inf, at::zeros_like(x), (x - y).abs());
  return d.numel() ? d.max().item<double>() : 0.0;
}

#define EXPECT_CLOSE(a, b, tol, what)                                                              \
  do {                                                                                             \
    at::Tensor _a = (a), _b = (b);                                                                 \
    ASSERT_EQ(_a.sizes(), _b.sizes()) << what;                                                     \
    double _d = ::mechlens::testing::max_abs_diff(_a, _b);                                         \
    EXPECT_LE(_d, (tol)) << what << ": max abs diff " << _d;                                       \
  } while (0)

}  // namespace mechlens::testing
