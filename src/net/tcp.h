#pragma once
// Non-blocking TCP sockets on an EventLoop. Each fd is registered once (edge-triggered) for its
// whole life; reads and writes try the syscall first and wait only on EAGAIN, and a short read
// marks the socket drained so the next read waits without a wasted syscall.
// A TcpStream belongs to the thread of its loop.
#include <sys/uio.h>

#include <coroutine>
#include <cstddef>
#include <memory>
#include <span>

#include "core/result.h"
#include "net/address.h"
#include "runtime/event_loop.h"
#include "runtime/task.h"

struct ssl_st;

namespace gatehouse::net {

using runtime::TimePoint;

struct SslHandleDeleter {
  void operator()(ssl_st* ssl) const;
};

class TcpStream {
 public:
  TcpStream(runtime::EventLoop& loop, int fd);
  ~TcpStream();
  TcpStream(const TcpStream&) = delete;
  TcpStream& operator=(const TcpStream&) = delete;

  // Connects to `addr`; fails with kConnectFailed/kTimeout.
  static runtime::Task<Result<std::unique_ptr<TcpStream>>> connect(runtime::EventLoop& loop,
                                                                   const SocketAddress& addr,
                                                                   TimePoint deadline);

  struct ReadAwaiter : runtime::IoWaiter {
    TcpStream& s;
    char* buf;
    size_t len;
    TimePoint deadline;
    ssize_t result = 0;
    bool timed_out = false;
    bool want_write = false;  // TLS: the read must first write (wait for writability)
    runtime::Timer timer_;

    ReadAwaiter(TcpStream& st, char* b, size_t l, TimePoint d)
        : s(st), buf(b), len(l), deadline(d) {
      timer = &timer_;
    }
    ~ReadAwaiter() {
      if (s.io_.reader == this) s.io_.reader = nullptr;  // frame destroyed while waiting
    }
    bool tryRead();
    void park();
    bool await_ready() { return (s.io_.read_ready || s.tlsPending()) && tryRead(); }
    void await_suspend(std::coroutine_handle<> h);
    // Bytes read (0 = orderly EOF) or an error (kTimeout, kReset, kCancelled, kIo).
    Result<size_t> await_resume();
  };

  struct WriteAwaiter : runtime::IoWaiter {
    TcpStream& s;
    iovec* iov;
    int iovcnt;
    TimePoint deadline;
    bool timed_out = false;
    runtime::Timer timer_;

    WriteAwaiter(TcpStream& st, iovec* v, int n, TimePoint d)
        : s(st), iov(v), iovcnt(n), deadline(d) {
      timer = &timer_;
    }
    ~WriteAwaiter() {
      if (s.io_.writer == this) s.io_.writer = nullptr;
    }
    bool tryWrite();
    bool tryWriteTls();
    void park() { s.io_.writer = this; }
    bool await_ready() { return s.io_.write_ready && tryWrite(); }
    void await_suspend(std::coroutine_handle<> h);
    Status await_resume();
  };

  // Waits until the socket may be readable (or hung up) without holding a buffer: idle
  // keep-alive connections wait here. Ok(0) when ready; kTimeout / kCancelled otherwise.
  // Or, with `write`, until it may be writable (or hung up) after a write that would block:
  // relays that move bytes with their own syscalls (splice) wait there.
  struct ReadinessAwaiter : runtime::IoWaiter {
    TcpStream& s;
    TimePoint deadline;
    bool write;
    bool timed_out = false;
    runtime::Timer timer_;
    ReadinessAwaiter(TcpStream& st, TimePoint d, bool w) : s(st), deadline(d), write(w) {
      timer = &timer_;
    }
    ~ReadinessAwaiter() {
      runtime::IoWaiter*& slot = write ? s.io_.writer : s.io_.reader;
      if (slot == this) slot = nullptr;
    }
    bool await_ready() const {
      return s.cancelled_ || (write ? s.io_.write_ready : s.io_.read_ready || s.tlsPending());
    }
    void await_suspend(std::coroutine_handle<> h);
    Result<size_t> await_resume();
  };
  ReadinessAwaiter readable(TimePoint deadline) { return ReadinessAwaiter(*this, deadline, false); }
  // Same results as readable().
  ReadinessAwaiter writable(TimePoint deadline) { return ReadinessAwaiter(*this, deadline, true); }

  // Reads at most `len` bytes.
  ReadAwaiter read(char* buf, size_t len, TimePoint deadline) {
    return ReadAwaiter(*this, buf, len, deadline);
  }
  // Writes every byte of iov[0..n) (the iovec array is modified as it is consumed).
  WriteAwaiter writeAll(iovec* iov, int n, TimePoint deadline) {
    return WriteAwaiter(*this, iov, n, deadline);
  }

