#include "redis/client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>

#include "core/log.h"
#include "metrics/per_thread.h"
#include "net/address.h"
#include "net/tcp.h"
#include "net/tls.h"

namespace gatehouse::redis {
namespace {

constexpr int kMinBackoffMs = 50;
constexpr int kMaxBackoffMs = 1000;
// A Redis that stops answering (stopped, overloaded) without closing the socket: after this
// many consecutive call timeouts the connection is dropped and re-established.
constexpr int kMaxConsecutiveTimeouts = 3;

// Connections set up and ready, over all workers (a gauge): each thread adds its ups and downs
// to its own share, summed when read, so workers never write a shared cache line.
struct ConnectionsUp {
  metrics::Gauge up;
};
metrics::Gauge& connectionsUpShare() {
  return metrics::processCells<ConnectionsUp>().local().up;
}

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

Connection* connOf(const redisAsyncContext* ac) {
  return static_cast<Connection*>(ac->data);
}

}  // namespace

// The TLS transport of one connection attempt. Its coroutines hold it (and so the stream)
// alive; `owner` is cleared when the connection is dropped, and they stop at their next step.
struct Connection::TlsLink {
  Connection* owner = nullptr;
  std::unique_ptr<net::TcpStream> stream;
  redisReader* reader = redisReaderCreate();
  std::string out;                                  // formatted commands not written yet
  std::deque<std::pair<ReplyKind, uint64_t>> sent;  // in order: what each reply answers
  bool connected = false;                           // handshake done: `out` may be written
  bool writing = false;
  TlsLink() = default;
  TlsLink(const TlsLink&) = delete;
  TlsLink& operator=(const TlsLink&) = delete;
  ~TlsLink() { redisReaderFree(reader); }
};

std::string Endpoint::id() const {
  std::string id = host + ":" + std::to_string(port) + "/" + std::to_string(database) + "/" +
                   username + "/" + password + (tls ? "/tls:" + tls_id : "");
  if (!sentinels.empty()) {
    id += "/sentinel:" + sentinel_master + "/" + sentinel_password;
    for (const auto& [h, p] : sentinels)
      id += "," + h + ":" + std::to_string(p);
  }
  return id;
}

int64_t Connection::connectionsUp() {
  int64_t total = 0;
  metrics::processCells<ConnectionsUp>().forEach(
      [&](const ConnectionsUp& c) { total += c.up.get(); });
  return total;
}

Connection& Connection::forThisThread(const std::string& ep_id, const Endpoint& ep,
                                      std::string_view script) {
  // Destroyed at thread exit, after the worker's loop stopped but while it still exists.
  // One table per script: a connection loads one script, and a script (static text) is named by
  // its address.
  using Table = std::map<std::string, std::unique_ptr<Connection>, std::less<>>;
  thread_local std::vector<std::pair<const char*, Table>> by_script;
  auto table = std::find_if(by_script.begin(), by_script.end(),
                            [&](const auto& t) { return t.first == script.data(); });
  if (table == by_script.end()) table = by_script.emplace(by_script.end(), script.data(), Table{});
  Table& conns = table->second;
  auto it = conns.find(ep_id);
  if (it == conns.end()) {
    it = conns
             .emplace(ep_id, std::make_unique<Connection>(*runtime::EventLoop::current(), ep,
                                                          std::string(script)))
             .first;
  }
  return *it->second;
}

Connection::Connection(runtime::EventLoop& loop, Endpoint ep, std::string script)
    : loop_(loop), ep_(std::move(ep)), script_(std::move(script)) {
  read_waiter_.conn = this;
  read_waiter_.on_ready = [](runtime::IoWaiter* w) {
    static_cast<ConnWaiter*>(w)->conn->onReadable();
  };
  write_waiter_.conn = this;
  write_waiter_.on_ready = [](runtime::IoWaiter* w) { static_cast<ConnWaiter*>(w)->conn->flush(); };
  connect();
}

Connection::~Connection() {
  closing_ = true;
  *alive_ = false;
  if (ac_) redisAsyncFree(ac_);  // fails every pending call (their waiters are gone by now)
  if (link_) teardownTls();
}

void Connection::connect() {
  if (!ep_.sentinels.empty()) {
    discovering_ = true;
    runtime::spawn(discover(this, alive_));
    return;
  }
  connectDirect();
}

// Asks the sentinels in turn (starting after the last one that answered wrongly) for the
// master's address, then connects to it. Plain TCP, one short exchange per sentinel, each with
// the connect timeout; the worker keeps running meanwhile.
runtime::Task<> Connection::discover(Connection* self, std::shared_ptr<bool> alive) {
  const auto& ep = self->ep_;
  std::string found_host;
  int found_port = 0;
  for (size_t attempt = 0; attempt < ep.sentinels.size() && found_port == 0; ++attempt) {
    const auto& [host, port] = ep.sentinels[(self->next_sentinel_ + attempt) % ep.sentinels.size()];
    auto addr = net::SocketAddress::parse(host, static_cast<uint16_t>(port));
    if (!addr.ok()) continue;
    const runtime::TimePoint deadline = self->loop_.now() + ep.connect_timeout;
    auto s = co_await net::TcpStream::connect(self->loop_, *addr, deadline);
    if (!*alive) co_return;
    if (!s.ok()) continue;
    std::string out;
    auto append = [&](std::initializer_list<std::string_view> parts) {
      std::vector<const char*> argv;
      std::vector<size_t> lens;
      for (auto p : parts) {
        argv.push_back(p.data());
        lens.push_back(p.size());
      }
      char* cmd = nullptr;
      int len =
          redisFormatCommandArgv(&cmd, static_cast<int>(argv.size()), argv.data(), lens.data());
      if (len > 0 && cmd) out.append(cmd, static_cast<size_t>(len));
      redisFreeCommand(cmd);
    };
    const bool auth = !ep.sentinel_password.empty();
    if (auth) append({"AUTH", ep.sentinel_password});
    append({"SENTINEL", "get-master-addr-by-name", ep.sentinel_master});
    iovec v{out.data(), out.size()};
    Status st = co_await (*s)->writeAll(&v, 1, deadline);
    if (!*alive) co_return;
    if (!st.ok()) continue;
    std::unique_ptr<redisReader, void (*)(redisReader*)> reader(redisReaderCreate(),
                                                                &redisReaderFree);
    char buf[1024];
    int replies = 0;
    bool done = false;
    while (!done) {
      auto n = co_await (*s)->read(buf, sizeof buf, deadline);
      if (!*alive) co_return;
      if (!n.ok() || *n == 0 || redisReaderFeed(reader.get(), buf, *n) != REDIS_OK) break;
      for (;;) {
        void* r = nullptr;
        if (redisReaderGetReply(reader.get(), &r) != REDIS_OK) {
          done = true;
          break;
        }
        if (!r) break;
        auto* reply = static_cast<redisReply*>(r);
        if (++replies == (auth ? 2 : 1)) {
          done = true;
          if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
              reply->element[0]->type == REDIS_REPLY_STRING &&
              reply->element[1]->type == REDIS_REPLY_STRING) {
            found_host.assign(reply->element[0]->str, reply->element[0]->len);
            found_port = std::atoi(reply->element[1]->str);
          }
        }
        freeReplyObject(r);
        if (done) break;
      }
    }
    if (found_port == 0) {
      log::warn("redis: sentinel ", host, ":", port, " did not name a master for '",
                ep.sentinel_master, "'");
      self->next_sentinel_ = (self->next_sentinel_ + attempt + 1) % ep.sentinels.size();
    }
  }
  self->discovering_ = false;
  if (found_port <= 0 || found_port > 65535 ||
      !net::SocketAddress::parse(found_host, static_cast<uint16_t>(found_port)).ok()) {
    if (!found_host.empty()) {
      log::warn("redis: sentinel named master ", found_host, ":", found_port,
                ", which is not an IP address and port");
    }
    self->sendDeferred(false);
    self->afterDisconnect();  // backoff, then ask again
    co_return;
  }
  if (found_host != self->ep_.host || found_port != self->ep_.port) {
    log::info("redis: sentinel: master '", ep.sentinel_master, "' is ", found_host, ":",
              found_port);
  }
  self->ep_.host = found_host;
  self->ep_.port = found_port;
  self->connectDirect();
  self->sendDeferred(self->ac_ != nullptr || self->link_ != nullptr);
}

