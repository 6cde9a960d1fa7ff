#pragma once
// A growable byte buffer with a read and a write cursor. Data is compacted to the front only
// when more room is needed, so views into readable bytes stay valid until the next reserve().
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace gatehouse {

class Buffer {
 public:
  explicit Buffer(size_t initial = 16384)
      : data_(std::make_unique_for_overwrite<char[]>(initial)), cap_(initial) {}
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

  // Writable tail after ensuring at least `min` free bytes (compacts or grows).
  char* writePtr() { return data_.get() + end_; }
  size_t writable() const { return cap_ - end_; }
  void commit(size_t n) { end_ += n; }
  void reserve(size_t min) {
    if (cap_ - end_ >= min) return;
    size_t used = end_ - start_;
    if (start_ > 0 && cap_ - used >= min) {
      std::memmove(data_.get(), data_.get() + start_, used);
    } else {
      size_t ncap = cap_ * 2;
      while (ncap - used < min)
        ncap *= 2;
      auto n = std::make_unique_for_overwrite<char[]>(ncap);
      std::memcpy(n.get(), data_.get() + start_, used);
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
  // Drops capacity back to `size` when idle (keep-alive connections should not pin big buffers).
  void shrinkIfEmpty(size_t size) {
    if (empty() && cap_ > size) {
      data_ = std::make_unique_for_overwrite<char[]>(size);
      cap_ = size;
      start_ = end_ = 0;
    }
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t cap_;
  size_t start_ = 0;
  size_t end_ = 0;
};

}  // namespace gatehouse
