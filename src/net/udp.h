#pragma once
// Non-blocking UDP sockets on an EventLoop: a listener socket bound with SO_REUSEPORT (one per
// worker, made on the control thread) and connected upstream sockets (one per UDP session).
// Each fd is registered once, edge-triggered; the owner's callback runs on every readable edge
// and reads until EAGAIN or its own budget. Nothing is queued: a datagram that cannot be sent
// now (a full socket buffer) is dropped, as UDP allows.
// A UdpSocket belongs to the thread of its loop.
#include <cstddef>
#include <memory>

#include "core/result.h"
#include "net/address.h"
#include "runtime/event_loop.h"

namespace gatehouse::net {

// The outcome of one send or receive: typed, never thrown.
enum class UdpStatus : uint8_t {
  kOk,
  kWouldBlock,  // nothing to read, or no room to send
  kRefused,     // ICMP port unreachable reported on a connected socket (ECONNREFUSED)
  kError,       // any other error (errno in `err`)
};

struct UdpReceived {
  UdpStatus status = UdpStatus::kOk;
  size_t len = 0;          // bytes placed in the buffer
  bool truncated = false;  // the datagram was longer than the buffer (MSG_TRUNC)
  SocketAddress from;      // the sender (unconnected sockets)
  int err = 0;
};

// Creates a bound, non-blocking UDP socket (any thread; adopt it on a loop later).
Result<int> bindUdpSocket(const SocketAddress& addr, bool reuse_port);

class UdpSocket {
 public:
  using OnReadable = void (*)(void* arg);
  // Takes `fd` (non-blocking UDP) and registers it on `loop`; `on_readable(arg)` runs on the
  // loop's thread at each readable edge, and may destroy this socket.
  UdpSocket(runtime::EventLoop& loop, int fd, OnReadable on_readable, void* arg);
  // A new socket connected to `to` (replies from anyone else are filtered by the kernel).
  static Result<std::unique_ptr<UdpSocket>> connect(runtime::EventLoop& loop,
                                                    const SocketAddress& to, OnReadable on_readable,
                                                    void* arg);
  ~UdpSocket();
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  UdpReceived receive(char* buf, size_t len);
  UdpStatus sendTo(const char* buf, size_t len, const SocketAddress& to);
  UdpStatus send(const char* buf, size_t len);  // connected sockets
  SocketAddress localAddress() const { return localAddressOf(fd_); }
  int fd() const { return fd_; }

 private:
  struct Waiter : runtime::IoWaiter {
    UdpSocket* socket = nullptr;
  };
  static void onReady(runtime::IoWaiter* self);

  runtime::EventLoop& loop_;
  int fd_;
  OnReadable on_readable_;
  void* arg_;
  Waiter waiter_;
  runtime::IoHandle io_;
};

}  // namespace gatehouse::net
