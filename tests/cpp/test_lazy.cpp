// Building a model is lazy: it records TensorSpecs and allocates no weight
// memory. Checked by counting every byte the process allocates with
// operator new while the largest model (126.9 M parameters, 508 MB in float32)
// is built.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "pyflame_vision/models/registry.h"

namespace {
std::atomic<long long> g_allocated{0};
}  // namespace

void* operator new(std::size_t n) {
  g_allocated.fetch_add(static_cast<long long>(n), std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
// The nothrow forms too (std::stable_sort's temporary buffer uses them): the
// standard's defaults forward to the ones above, but a sanitizer runtime
// replaces them with its own allocator, and its memory must not reach the
// free() above (ASan reports that as an alloc-dealloc mismatch).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocated.fetch_add(static_cast<long long>(n), std::memory_order_relaxed);
  return std::malloc(n == 0 ? 1 : n);
}
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }

TEST(Lazy, BuildingWideResNet101AllocatesNoWeightMemory) {
  const long long before = g_allocated.load();
  auto m = pyflame_vision::models::wide_resnet101_2();
  const long long used = g_allocated.load() - before;
  EXPECT_EQ(m->num_parameters(), 126886696);
  EXPECT_LT(used, 4LL << 20) << "building allocated " << used << " bytes";
  EXPECT_GT(used, 0);
}
