// CPython's `random` module, bit for bit, for the parts recipes need: random.seed(int)
// (MT19937 init_by_array over the seed's 32-bit words) and random.shuffle. The grokking
// recipe splits its pairs exactly as the authors' `random.seed(seed); random.shuffle(pairs)`.
#pragma once
#include <cstdint>
#include <vector>

namespace mechlens {

class PythonRandom {
 public:
  explicit PythonRandom(uint64_t seed);
  uint32_t genrand_uint32();
  uint32_t getrandbits(int k);  // 1 <= k <= 32
  uint64_t randbelow(uint64_t n);  // n >= 1, n < 2^32
  template <class T>
  void shuffle(std::vector<T>& x) {
    for (size_t i = x.size(); i-- > 1;) {
      size_t j = static_cast<size_t>(randbelow(i + 1));
      std::swap(x[i], x[j]);
    }
  }

 private:
  void init_genrand(uint32_t s);
  uint32_t mt_[624];
  int mti_ = 625;
};

}  // namespace mechlens
