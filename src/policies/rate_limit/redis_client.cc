#include "policies/rate_limit/redis_client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>

#include "core/log.h"

namespace gatehouse::policies::rate_limit {
namespace {

constexpr int kMinBackoffMs = 50;
constexpr int kMaxBackoffMs = 1000;
// A Redis that stops answering (stopped, overloaded) without closing the socket: after this
// many consecutive call timeouts the connection is dropped and re-established.
constexpr int kMaxConsecutiveTimeouts = 3;

std::atomic<int64_t> g_connections_up{0};

int64_t bytesAvailable(int fd) {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0) return 0;
  return n;
}

uint64_t idOf(void* privdata) {
  return reinterpret_cast<uintptr_t>(privdata);
}
void* privOf(uint64_t id) {
  return reinterpret_cast<void*>(static_cast<uintptr_t>(id));
}

RedisConn* connOf(const redisAsyncContext* ac) {
  return static_cast<RedisConn*>(ac->data);
}

}  // namespace

std::string RedisEndpoint::id() const {
  return host + ":" + std::to_string(port) + "/" + std::to_string(database) + "/" + username + "/" +
         password;
}

int64_t RedisConn::connectionsUp() {
  return g_connections_up.load(std::memory_order_relaxed);
}

RedisConn& RedisConn::forThisThread(const std::string& ep_id, const RedisEndpoint& ep,
                                    std::string_view script) {
  // Destroyed at thread exit, after the worker's loop stopped but while it still exists.
  thread_local std::map<std::string, std::unique_ptr<RedisConn>, std::less<>> conns;
  auto it = conns.find(ep_id);
  if (it == conns.end()) {
    it = conns
             .emplace(ep_id, std::make_unique<RedisConn>(*runtime::EventLoop::current(), ep,
                                                         std::string(script)))
             .first;
  }
  return *it->second;
}

RedisConn::RedisConn(runtime::EventLoop& loop, RedisEndpoint ep, std::string script)
    : loop_(loop), ep_(std::move(ep)), script_(std::move(script)) {
  read_waiter_.conn = this;
  read_waiter_.on_ready = [](runtime::IoWaiter* w) {
    static_cast<ConnWaiter*>(w)->conn->onReadable();
  };
  write_waiter_.conn = this;
  write_waiter_.on_ready = [](runtime::IoWaiter* w) { static_cast<ConnWaiter*>(w)->conn->flush(); };
  connect();
}

RedisConn::~RedisConn() {
  closing_ = true;
  if (ac_) redisAsyncFree(ac_);  // fails every pending call (their waiters are gone by now)
}

void RedisConn::connect() {
  ac_ = redisAsyncConnect(ep_.host.c_str(), ep_.port);
  if (!ac_) {
    scheduleReconnect();
    return;
  }
  if (ac_->err) {
    log::warn("rate_limit: redis ", ep_.host, ":", ep_.port, ": ", ac_->errstr);
    redisAsyncFree(ac_);
    ac_ = nullptr;
    scheduleReconnect();
    return;
  }
  ac_->data = this;
  ac_->ev.data = this;
  ac_->ev.addRead = &hookAddRead;
  ac_->ev.delRead = &hookDelRead;
  ac_->ev.addWrite = &hookAddWrite;
  ac_->ev.delWrite = &hookDelWrite;
  ac_->ev.cleanup = &hookCleanup;
  fd_ = ac_->c.fd;
  setup_failed_ = false;
  io_ = runtime::IoHandle{};
  // The socket is still connecting: wait for the EPOLLOUT edge that says it is done (hiredis
  // takes SO_ERROR == 0 as "connected", which is also true while in progress).
  io_.write_ready = false;
  io_.read_ready = false;
  if (!loop_.add(fd_, io_)) {
    fd_ = -1;
    dropConnection("epoll registration failed");
    return;
  }
  io_.reader = &read_waiter_;
  io_.writer = &write_waiter_;
  want_write_ = true;
  // Pipelined behind the connect: hiredis buffers them until the socket is writable.
  if (!ep_.password.empty()) {
    if (ep_.username.empty()) {
      redisAsyncCommand(ac_, &onSetupReply, nullptr, "AUTH %b", ep_.password.data(),
                        ep_.password.size());
    } else {
      redisAsyncCommand(ac_, &onSetupReply, nullptr, "AUTH %b %b", ep_.username.data(),
                        ep_.username.size(), ep_.password.data(), ep_.password.size());
    }
  }
  if (ep_.database != 0) {
    redisAsyncCommand(ac_, &onSetupReply, nullptr, "SELECT %d", ep_.database);
  }
  redisAsyncCommand(ac_, &onScriptLoaded, nullptr, "SCRIPT LOAD %b", script_.data(),
                    script_.size());
  connect_timer_.arm(loop_, loop_.now() + ep_.connect_timeout, &onConnectTimeout, this);
}