void Connection::sendDeferred(bool connected) {
  std::vector<uint64_t> ids = std::move(deferred_);
  deferred_.clear();
  for (uint64_t id : ids) {
    auto it = waiting_.find(id);
    if (it == waiting_.end()) continue;  // timed out meanwhile
    if (connected) {
      send(*it->second, sha_.empty());
    } else {
      it->second->result.error = "no redis master";
      complete(*it->second);
    }
  }
}

void Connection::connectDirect() {
  if (ep_.tls) {
    connectTls();
    return;
  }
  ac_ = redisAsyncConnect(ep_.host.c_str(), ep_.port);
  if (!ac_) {
    scheduleReconnect();
    return;
  }
  if (ac_->err) {
    log::warn("redis ", ep_.host, ":", ep_.port, ": ", ac_->errstr);
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
  queueSetup();
  connect_timer_.arm(loop_, loop_.now() + ep_.connect_timeout, &onConnectTimeout, this);
}

void Connection::queueSetup() {
  auto cmd = [&](std::initializer_list<std::string_view> parts, ReplyKind kind) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (auto p : parts) {
      argv.push_back(p.data());
      lens.push_back(p.size());
    }
    issue(kind, 0, static_cast<int>(argv.size()), argv.data(), lens.data());
  };
  if (!ep_.password.empty()) {
    if (ep_.username.empty()) {
      cmd({"AUTH", ep_.password}, ReplyKind::kSetup);
    } else {
      cmd({"AUTH", ep_.username, ep_.password}, ReplyKind::kSetup);
    }
  }
  const std::string db = std::to_string(ep_.database);
  if (ep_.database != 0) cmd({"SELECT", db}, ReplyKind::kSetup);
  cmd({"SCRIPT", "LOAD", script_}, ReplyKind::kScript);
}

