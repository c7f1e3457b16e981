// A CPU allocator that counts live tensor bytes and their peak, wrapping the default
// one. Installed only by the benchmarks, to measure peak memory exactly (resident set
// size mostly measures malloc's arena behaviour).
#pragma once
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/version.h>

#include <atomic>
#include <cstring>

namespace mechlens::bench {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define MECHLENS_ALLOC_CONST
#else
#define MECHLENS_ALLOC_CONST const
#endif

class CountingAllocator final : public c10::Allocator {
 public:
  static CountingAllocator& install() {
    static CountingAllocator a(c10::GetDefaultCPUAllocator());
    static bool once = (c10::SetCPUAllocator(&a, /*priority=*/100), true);
    (void)once;
    return a;
  }
  int64_t live() const { return live_.load(); }
  int64_t peak() const { return peak_.load(); }
  void reset_peak() { peak_.store(live_.load()); }

  c10::DataPtr allocate(size_t n) MECHLENS_ALLOC_CONST override {
    c10::DataPtr inner = base_->allocate(n);
    void* data = inner.get();
    auto* ctx = new Ctx{std::move(inner), static_cast<int64_t>(n), this};
    int64_t now = live_.fetch_add(ctx->bytes) + ctx->bytes;
    int64_t p = peak_.load();
    while (now > p && !peak_.compare_exchange_weak(p, now)) {
    }
    return {data, ctx, &Ctx::release, c10::Device(c10::DeviceType::CPU)};
  }
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
#endif

 private:
  explicit CountingAllocator(c10::Allocator* base) : base_(base) {}
  struct Ctx {
    c10::DataPtr inner;
    int64_t bytes;
    const CountingAllocator* owner;
    static void release(void* p) {
      auto* c = static_cast<Ctx*>(p);
      c->owner->live_.fetch_sub(c->bytes);
      delete c;
    }
  };
  c10::Allocator* base_;
  mutable std::atomic<int64_t> live_{0}, peak_{0};
};

}  // namespace mechlens::bench
