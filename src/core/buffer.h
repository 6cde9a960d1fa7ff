#pragma once
// A growable byte buffer with a read and a write cursor. Storage is taken lazily and can be
// given back when empty (release()), so an idle keep-alive connection holds no buffer memory.
// Blocks of the default size come from a per-thread free list. Data is compacted to the front
// only when more room is needed, so views into readable bytes stay valid until reserve().
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace gatehouse {

// Per-thread caches of the two common block sizes: small for request heads, large for bodies
// and upstream responses.
namespace buffer_pool {
inline constexpr size_t kSmallBlock = 4096;
inline constexpr size_t kBlockSize = 16384;
inline bool pooled(size_t n) {
  return n == kSmallBlock || n == kBlockSize;
}
std::unique_ptr<char[]> take(size_t n);
void give(std::unique_ptr<char[]> block, size_t n) noexcept;
// Frees the cached blocks that no take() needed since the last call (the low-water mark), so a
// burst's blocks go back to the allocator once traffic is quiet. Returns the bytes freed.
size_t trimUnused() noexcept;
}  // namespace buffer_pool

class Buffer {
 public:
  explicit Buffer(size_t initial = buffer_pool::kBlockSize) : initial_(initial) {}
  ~Buffer() { release(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  std::string_view readable() const { return {data_.get() + start_, end_ - start_}; }
  size_t size() const { return end_ - start_; }
  bool empty() const { return start_ == end_; }
  void consume(size_t n) {
    start_ += n;
    if (start_ == end_) start_ = end_ = 0;
  }
  void clear() { start_ = end_ = 0; }

  char* writePtr() { return data_.get() + end_; }
  size_t writable() const { return cap_ - end_; }
  void commit(size_t n) { end_ += n; }
  // Ensures at least `min` writable bytes (allocates, compacts or grows).
  void reserve(size_t min) {
    if (cap_ - end_ >= min) return;
    if (!data_) {
      allocate(min > initial_ ? min : initial_);
      return;
    }
    size_t used = end_ - start_;
    if (start_ > 0 && cap_ - used >= min) {
      std::memmove(data_.get(), data_.get() + start_, used);
    } else {
      size_t ncap = cap_ * 2;
      while (ncap - used < min)
        ncap *= 2;
      auto n = std::make_unique_for_overwrite<char[]>(ncap);
      std::memcpy(n.get(), data_.get() + start_, used);
      giveBack();
      data_ = std::move(n);
      cap_ = ncap;
    }
    start_ = 0;
    end_ = used;
  }
  void append(std::string_view s) {
    reserve(s.size());
    std::memcpy(writePtr(), s.data(), s.size());
    commit(s.size());
  }
  size_t capacity() const { return cap_; }
  // Gives the storage back when nothing is buffered.
  void release() {
    if (empty() && data_) {
      giveBack();
      start_ = end_ = 0;
    }
  }

 private:
  void allocate(size_t n) {
    data_ =
        buffer_pool::pooled(n) ? buffer_pool::take(n) : std::make_unique_for_overwrite<char[]>(n);
    cap_ = n;
    start_ = end_ = 0;
  }
  void giveBack() {
    if (buffer_pool::pooled(cap_)) {
      buffer_pool::give(std::move(data_), cap_);
    } else {
      data_.reset();
    }
    cap_ = 0;
  }

  std::unique_ptr<char[]> data_;
  size_t initial_;
  size_t cap_ = 0;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace gatehouse