void Connection::connectTls() {
  link_ = std::make_shared<TlsLink>();
  link_->owner = this;
  setup_failed_ = false;
  queueSetup();  // written once the handshake is done
  connect_timer_.arm(loop_, loop_.now() + ep_.connect_timeout, &onConnectTimeout, this);
  runtime::spawn(runTls(link_));
}

runtime::Task<> Connection::runTls(std::shared_ptr<TlsLink> link) {
  Connection* self = link->owner;
  auto addr = net::SocketAddress::parse(self->ep_.host, static_cast<uint16_t>(self->ep_.port));
  if (!addr.ok()) {
    self->dropConnection("bad address");
    co_return;
  }
  const runtime::TimePoint deadline = self->loop_.now() + self->ep_.connect_timeout;
  auto s = co_await net::TcpStream::connect(self->loop_, *addr, deadline);
  if (!link->owner) co_return;
  if (!s.ok()) {
    link->owner->dropConnection("connect failed");
    co_return;
  }
  link->stream = std::move(*s);
  link->stream->setNoDelay();
  auto ssl = self->ep_.tls->newSsl(self->ep_.host);
  if (!ssl) {
    self->dropConnection("cannot create a TLS session");
    co_return;
  }
  link->stream->attachTls(ssl.release());
  Status hs = co_await link->stream->handshake(deadline);
  if (!link->owner) co_return;
  if (!hs.ok()) {
    log::error("redis ", self->ep_.host, ":", self->ep_.port,
               " TLS handshake failed: ", hs.error().message);
    link->owner->dropConnection("TLS handshake failed");
    co_return;
  }
  link->connected = true;
  self->kickTlsWriter();
  std::string buf(16384, '\0');
  for (;;) {
    auto n = co_await link->stream->read(buf.data(), buf.size(), runtime::kNoDeadline);
    if (!link->owner) co_return;
    if (!n.ok() || *n == 0) {
      link->owner->dropConnection("connection closed");
      co_return;
    }
    if (redisReaderFeed(link->reader, buf.data(), *n) != REDIS_OK) {
      link->owner->dropConnection("protocol error");
      co_return;
    }
    for (;;) {
      void* r = nullptr;
      if (redisReaderGetReply(link->reader, &r) != REDIS_OK || (r && link->sent.empty())) {
        if (r) freeReplyObject(r);
        link->owner->dropConnection("protocol error");
        co_return;
      }
      if (!r) break;
      auto [kind, id] = link->sent.front();
      link->sent.pop_front();
      link->owner->handleReply(kind, id, static_cast<redisReply*>(r));
      freeReplyObject(r);
      if (!link->owner) co_return;  // the reply made it drop the connection
    }
  }
}

