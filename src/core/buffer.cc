#include "core/buffer.h"

#include <algorithm>
#include <vector>

namespace gatehouse::buffer_pool {
namespace {
// Bounded so a burst of connections does not pin memory for ever (8 MiB per worker). Every
// request in flight holds a small block for its head, so that cache is the larger one: at 1000
// busy connections a cap of 256 sent ~0.75 blocks per request through malloc and free.
constexpr size_t kMaxSmallCached = 1024;
constexpr size_t kMaxLargeCached = 256;
struct Cache {
  std::vector<std::unique_ptr<char[]>> blocks;  // taken and given at the back (warmest)
  size_t low = 0;                               // fewest cached since the last trim
};
thread_local Cache t_small;
thread_local Cache t_large;

size_t trimCache(Cache& c, size_t block) {
  // The `low` blocks at the front were never needed since the last trim.
  size_t n = std::min(c.low, c.blocks.size());
  c.blocks.erase(c.blocks.begin(), c.blocks.begin() + static_cast<std::ptrdiff_t>(n));
  if (c.blocks.empty()) c.blocks.shrink_to_fit();
  c.low = c.blocks.size();
  return n * block;
}
}  // namespace

std::unique_ptr<char[]> take(size_t n) {
  auto& c = n == kSmallBlock ? t_small : t_large;
  if (!c.blocks.empty()) {
    auto b = std::move(c.blocks.back());
    c.blocks.pop_back();
    if (c.blocks.size() < c.low) c.low = c.blocks.size();
    return b;
  }
  c.low = 0;
  return std::make_unique_for_overwrite<char[]>(n);
}

size_t trimUnused() noexcept {
  return trimCache(t_small, kSmallBlock) + trimCache(t_large, kBlockSize);
}

void give(std::unique_ptr<char[]> block, size_t n) noexcept {
  auto& c = n == kSmallBlock ? t_small : t_large;
  if (c.blocks.size() < (n == kSmallBlock ? kMaxSmallCached : kMaxLargeCached)) {
    c.blocks.push_back(std::move(block));
  }
}

}  // namespace gatehouse::buffer_pool
