#include "net/udp.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace gatehouse::net {
namespace {

UdpStatus statusOf(int err) {
  if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) return UdpStatus::kWouldBlock;
  if (err == ECONNREFUSED) return UdpStatus::kRefused;
  return UdpStatus::kError;
}

Error socketError(const std::string& what, int err) {
  return Error::make(ErrorCode::kIo, ErrorSource::kInternal, what + ": " + std::strerror(err));
}

}  // namespace

Result<int> bindUdpSocket(const SocketAddress& addr, bool reuse_port) {
  int fd = ::socket(addr.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return socketError("socket", errno);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (addr.family() == AF_INET6) ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (::bind(fd, addr.sa(), addr.len) != 0) {
    int e = errno;
    ::close(fd);
    return socketError("cannot bind UDP " + addr.toString(), e);
  }
  return fd;
}

UdpSocket::UdpSocket(runtime::EventLoop& loop, int fd, OnReadable on_readable, void* arg)
    : loop_(loop), fd_(fd), on_readable_(on_readable), arg_(arg) {
  waiter_.socket = this;
  waiter_.on_ready = &UdpSocket::onReady;
  io_.reader = &waiter_;
  loop_.add(fd_, io_);
}

Result<std::unique_ptr<UdpSocket>> UdpSocket::connect(runtime::EventLoop& loop,
                                                      const SocketAddress& to,
                                                      OnReadable on_readable, void* arg) {
  int fd = ::socket(to.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return socketError("socket", errno);
  // A UDP connect() only records the peer: it never blocks.
  if (::connect(fd, to.sa(), to.len) != 0) {
    int e = errno;
    ::close(fd);
    return socketError("connect " + to.toString(), e);
  }
  return std::make_unique<UdpSocket>(loop, fd, on_readable, arg);
}

UdpSocket::~UdpSocket() {
  loop_.remove(fd_, io_);
  ::close(fd_);
}

void UdpSocket::onReady(runtime::IoWaiter* self) {
  UdpSocket* s = static_cast<Waiter*>(self)->socket;
  s->io_.reader = self;  // keep waiting for the next edge; the callback may destroy `s`
  s->on_readable_(s->arg_);
}

UdpReceived UdpSocket::receive(char* buf, size_t len) {
  UdpReceived r;
  iovec v{buf, len};
  msghdr msg{};
  msg.msg_name = &r.from.storage;
  msg.msg_namelen = sizeof r.from.storage;
  msg.msg_iov = &v;
  msg.msg_iovlen = 1;
  ssize_t n;
  do {
    n = ::recvmsg(fd_, &msg, 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    r.err = errno;
    r.status = statusOf(r.err);
    if (r.status == UdpStatus::kWouldBlock) io_.read_ready = false;
    return r;
  }
  r.from.len = msg.msg_namelen;
  r.len = static_cast<size_t>(n);
  r.truncated = (msg.msg_flags & MSG_TRUNC) != 0;
  return r;
}

UdpStatus UdpSocket::sendTo(const char* buf, size_t len, const SocketAddress& to) {
  ssize_t n;
  do {
    n = ::sendto(fd_, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, to.sa(), to.len);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? statusOf(errno) : UdpStatus::kOk;
}

UdpStatus UdpSocket::send(const char* buf, size_t len) {
  ssize_t n;
  do {
    n = ::send(fd_, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n < 0 ? statusOf(errno) : UdpStatus::kOk;
}

}  // namespace gatehouse::net
