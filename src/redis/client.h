#pragma once
// An async Redis client (rate_limit and quota today; the cache and fleet code later): one
// connection per worker thread and Redis endpoint, driven by that worker's EventLoop through
// hiredis's async hooks. Never blocks the worker: connect, AUTH, SELECT and SCRIPT LOAD are
// pipelined on a non-blocking socket, every call has a deadline, and a lost connection is
// re-established with exponential backoff.
//
// TLS: hiredis 0.14 (Debian 12) has no TLS support, so with `tls` set the connection runs over
// our own net::TcpStream with OpenSSL (connect, handshake, reads and writes as coroutines on the
// same loop), and hiredis only formats commands and parses replies (redisReader). Replies come
// back in command order, so a FIFO of what was sent matches each reply to its call.
//
// Edge-triggered fit: the loop reports readiness once per edge, while hiredis reads at most
// 16 KiB per call; the adapter keeps calling hiredis while FIONREAD says bytes remain, so no
// reply is stranded without a further edge. Writes are flushed from a zero-delay timer, which
// also batches (pipelines) all commands issued in one loop iteration into one write.
#include <coroutine>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "runtime/event_loop.h"
#include "runtime/task.h"

struct redisAsyncContext;
struct redisReply;

namespace gatehouse::net {
class TlsClientContext;
}

namespace gatehouse::redis {

struct Endpoint {
  std::string host = "127.0.0.1";  // an IP address: no DNS lookup may block a worker
  int port = 6379;
  std::string username;
  std::string password;
  int database = 0;
  runtime::Duration timeout = std::chrono::milliseconds(100);  // per call
  runtime::Duration connect_timeout = std::chrono::seconds(1);
  // Redis Sentinel: when set, host/port are discovered (and re-discovered on every reconnect)
  // by asking these sentinels, in turn, for the master named `sentinel_master`.
  std::vector<std::pair<std::string, int>> sentinels;
  std::string sentinel_master;
  std::string sentinel_password;
  // TLS to Redis when set (built from redis.tls on the control thread; shared, immutable).
  std::shared_ptr<const net::TlsClientContext> tls;
  std::string tls_id;  // the TLS settings as text, part of id()

  std::string id() const;  // connections are shared per worker by this id
};

// The result of one script call.
struct CallResult {
  bool ok = false;
  bool timed_out = false;
  std::string error;
  std::vector<int64_t> ints;         // the script's array reply: integers (0 for other elements)
  std::vector<std::string> strings;  // its string elements, in order (none for an integer)
};

class Connection {
 public:
  // This thread's connection to `ep` that runs `script` (created on first use; `ep_id` is
  // ep.id(), computed once by the caller). `script` must be static text: callers that pass the
  // same script (rate_limit and quota) share a connection. Requires a running EventLoop.
  static Connection& forThisThread(const std::string& ep_id, const Endpoint& ep,
                                   std::string_view script);
  // Connections currently up, over all workers and endpoints (a metrics gauge).
  static int64_t connectionsUp();

  Connection(runtime::EventLoop& loop, Endpoint ep, std::string script);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connected, authenticated and the script is loaded.
  bool ready() const { return ready_; }
  // A connection exists or is being set up: calls queue behind the setup commands. False only
  // between reconnect attempts, when calls fail at once instead of waiting for their timeout.
  bool usable() const { return ac_ != nullptr || link_ != nullptr || discovering_; }

  class Call;
  // Awaitable: runs EVALSHA sha <numkeys> args... (EVAL on NOSCRIPT) with the call timeout.
  Call eval(std::vector<std::string> args, int numkeys);

 private:
  friend class Call;
  struct Waiter {
    CallResult result;
    std::coroutine_handle<> coro;
    runtime::Timer timer;
    std::vector<std::string> args;  // kept to retry with EVAL after NOSCRIPT
    int numkeys = 0;
    uint64_t id = 0;
    Connection* conn = nullptr;
  };

  // What a reply answers: a setup command (AUTH, SELECT), SCRIPT LOAD, or a call (by id).
  enum class ReplyKind : uint8_t { kSetup, kScript, kCall };
  struct TlsLink;

  void connect();
  void connectDirect();
  void connectTls();
  static runtime::Task<> discover(Connection* self, std::shared_ptr<bool> alive);
  void sendDeferred(bool connected);
  void queueSetup();  // AUTH, SELECT, SCRIPT LOAD
  void scheduleReconnect();
  void dropConnection(const char* why);
  // After a connection is gone (either transport): state, gauge, log, reconnect.
  void afterDisconnect();
  void teardownTls();
  void send(Waiter& w, bool with_script_text);
  // Queues one command on the current transport; false when it could not be queued.
  bool issue(ReplyKind kind, uint64_t id, int argc, const char** argv, const size_t* lens);
  void handleReply(ReplyKind kind, uint64_t id, redisReply* reply);
  void complete(Waiter& w);
  void onReadable();
  void flush();
  void kickTlsWriter();
  static runtime::Task<> runTls(std::shared_ptr<TlsLink> link);
  static runtime::Task<> writeTls(std::shared_ptr<TlsLink> link);

  static void onReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onSetupReply(redisAsyncContext* ac, void* reply, void* privdata);
  static void onScriptLoaded(redisAsyncContext* ac, void* reply, void* privdata);
  static void onCallTimeout(void* arg);
  static void onReconnectTimer(void* arg);
  static void onConnectTimeout(void* arg);
  static void onFlushTimer(void* arg);
  static void hookAddRead(void* p);
  static void hookDelRead(void* p);
  static void hookAddWrite(void* p);
  static void hookDelWrite(void* p);
  static void hookCleanup(void* p);

  runtime::EventLoop& loop_;
  Endpoint ep_;
  std::string script_;
  std::string sha_;
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<TlsLink> link_;  // the TLS transport, instead of ac_
  bool discovering_ = false;       // asking Sentinel for the master: calls wait in deferred_
  std::vector<uint64_t> deferred_;
  size_t next_sentinel_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  int fd_ = -1;
  bool ready_ = false;
  bool setup_failed_ = false;  // AUTH or SELECT refused on this connection: never ready
  bool want_write_ = false;
  bool closing_ = false;  // destructor running: no reconnect
  int backoff_ms_ = 0;
  int consecutive_timeouts_ = 0;
  uint64_t next_id_ = 1;
  std::unordered_map<uint64_t, Waiter*> waiting_;
  struct ConnWaiter : runtime::IoWaiter {
    Connection* conn = nullptr;
  };
  runtime::IoHandle io_;
  ConnWaiter read_waiter_;
  ConnWaiter write_waiter_;
  runtime::Timer reconnect_timer_;
  runtime::Timer connect_timer_;
  runtime::Timer flush_timer_;

 public:
  class Call {
   public:
    Call(Connection& c, std::vector<std::string> args, int numkeys) : conn_(c) {
      w_.args = std::move(args);
      w_.numkeys = numkeys;
      w_.conn = &c;
    }
    ~Call();
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;
    Call(Call&&) = delete;  // returned as a prvalue only (guaranteed elision)
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h);
    CallResult await_resume() { return std::move(w_.result); }

   private:
    Connection& conn_;
    Waiter w_;
  };
};

}  // namespace gatehouse::redis