void Connection::kickTlsWriter() {
  if (link_ && link_->connected && !link_->writing && !link_->out.empty()) {
    runtime::spawn(writeTls(link_));
  }
}

runtime::Task<> Connection::writeTls(std::shared_ptr<TlsLink> link) {
  link->writing = true;
  while (link->owner && !link->out.empty()) {
    std::string chunk = std::move(link->out);
    link->out.clear();
    iovec v{chunk.data(), chunk.size()};
    // No deadline of its own: every call has one, and timeouts drop a stuck connection.
    Status st = co_await link->stream->writeAll(&v, 1, runtime::kNoDeadline);
    if (!link->owner) break;
    if (!st.ok()) {
      link->writing = false;
      link->owner->dropConnection("write failed");
      co_return;
    }
  }
  link->writing = false;
}

void Connection::teardownTls() {
  std::shared_ptr<TlsLink> link = std::move(link_);
  link->owner = nullptr;
  if (link->stream) link->stream->cancel();
  // Calls still waiting for a reply on this link fail now (as hiredis does on a lost link).
  for (const auto& [kind, id] : link->sent) {
    if (kind != ReplyKind::kCall) continue;
    auto it = waiting_.find(id);
    if (it == waiting_.end()) continue;
    it->second->result.error = "connection lost";
    complete(*it->second);
  }
  link->sent.clear();
  afterDisconnect();
}

bool Connection::issue(ReplyKind kind, uint64_t id, int argc, const char** argv,
                       const size_t* lens) {
  if (ac_) {
    redisCallbackFn* fn = kind == ReplyKind::kSetup    ? &onSetupReply
                          : kind == ReplyKind::kScript ? &onScriptLoaded
                                                       : &onReply;
    return redisAsyncCommandArgv(ac_, fn, privOf(id), argc, argv, lens) == REDIS_OK;
  }
  if (!link_) return false;
  char* cmd = nullptr;
  int len = redisFormatCommandArgv(&cmd, argc, argv, lens);
  if (len < 0 || !cmd) return false;
  link_->out.append(cmd, static_cast<size_t>(len));
  redisFreeCommand(cmd);
  link_->sent.emplace_back(kind, id);
  // Written at the end of this loop iteration: commands issued until then share one write.
  if (!flush_timer_.armed()) flush_timer_.arm(loop_, loop_.now(), &onFlushTimer, this);
  return true;
}

void Connection::scheduleReconnect() {
  if (closing_ || reconnect_timer_.armed()) return;
  backoff_ms_ = backoff_ms_ == 0 ? kMinBackoffMs : std::min(kMaxBackoffMs, backoff_ms_ * 2);
  reconnect_timer_.arm(loop_, loop_.now() + std::chrono::milliseconds(backoff_ms_),
                       &onReconnectTimer, this);
}