void RedisConn::scheduleReconnect() {
  if (closing_ || reconnect_timer_.armed()) return;
  backoff_ms_ = backoff_ms_ == 0 ? kMinBackoffMs : std::min(kMaxBackoffMs, backoff_ms_ * 2);
  reconnect_timer_.arm(loop_, loop_.now() + std::chrono::milliseconds(backoff_ms_),
                       &onReconnectTimer, this);
}

void RedisConn::onReconnectTimer(void* arg) {
  auto* self = static_cast<RedisConn*>(arg);
  if (!self->ac_) self->connect();
}

void RedisConn::onConnectTimeout(void* arg) {
  auto* self = static_cast<RedisConn*>(arg);
  if (self->ac_ && !self->ready_) self->dropConnection("connect timed out");
}

void RedisConn::dropConnection(const char* why) {
  log::warn("rate_limit: redis ", ep_.host, ":", ep_.port, ": dropping the connection (", why, ")");
  if (ac_) {
    // Fails every pending call with a NULL reply and runs hookCleanup (which reconnects).
    redisAsyncFree(ac_);
  } else {
    scheduleReconnect();
  }
}

void RedisConn::hookCleanup(void* p) {
  auto* self = static_cast<RedisConn*>(p);
  if (self->fd_ >= 0) self->loop_.remove(self->fd_, self->io_);
  self->fd_ = -1;
  self->ac_ = nullptr;
  self->want_write_ = false;
  self->flush_timer_.cancel();
  self->connect_timer_.cancel();
  if (self->ready_) {
    self->ready_ = false;
    g_connections_up.fetch_sub(1, std::memory_order_relaxed);
    if (!self->closing_) {
      log::warn("rate_limit: redis ", self->ep_.host, ":", self->ep_.port,
                " connection lost; limits use their on_redis_error mode until it is back");
    }
  } else if (self->backoff_ms_ == 0 && !self->closing_) {
    log::warn("rate_limit: cannot connect to redis ", self->ep_.host, ":", self->ep_.port,
              "; retrying with backoff");
  }
  self->scheduleReconnect();
}

void RedisConn::hookAddRead(void*) {}  // the reader stays armed for the connection's life
void RedisConn::hookDelRead(void*) {}

void RedisConn::hookAddWrite(void* p) {
  auto* self = static_cast<RedisConn*>(p);
  self->want_write_ = true;
  if (self->io_.write_ready) {
    // Flush at the end of this loop iteration: every command issued until then goes out in
    // one write.
    if (!self->flush_timer_.armed()) {
      self->flush_timer_.arm(self->loop_, self->loop_.now(), &onFlushTimer, self);
    }
  } else {
    self->io_.writer = &self->write_waiter_;
  }
}

void RedisConn::hookDelWrite(void* p) {
  static_cast<RedisConn*>(p)->want_write_ = false;
}

void RedisConn::onFlushTimer(void* arg) {
  static_cast<RedisConn*>(arg)->flush();
}

void RedisConn::flush() {
  if (!ac_ || !want_write_) return;
  redisAsyncHandleWrite(ac_);
  if (ac_ && want_write_) {
    // Partial write: the socket buffer is full; the next EPOLLOUT edge resumes the flush.
    io_.write_ready = false;
    io_.writer = &write_waiter_;
  }
}

void RedisConn::onReadable() {
  redisAsyncContext* ac = ac_;
  if (!ac) return;
  // hiredis reads at most 16 KiB per call; edge-triggered readiness will not repeat for bytes
  // already queued, so keep going while the kernel holds more.
  for (int i = 0; i < 1024; ++i) {
    redisAsyncHandleRead(ac);
    if (ac_ != ac || bytesAvailable(fd_) <= 0) break;
  }
  if (ac_ == ac) io_.reader = &read_waiter_;
}

void RedisConn::onSetupReply(redisAsyncContext* ac, void* r, void*) {
  auto* reply = static_cast<redisReply*>(r);
  if (!reply) return;  // connection gone; cleanup handles it
  if (reply->type == REDIS_REPLY_ERROR) {
    auto* self = connOf(ac);
    self->setup_failed_ = true;
    log::error("rate_limit: redis ", self->ep_.host, ":", self->ep_.port,
               " setup failed: ", std::string(reply->str, reply->len));
    redisAsyncDisconnect(ac);  // deferred by hiredis until this callback returns
  }
}