  // Switches the stream to TLS (server or client side, per `ssl`); takes ownership. Reads and
  // writes then go through OpenSSL on the same readiness model.
  void attachTls(ssl_st* ssl);
  bool tls() const { return static_cast<bool>(ssl_); }
  // Decrypted or raw bytes buffered inside OpenSSL: readable with no new socket edge.
  bool tlsPending() const { return ssl_ && tlsPendingSlow(); }
  ssl_st* ssl() const { return ssl_.get(); }
  // Runs the TLS handshake to completion.
  runtime::Task<Status> handshake(TimePoint deadline);

  // Wakes any pending read/write with kCancelled, and fails every later one (shutdown, tunnels).
  void cancel();
  // Records that a read would block now, so the next wait is for a new edge.
  void markDrained() { io_.read_ready = false; }
  // Records that a write would block now (the socket buffer is full).
  void markWriteBlocked() { io_.write_ready = false; }
  bool cancelled() const { return cancelled_; }
  // Wakes the pending read/write with kCancelled once; later operations work normally.
  void interrupt();
  void shutdownWrite();
  // Makes the close send RST instead of FIN (SO_LINGER 0): a relay tells one peer that the
  // other side failed, so a truncated stream never looks complete.
  void resetOnClose();
  // Best-effort, non-blocking: has the peer closed or sent bytes while the socket sat idle?
  // Used before reusing a pooled connection.
  bool idleCheckUsable();
  int fd() const { return fd_; }
  // Unregisters the socket and hands it back open, for a new owner (a mixed port peeks at the
  // ClientHello, then gives the socket to the HTTP or the TCP session). Plain streams only.
  int release();
  runtime::EventLoop& loop() { return loop_; }
  bool peerHungUp() const { return io_.hup; }
  // The peer's FIN has been seen (EPOLLRDHUP).
  bool peerShutWrite() const { return io_.rdhup; }
  void setNoDelay();
  // Calls fn(arg) once when the peer hangs up while no read is pending (IoHandle::on_hangup);
  // a hang-up seen before this call is not reported (check peerShutWrite/peerHungUp first).
  void watchHangup(void (*fn)(void*), void* arg) {
    io_.on_hangup = fn;
    io_.hangup_arg = arg;
  }
  void unwatchHangup() { io_.on_hangup = nullptr; }

 private:
  bool tlsPendingSlow() const;
  // Shared by the awaiters above; defined (and only instantiated) in tcp.cc.
  template <typename Awaiter, bool (Awaiter::*kAttempt)()>
  static void suspendUntilDone(Awaiter& a, std::coroutine_handle<> h);
  template <typename Awaiter, bool (Awaiter::*kAttempt)()>
  static void retryOnReady(runtime::IoWaiter* self);
  template <typename Awaiter>
  static void onTimeout(void* awaiter);
  runtime::EventLoop& loop_;
  int fd_;
  bool cancelled_ = false;
  bool not_socket_ = false;  // a signalfd or inotify fd read as a stream: read(), not recv()
  runtime::IoHandle io_;
  std::unique_ptr<ssl_st, SslHandleDeleter> ssl_;
};

// Creates a bound, listening, non-blocking socket (on any thread; adopt it on a loop later).
Result<int> bindListenSocket(const SocketAddress& addr, int backlog, bool reuse_port);

class TcpListener {
 public:
  // Takes ownership of a listening fd made by bindListenSocket().
  static std::unique_ptr<TcpListener> adopt(runtime::EventLoop& loop, int fd);
  // Binds with SO_REUSEPORT so each worker owns its own listening socket.
  static Result<std::unique_ptr<TcpListener>> bind(runtime::EventLoop& loop,
                                                   const SocketAddress& addr, int backlog,
                                                   bool reuse_port);
  ~TcpListener();
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  struct Accepted {
    int fd = -1;
    SocketAddress peer;
  };
  struct AcceptAwaiter : runtime::IoWaiter {
    TcpListener& l;
    Accepted out;
    explicit AcceptAwaiter(TcpListener& ls) : l(ls) {}
    ~AcceptAwaiter() {
      if (l.io_.reader == this) l.io_.reader = nullptr;
    }
    bool tryAccept();
    bool await_ready() { return l.closed_ || (l.io_.read_ready && tryAccept()); }
    void await_suspend(std::coroutine_handle<> h);
    Result<Accepted> await_resume();
  };
  AcceptAwaiter accept() { return AcceptAwaiter(*this); }
  // Stops accepting: a pending accept() completes with kCancelled.
  void close();
  SocketAddress localAddress() const;
  int fd() const { return fd_; }

 private:
  TcpListener(runtime::EventLoop& loop, int fd) : loop_(loop), fd_(fd) {}
  runtime::EventLoop& loop_;
  int fd_;
  bool closed_ = false;
  runtime::IoHandle io_;
};

}  // namespace gatehouse::net