void Connection::onReconnectTimer(void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (!self->usable()) self->connect();
}

void Connection::onConnectTimeout(void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if ((self->ac_ || self->link_) && !self->ready_) self->dropConnection("connect timed out");
}

void Connection::dropConnection(const char* why) {
  if (!closing_) {
    log::warn("redis ", ep_.host, ":", ep_.port, ": dropping the connection (", why, ")");
  }
  if (ac_) {
    // Fails every pending call with a NULL reply and runs hookCleanup (which reconnects).
    redisAsyncFree(ac_);
  } else if (link_) {
    teardownTls();
  } else {
    scheduleReconnect();
  }
}

void Connection::hookCleanup(void* p) {
  auto* self = static_cast<Connection*>(p);
  if (self->fd_ >= 0) self->loop_.remove(self->fd_, self->io_);
  self->fd_ = -1;
  self->ac_ = nullptr;
  self->want_write_ = false;
  self->afterDisconnect();
}

void Connection::afterDisconnect() {
  flush_timer_.cancel();
  connect_timer_.cancel();
  if (ready_) {
    ready_ = false;
    connectionsUpShare().dec();
    if (!closing_) {
      log::warn("redis ", ep_.host, ":", ep_.port,
                " connection lost; limits use their on_redis_error mode until it is back");
    }
  } else if (backoff_ms_ == 0 && !closing_) {
    log::warn("redis: cannot connect to ", ep_.host, ":", ep_.port, "; retrying with backoff");
  }
  scheduleReconnect();
}

void Connection::hookAddRead(void*) {}  // the reader stays armed for the connection's life
void Connection::hookDelRead(void*) {}

void Connection::hookAddWrite(void* p) {
  auto* self = static_cast<Connection*>(p);
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

void Connection::hookDelWrite(void* p) {
  static_cast<Connection*>(p)->want_write_ = false;
}

void Connection::onFlushTimer(void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->link_) {
    self->kickTlsWriter();
  } else {
    self->flush();
  }
}

void Connection::flush() {
  if (!ac_ || !want_write_) return;
  redisAsyncHandleWrite(ac_);
  if (ac_ && want_write_) {
    // Partial write: the socket buffer is full; the next EPOLLOUT edge resumes the flush.
    io_.write_ready = false;
    io_.writer = &write_waiter_;
  }
}