void RedisConn::onScriptLoaded(redisAsyncContext* ac, void* r, void*) {
  auto* reply = static_cast<redisReply*>(r);
  auto* self = connOf(ac);
  if (!reply) return;
  if (reply->type != REDIS_REPLY_STRING || self->setup_failed_) {
    if (reply->type == REDIS_REPLY_ERROR) {
      log::error("rate_limit: redis SCRIPT LOAD failed: ", std::string(reply->str, reply->len));
    }
    redisAsyncDisconnect(ac);
    return;
  }
  self->sha_.assign(reply->str, reply->len);
  self->connect_timer_.cancel();
  if (!self->ready_) {
    self->ready_ = true;
    g_connections_up.fetch_add(1, std::memory_order_relaxed);
    if (self->backoff_ms_ != 0) {
      log::info("rate_limit: redis ", self->ep_.host, ":", self->ep_.port, " is back");
    }
  }
  self->backoff_ms_ = 0;
  self->consecutive_timeouts_ = 0;
}

RedisConn::Call RedisConn::eval(std::vector<std::string> args, int numkeys) {
  return Call(*this, std::move(args), numkeys);
}

void RedisConn::Call::await_suspend(std::coroutine_handle<> h) {
  RedisConn& c = conn_;
  w_.coro = h;
  if (!c.ac_) {
    w_.result.error = "not connected";
    c.loop_.schedule(h);
    return;
  }
  w_.id = c.next_id_++;
  c.waiting_[w_.id] = &w_;
  w_.timer.arm(c.loop_, c.loop_.now() + c.ep_.timeout, &onCallTimeout, &w_);
  // Before the first SCRIPT LOAD answered, send the script itself (pipelined after it).
  c.send(w_, c.sha_.empty());
}

RedisConn::Call::~Call() {
  // Destroyed before its reply (the request went away): a late reply finds no waiter.
  if (w_.id != 0) conn_.waiting_.erase(w_.id);
}

void RedisConn::send(Waiter& w, bool with_script_text) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  std::string numkeys = std::to_string(w.numkeys);
  argv.reserve(w.args.size() + 3);
  lens.reserve(w.args.size() + 3);
  auto push = [&](const std::string& s) {
    argv.push_back(s.data());
    lens.push_back(s.size());
  };
  static const std::string kEvalSha = "EVALSHA", kEval = "EVAL";
  push(with_script_text ? kEval : kEvalSha);
  push(with_script_text ? script_ : sha_);
  push(numkeys);
  for (const auto& a : w.args)
    push(a);
  if (redisAsyncCommandArgv(ac_, &onReply, privOf(w.id), static_cast<int>(argv.size()), argv.data(),
                            lens.data()) != REDIS_OK) {
    w.result.error = "command not queued";
    complete(w);
  }
}

void RedisConn::complete(Waiter& w) {
  waiting_.erase(w.id);
  w.id = 0;
  w.timer.cancel();
  // Resume from the loop, not from inside hiredis's read path.
  loop_.schedule(w.coro);
}

void RedisConn::onReply(redisAsyncContext* ac, void* r, void* privdata) {
  auto* self = connOf(ac);
  auto it = self->waiting_.find(idOf(privdata));
  if (it == self->waiting_.end()) return;  // timed out or abandoned
  Waiter& w = *it->second;
  auto* reply = static_cast<redisReply*>(r);
  if (self->setup_failed_) {
    // Queued behind a refused AUTH / SELECT: whatever it did, it was not in our database.
    w.result.error = "connection setup failed";
  } else if (!reply) {
    w.result.error = "connection lost";
  } else if (reply->type == REDIS_REPLY_ERROR) {
    std::string_view err(reply->str, reply->len);
    if (err.substr(0, 8) == "NOSCRIPT" && self->ac_) {
      // The server lost its script cache (restart, SCRIPT FLUSH): send the script itself,
      // which also caches it again for the next EVALSHA.
      self->send(w, true);
      return;
    }
    w.result.error = std::string(err);
  } else if (reply->type == REDIS_REPLY_ARRAY) {
    w.result.ok = true;
    for (size_t i = 0; i < reply->elements; ++i) {
      const redisReply* e = reply->element[i];
      w.result.ints.push_back(e->type == REDIS_REPLY_INTEGER ? e->integer : 0);
    }
    self->consecutive_timeouts_ = 0;
  } else {
    w.result.error = "unexpected reply type";
  }
  self->complete(w);
}

void RedisConn::onCallTimeout(void* arg) {
  auto& w = *static_cast<Waiter*>(arg);
  RedisConn* self = w.conn;
  w.result.timed_out = true;
  w.result.error = "timeout";
  self->complete(w);
  if (++self->consecutive_timeouts_ >= kMaxConsecutiveTimeouts && self->ac_) {
    self->consecutive_timeouts_ = 0;
    self->dropConnection("calls time out");
  }
}

}  // namespace gatehouse::policies::rate_limit
