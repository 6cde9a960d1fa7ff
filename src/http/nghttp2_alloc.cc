#include "http/nghttp2_alloc.h"

#include <array>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace gatehouse::http {

namespace {
// Each block starts with a header holding its usable size, so free() and realloc() know the
// class; 16 bytes keeps the payload aligned as malloc's is.
constexpr size_t kHeader = 16;
constexpr size_t kClassSize = 64;
constexpr size_t kClasses = 32;  // payloads up to 2 KiB - 16; larger ones go to malloc
constexpr size_t kMaxFreePerClass = 1024;

struct FreeLists {
  std::array<std::vector<void*>, kClasses> lists;
  bool alive = true;
  ~FreeLists() {
    alive = false;
    for (auto& l : lists) {
      for (void* p : l)
        std::free(p);
    }
  }
};
thread_local FreeLists t_free;

size_t& sizeOf(void* block) {
  return *static_cast<size_t*>(block);
}
void* payload(void* block) {
  return static_cast<char*>(block) + kHeader;
}
void* blockOf(void* p) {
  return static_cast<char*>(p) - kHeader;
}

void* allocate(size_t size, void*) {
  size_t cls = (size + kHeader + kClassSize - 1) / kClassSize;
  void* block = nullptr;
  if (cls < kClasses) {
    auto& l = t_free.lists[cls];
    if (!l.empty()) {
      block = l.back();
      l.pop_back();
    } else {
      block = std::malloc(cls * kClassSize);
    }
  } else {
    block = std::malloc(size + kHeader);
  }
  if (!block) return nullptr;
  sizeOf(block) = size;
  return payload(block);
}

void release(void* p, void*) {
  if (!p) return;
  void* block = blockOf(p);
  size_t cls = (sizeOf(block) + kHeader + kClassSize - 1) / kClassSize;
  if (cls < kClasses && t_free.alive) {
    auto& l = t_free.lists[cls];
    if (l.size() < kMaxFreePerClass) {
      l.push_back(block);
      return;
    }
  }
  std::free(block);
}

void* allocateZeroed(size_t n, size_t size, void* u) {
  if (size != 0 && n > SIZE_MAX / size) return nullptr;
  void* p = allocate(n * size, u);
  if (p) std::memset(p, 0, n * size);
  return p;
}

void* reallocate(void* p, size_t size, void* u) {
  if (!p) return allocate(size, u);
  size_t old = sizeOf(blockOf(p));
  size_t cap = (old + kHeader + kClassSize - 1) / kClassSize * kClassSize - kHeader;
  if ((old + kHeader + kClassSize - 1) / kClassSize < kClasses && size <= cap) {
    sizeOf(blockOf(p)) = size;
    return p;
  }
  void* n = allocate(size, u);
  if (!n) return nullptr;
  std::memcpy(n, p, old < size ? old : size);
  release(p, u);
  return n;
}

nghttp2_mem g_mem{nullptr, &allocate, &release, &allocateZeroed, &reallocate};
}  // namespace

nghttp2_mem* nghttp2Allocator() {
  return &g_mem;
}

}  // namespace gatehouse::http