void Connection::onReadable() {
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

void Connection::onSetupReply(redisAsyncContext* ac, void* r, void*) {
  connOf(ac)->handleReply(ReplyKind::kSetup, 0, static_cast<redisReply*>(r));
}

void Connection::onScriptLoaded(redisAsyncContext* ac, void* r, void*) {
  connOf(ac)->handleReply(ReplyKind::kScript, 0, static_cast<redisReply*>(r));
}

void Connection::onReply(redisAsyncContext* ac, void* r, void* privdata) {
  connOf(ac)->handleReply(ReplyKind::kCall, idOf(privdata), static_cast<redisReply*>(r));
}

void Connection::handleReply(ReplyKind kind, uint64_t id, redisReply* reply) {
  // Inside a hiredis callback a disconnect is deferred until the callback returns; on the TLS
  // link the drop is immediate and the read loop stops after this reply.
  auto disconnect = [this](const char* why) {
    if (ac_) {
      redisAsyncDisconnect(ac_);
    } else {
      dropConnection(why);
    }
  };
  if (kind == ReplyKind::kSetup) {
    if (!reply) return;  // connection gone; cleanup handles it
    if (reply->type == REDIS_REPLY_ERROR) {
      setup_failed_ = true;
      log::error("redis ", ep_.host, ":", ep_.port,
                 " setup failed: ", std::string(reply->str, reply->len));
      disconnect("setup failed");
    }
    return;
  }
  if (kind == ReplyKind::kScript) {
    if (!reply) return;
    if (reply->type != REDIS_REPLY_STRING || setup_failed_) {
      if (reply->type == REDIS_REPLY_ERROR) {
        log::error("redis: SCRIPT LOAD failed: ", std::string(reply->str, reply->len));
      }
      if (ac_ || link_) disconnect("script not loaded");
      return;
    }
    sha_.assign(reply->str, reply->len);
    connect_timer_.cancel();
    if (!ready_) {
      ready_ = true;
      connectionsUpShare().inc();
      if (backoff_ms_ != 0) log::info("redis ", ep_.host, ":", ep_.port, " is back");
    }
    backoff_ms_ = 0;
    consecutive_timeouts_ = 0;
    return;
  }
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;  // timed out or abandoned
  Waiter& w = *it->second;
  if (setup_failed_) {
    // Queued behind a refused AUTH / SELECT: whatever it did, it was not in our database.
    w.result.error = "connection setup failed";
  } else if (!reply) {
    w.result.error = "connection lost";
  } else if (reply->type == REDIS_REPLY_ERROR) {
    std::string_view err(reply->str, reply->len);
    if (err.substr(0, 8) == "NOSCRIPT" && usable()) {
      // The server lost its script cache (restart, SCRIPT FLUSH): send the script itself,
      // which also caches it again for the next EVALSHA.
      send(w, true);
      return;
    }
    w.result.error = std::string(err);
    if (err.substr(0, 8) == "READONLY") {
      // A failover made our server a replica: reconnect (and ask Sentinel again).
      complete(w);
      disconnect("the server is a read-only replica");
      return;
    }
  } else if (reply->type == REDIS_REPLY_ARRAY) {
    w.result.ok = true;
    for (size_t i = 0; i < reply->elements; ++i) {
      const redisReply* e = reply->element[i];
      w.result.ints.push_back(e->type == REDIS_REPLY_INTEGER ? e->integer : 0);
      if (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) {
        w.result.strings.emplace_back(e->str, e->len);
      }
    }
    consecutive_timeouts_ = 0;
  } else {
    w.result.error = "unexpected reply type";
  }
  complete(w);
}

Connection::Call Connection::eval(std::vector<std::string> args, int numkeys) {
  return Call(*this, std::move(args), numkeys);
}

void Connection::Call::await_suspend(std::coroutine_handle<> h) {
  Connection& c = conn_;
  w_.coro = h;
  if (!c.usable()) {
    w_.result.error = "not connected";
    c.loop_.schedule(h);
    return;
  }
  w_.id = c.next_id_++;
  c.waiting_[w_.id] = &w_;
  w_.timer.arm(c.loop_, c.loop_.now() + c.ep_.timeout, &onCallTimeout, &w_);
  if (c.discovering_) {
    c.deferred_.push_back(w_.id);  // sent once the master is known
    return;
  }
  // Before the first SCRIPT LOAD answered, send the script itself (pipelined after it).
  c.send(w_, c.sha_.empty());
}

Connection::Call::~Call() {
  // Destroyed before its reply (the request went away): a late reply finds no waiter.
  if (w_.id != 0) conn_.waiting_.erase(w_.id);
}

void Connection::send(Waiter& w, bool with_script_text) {
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
  if (!issue(ReplyKind::kCall, w.id, static_cast<int>(argv.size()), argv.data(), lens.data())) {
    w.result.error = "command not queued";
    complete(w);
  }
}

void Connection::complete(Waiter& w) {
  waiting_.erase(w.id);
  w.id = 0;
  w.timer.cancel();
  // Resume from the loop, not from inside hiredis's read path.
  loop_.schedule(w.coro);
}

void Connection::onCallTimeout(void* arg) {
  auto& w = *static_cast<Waiter*>(arg);
  Connection* self = w.conn;
  w.result.timed_out = true;
  w.result.error = "timeout";
  self->complete(w);
  if (++self->consecutive_timeouts_ >= kMaxConsecutiveTimeouts && self->usable()) {
    self->consecutive_timeouts_ = 0;
    self->dropConnection("calls time out");
  }
}

}  // namespace gatehouse::redis
