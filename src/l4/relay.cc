#include "l4/relay.h"

#include <fcntl.h>
#include <openssl/ssl.h>
#include <unistd.h>

#include <cerrno>

namespace gatehouse::l4 {
namespace {

constexpr unsigned kSpliceFlags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
constexpr size_t kDefaultPipeSize = 65536;

}  // namespace

std::unique_ptr<Pipe> Pipe::open(size_t size) {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return nullptr;
  size_t actual = kDefaultPipeSize;
  if (size != kDefaultPipeSize) {
    // Best effort: above /proc/sys/fs/pipe-max-size the default size stays.
    int r = ::fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(size));
    if (r > 0) actual = static_cast<size_t>(r);
  }
  return std::make_unique<Pipe>(fds[0], fds[1], actual);
}

Pipe::~Pipe() {
  ::close(fds_[0]);
  ::close(fds_[1]);
}

std::unique_ptr<Pipe> PipePool::take(size_t size) {
  for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
    if ((*it)->size() >= size && (*it)->size() <= 2 * size) {
      std::unique_ptr<Pipe> p = std::move(*it);
      idle_.erase(std::next(it).base());
      return p;
    }
  }
  return Pipe::open(size);
}

void PipePool::give(std::unique_ptr<Pipe> p) {
  if (!p || p->pending != 0 || idle_.size() >= max_idle_) return;  // closes it
  idle_.push_back(std::move(p));
}

runtime::Task<PumpEnd> pumpSplice(net::TcpStream& from, net::TcpStream& to, Pipe& pipe,
                                  PumpProgress& progress) {
  for (;;) {
    if (from.cancelled() || to.cancelled()) co_return PumpEnd::kCancelled;
    // Fill: only into an empty pipe, so a slow sink stops the reads (backpressure).
    ssize_t n = ::splice(from.fd(), nullptr, pipe.writeFd(), nullptr, pipe.size(), kSpliceFlags);
    if (n == 0) {
      // Half-close: the other direction may still be talking.
      if (progress.halfCloseSink()) to.shutdownWrite();
      co_return PumpEnd::kEof;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) co_return PumpEnd::kReadError;
      from.markDrained();
      if (!(co_await from.readable(runtime::kNoDeadline)).ok()) co_return PumpEnd::kCancelled;
      continue;
    }
    pipe.pending = static_cast<size_t>(n);
    // Drain the pipe into the sink, waiting for room as often as needed.
    while (pipe.pending > 0) {
      ssize_t m = ::splice(pipe.readFd(), nullptr, to.fd(), nullptr, pipe.pending, kSpliceFlags);
      if (m > 0) {
        pipe.pending -= static_cast<size_t>(m);
        progress.moved(static_cast<size_t>(m));
        continue;
      }
      if (m < 0 && errno == EINTR) continue;
      if (m < 0 && errno == EAGAIN) {
        to.markWriteBlocked();
        if (!(co_await to.writable(runtime::kNoDeadline)).ok()) co_return PumpEnd::kCancelled;
        continue;
      }
      co_return PumpEnd::kWriteError;
    }
  }
}

runtime::Task<PumpEnd> pumpCopy(net::TcpStream& from, net::TcpStream& to, size_t buffer_size,
                                PumpProgress& progress) {
  auto buf = std::make_unique_for_overwrite<char[]>(buffer_size);
  for (;;) {
    auto n = co_await from.read(buf.get(), buffer_size, runtime::kNoDeadline);
    if (!n.ok()) {
      co_return n.error().code == ErrorCode::kCancelled ? PumpEnd::kCancelled : PumpEnd::kReadError;
    }
    if (*n == 0) {
      // A TLS sink gets close_notify first, so its peer sees an orderly end, not a truncation.
      if (to.ssl()) (void)SSL_shutdown(to.ssl());
      if (progress.halfCloseSink()) to.shutdownWrite();
      co_return PumpEnd::kEof;
    }
    iovec v{buf.get(), *n};
    auto st = co_await to.writeAll(&v, 1, runtime::kNoDeadline);
    if (!st.ok()) {
      co_return st.error().code == ErrorCode::kCancelled ? PumpEnd::kCancelled
                                                         : PumpEnd::kWriteError;
    }
    progress.moved(*n);
  }
}

}  // namespace gatehouse::l4
