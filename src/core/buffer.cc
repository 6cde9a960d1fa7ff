#include "core/buffer.h"

#include <vector>

namespace gatehouse::buffer_pool {
namespace {
// Bounded so a burst of connections does not pin memory for ever (1024 x 16 KiB = 16 MiB).
constexpr size_t kMaxCached = 1024;
thread_local std::vector<std::unique_ptr<char[]>> t_blocks;
}  // namespace

std::unique_ptr<char[]> take() {
  if (!t_blocks.empty()) {
    auto b = std::move(t_blocks.back());
    t_blocks.pop_back();
    return b;
  }
  return std::make_unique_for_overwrite<char[]>(kBlockSize);
}

void give(std::unique_ptr<char[]> block) noexcept {
  if (t_blocks.size() < kMaxCached) t_blocks.push_back(std::move(block));
}

}  // namespace gatehouse::buffer_pool
