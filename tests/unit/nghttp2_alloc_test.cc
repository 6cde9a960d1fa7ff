#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "http/nghttp2_alloc.h"

namespace gatehouse {
namespace {

TEST(Nghttp2Alloc, BlocksKeepTheirContentsThroughReallocAndAreReused) {
  nghttp2_mem* m = http::nghttp2Allocator();
  if (!m) GTEST_SKIP() << "AddressSanitizer build: nghttp2 uses malloc";
  std::vector<void*> live;
  // Every class boundary and a large block.
  for (size_t size : {size_t{1}, size_t{47}, size_t{48}, size_t{49}, size_t{500}, size_t{2000},
                      size_t{2032}, size_t{2033}, size_t{100000}}) {
    auto* p = static_cast<unsigned char*>(m->malloc(size, m->mem_user_data));
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 16, 0u);
    std::memset(p, static_cast<int>(size & 0xff), size);
    // Grow across classes and into malloc territory, then shrink: contents survive.
    auto* q = static_cast<unsigned char*>(m->realloc(p, size * 3 + 5000, m->mem_user_data));
    ASSERT_NE(q, nullptr);
    for (size_t i = 0; i < size; ++i)
      ASSERT_EQ(q[i], size & 0xff) << size << " at " << i;
    auto* r = static_cast<unsigned char*>(m->realloc(q, size, m->mem_user_data));
    ASSERT_NE(r, nullptr);
    for (size_t i = 0; i < size; ++i)
      ASSERT_EQ(r[i], size & 0xff);
    live.push_back(r);
  }
  for (void* p : live)
    m->free(p, m->mem_user_data);
  // A freed small block is handed out again for the same class.
  void* a = m->malloc(100, m->mem_user_data);
  m->free(a, m->mem_user_data);
  void* b = m->malloc(90, m->mem_user_data);
  EXPECT_EQ(a, b);
  m->free(b, m->mem_user_data);
  m->free(nullptr, m->mem_user_data);  // allowed, as for free()
}

TEST(Nghttp2Alloc, CallocZeroesAndRefusesOverflow) {
  nghttp2_mem* m = http::nghttp2Allocator();
  if (!m) GTEST_SKIP() << "AddressSanitizer build: nghttp2 uses malloc";
  // Dirty a block, free it, and get it back zeroed through calloc.
  auto* d = static_cast<unsigned char*>(m->malloc(200, m->mem_user_data));
  std::memset(d, 0xab, 200);
  m->free(d, m->mem_user_data);
  auto* z = static_cast<unsigned char*>(m->calloc(10, 20, m->mem_user_data));
  ASSERT_NE(z, nullptr);
  for (int i = 0; i < 200; ++i)
    ASSERT_EQ(z[i], 0);
  m->free(z, m->mem_user_data);
  EXPECT_EQ(m->calloc(SIZE_MAX / 2, 4, m->mem_user_data), nullptr);
}

}  // namespace
}  // namespace gatehouse
