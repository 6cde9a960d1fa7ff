#include "core/buffer.h"

#include <vector>

namespace gatehouse::buffer_pool {
namespace {
// Bounded so a burst of connections does not pin memory for ever (8 MiB per worker). Every
// request in flight holds a small block for its head, so that cache is the larger one: at 1000
// busy connections a cap of 256 sent ~0.75 blocks per request through malloc and free.
constexpr size_t kMaxSmallCached = 1024;
constexpr size_t kMaxLargeCached = 256;
thread_local std::vector<std::unique_ptr<char[]>> t_small;
thread_local std::vector<std::unique_ptr<char[]>> t_large;
}  // namespace

std::unique_ptr<char[]> take(size_t n) {
  auto& list = n == kSmallBlock ? t_small : t_large;
  if (!list.empty()) {
    auto b = std::move(list.back());
    list.pop_back();
    return b;
  }
  return std::make_unique_for_overwrite<char[]>(n);
}

void give(std::unique_ptr<char[]> block, size_t n) noexcept {
  auto& list = n == kSmallBlock ? t_small : t_large;
  if (list.size() < (n == kSmallBlock ? kMaxSmallCached : kMaxLargeCached)) {
    list.push_back(std::move(block));
  }
}

}  // namespace gatehouse::buffer_pool
