// The per-thread buffer and coroutine-frame caches give back what a burst left and nothing
// needed since (the worker trims them every 5 s).
#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "core/buffer.h"
#include "runtime/task.h"

namespace gatehouse {
namespace {

void emptyBufferCaches() {
  buffer_pool::trimUnused();  // marks what is cached now as unused
  buffer_pool::trimUnused();  // and frees it
}

TEST(BufferPool, TrimFreesOnlyBlocksUnusedSinceTheLastTrim) {
  emptyBufferCaches();
  constexpr size_t kBlock = buffer_pool::kSmallBlock;
  std::vector<std::unique_ptr<char[]>> burst;
  for (int i = 0; i < 10; ++i)
    burst.push_back(buffer_pool::take(kBlock));
  for (auto& b : burst)
    buffer_pool::give(std::move(b), kBlock);
  // The burst needed all ten (the cache ran dry): none is unused yet.
  EXPECT_EQ(buffer_pool::trimUnused(), 0u);
  // Quiet traffic that needs at most three at a time keeps three.
  for (int round = 0; round < 4; ++round) {
    std::vector<std::unique_ptr<char[]>> in_use;
    for (int i = 0; i < 3; ++i)
      in_use.push_back(buffer_pool::take(kBlock));
    for (auto& b : in_use)
      buffer_pool::give(std::move(b), kBlock);
  }
  EXPECT_EQ(buffer_pool::trimUnused(), 7 * kBlock);
  // Nothing taken since: the last three go too, and a take after that still works.
  EXPECT_EQ(buffer_pool::trimUnused(), 3 * kBlock);
  EXPECT_EQ(buffer_pool::trimUnused(), 0u);
  auto b = buffer_pool::take(kBlock);
  ASSERT_NE(b, nullptr);
  buffer_pool::give(std::move(b), kBlock);
  emptyBufferCaches();
}

TEST(FrameCache, TrimFreesOnlyFramesUnusedSinceTheLastTrim) {
  runtime::trimFrameCache();
  runtime::trimFrameCache();
  constexpr size_t kFrame = 200;  // rounded up to its 64-byte class: 256
  std::vector<void*> frames;
  for (int i = 0; i < 8; ++i)
    frames.push_back(runtime::allocateFrame(kFrame));
  for (void* f : frames)
    runtime::freeFrame(f, kFrame);
  EXPECT_EQ(runtime::trimFrameCache(), 0u);
  void* one = runtime::allocateFrame(kFrame);
  runtime::freeFrame(one, kFrame);
  EXPECT_EQ(runtime::trimFrameCache(), 7 * 256u);
  EXPECT_EQ(runtime::trimFrameCache(), 256u);
}

}  // namespace
}  // namespace gatehouse
