#pragma once
// The last N config generations the server ran, newest last, for GET /api/v1/config/generations
// and rollback. Kept in memory only (a restart starts a new history). Control thread only.
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <deque>
#include <string>

namespace gatehouse::admin {

struct Generation {
  uint64_t generation = 0;
  int64_t activated_at = 0;  // Unix seconds
  std::string origin;        // "startup", "reload (SIGHUP)", "api PUT", "rollback 3", ...
  std::string text;          // the YAML it was loaded from
};

class GenerationRing {
 public:
  explicit GenerationRing(size_t capacity = 10) : capacity_(capacity ? capacity : 1) {}
  void setCapacity(size_t capacity) {
    capacity_ = capacity ? capacity : 1;
    trim();
  }
  size_t capacity() const { return capacity_; }
  void push(Generation g) {
    items_.push_back(std::move(g));
    trim();
  }
  // The kept generation numbered `generation`, or null.
  const Generation* find(uint64_t generation) const {
    for (const auto& g : items_) {
      if (g.generation == generation) return &g;
    }
    return nullptr;
  }
  const std::deque<Generation>& items() const { return items_; }

 private:
  void trim() {
    while (items_.size() > capacity_)
      items_.pop_front();
  }
  size_t capacity_;
  std::deque<Generation> items_;
};

}  // namespace gatehouse::admin
