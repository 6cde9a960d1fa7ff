#include "policies/offload.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <thread>
#include <vector>

namespace gatehouse::policies::offload {
namespace detail {
namespace {

class Pool {
 public:
  Pool() {
    for (size_t i = 0; i < kThreads; ++i)
      threads_.emplace_back([this] { loop(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_)
      t.join();
  }

  bool submit(std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      if (stop_ || jobs_.size() + running_ >= kMaxQueued) return false;
      jobs_.push_back(std::move(job));
    }
    cv_.notify_one();
    return true;
  }

  size_t queued() {
    std::lock_guard lock(mu_);
    return jobs_.size() + running_;
  }

 private:
  void loop() {
    for (;;) {
      std::function<void()> job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
        ++running_;
      }
      job();
      std::lock_guard lock(mu_);
      --running_;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  size_t running_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

Pool& pool() {
  static Pool p;  // started on first use; joined at exit, after the workers are gone
  return p;
}

// Unhooks the thread's mailbox when the thread exits, so late results are dropped.
struct MailboxHolder {
  std::shared_ptr<Mailbox> mb;
  ~MailboxHolder() {
    if (!mb) return;
    std::lock_guard lock(mb->mu);
    mb->loop = nullptr;
  }
};

}  // namespace

void Mailbox::post(std::function<void()> fn) {
  std::lock_guard lock(mu);
  if (loop) loop->post(std::move(fn));
}

std::shared_ptr<Mailbox> mailboxForThisThread() {
  thread_local MailboxHolder holder;
  runtime::EventLoop* current = runtime::EventLoop::current();
  if (!holder.mb || holder.mb->loop != current) {
    if (holder.mb) {
      std::lock_guard lock(holder.mb->mu);
      holder.mb->loop = nullptr;
    }
    holder.mb = std::make_shared<Mailbox>();
    holder.mb->loop = current;
  }
  return holder.mb;
}

bool submit(std::function<void()> job) {
  return pool().submit(std::move(job));
}

}  // namespace detail

size_t queued() {
  return detail::pool().queued();
}

}  // namespace gatehouse::policies::offload
