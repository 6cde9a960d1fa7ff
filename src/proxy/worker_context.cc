#include "proxy/worker_context.h"

#include <random>

#include "proxy/session.h"

namespace gatehouse::proxy {
namespace {
thread_local WorkerContext* t_current_worker = nullptr;
}  // namespace

WorkerContext* currentWorker() {
  return t_current_worker;
}

CurrentWorkerScope::CurrentWorkerScope(WorkerContext& worker) : previous_(t_current_worker) {
  t_current_worker = &worker;
}

CurrentWorkerScope::~CurrentWorkerScope() {
  t_current_worker = previous_;
}

WorkerContext::WorkerContext(int id, metrics::Stats& stats)
    : id_(id), stats_(stats), http1_spares_(std::make_unique<Http1StatePool>()) {
  std::random_device rd;
  rng_state_[0] = (static_cast<uint64_t>(rd()) << 32) | rd();
  rng_state_[1] = (static_cast<uint64_t>(rd()) << 32) | rd() | 1;
}

WorkerContext::~WorkerContext() = default;

uint64_t WorkerContext::nextRandom() {
  GH_ASSERT_OWNER(loop_.owner());
  uint64_t s1 = rng_state_[0];
  const uint64_t s0 = rng_state_[1];
  rng_state_[0] = s0;
  s1 ^= s1 << 23;
  rng_state_[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
  return rng_state_[1] + s0;
}

size_t WorkerContext::listenerIndex(const std::string& key) const {
  auto it = listener_indexes_.find(key);
  return it == listener_indexes_.end() ? 0 : it->second;
}

void WorkerContext::publish(std::shared_ptr<WorkerSnapshot> ws) {
  current_ = std::move(ws);
  // Copy: a watcher may end its stream (and unregister) from the callback.
  std::vector<StreamWatcher*> streams(streams_.begin(), streams_.end());
  for (auto* st : streams)
    if (streams_.count(st)) st->onNewSnapshot(*current_->snap);
}

}  // namespace gatehouse::proxy
