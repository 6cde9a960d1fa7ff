#pragma once
// Moves bytes one way between two plain TCP sockets, with backpressure: at most one pipe (or
// one buffer) of bytes is in flight per direction, and nothing is read while the other side
// cannot take more. Two ways to move them: splice() through a pipe (zero-copy: the bytes stay in
// the kernel) or read()/write() through a buffer. The first-bytes hook of a future protocol
// inspector (TLS ClientHello, PROXY header) runs before the relay starts, on the copy path.
// Thread: the worker that owns both streams.
#include <cstdint>
#include <memory>
#include <vector>

#include "net/tcp.h"
#include "runtime/task.h"

namespace gatehouse::l4 {

// A pipe for splice(); its ends are closed on destruction.
class Pipe {
 public:
  // A non-blocking pipe of about `size` bytes (the kernel rounds it to pages).
  static std::unique_ptr<Pipe> open(size_t size);
  ~Pipe();
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  int readFd() const { return fds_[0]; }
  int writeFd() const { return fds_[1]; }
  size_t size() const { return size_; }
  // Bytes spliced in and not yet out; a pipe left non-empty is never reused.
  size_t pending = 0;

  Pipe(int r, int w, size_t size) : fds_{r, w}, size_(size) {}  // takes both fds

 private:
  int fds_[2];
  size_t size_;
};

// Empty pipes kept by a worker for the next connections (saves two syscalls and two fds'
// setup per direction). Worker thread only.
class PipePool {
 public:
  explicit PipePool(size_t max_idle = 64) : max_idle_(max_idle) {}
  std::unique_ptr<Pipe> take(size_t size);
  void give(std::unique_ptr<Pipe> p);
  size_t idle() const { return idle_.size(); }

 private:
  size_t max_idle_;
  std::vector<std::unique_ptr<Pipe>> idle_;
};

// How one direction ended.
enum class PumpEnd : uint8_t {
  kEof,         // the source sent FIN; the sink was shut down for writing (halfCloseSink)
  kReadError,   // the source failed (reset)
  kWriteError,  // the sink failed (reset, broken pipe)
  kCancelled,   // a stream was cancelled (timer, drain, the other direction's error)
};

// Progress of one direction, read by the session for its counters and idle timer.
struct PumpProgress {
  virtual ~PumpProgress() = default;
  // `n` bytes reached the sink. Worker thread.
  virtual void moved(size_t n) = 0;
  // The source sent FIN. True: shut the sink down for writing (half-close). False when the
  // caller closes the sink right after anyway (the other direction has ended too): its close()
  // sends the same FIN, one syscall fewer.
  virtual bool halfCloseSink() { return true; }
};

// Splices from `from` to `to` through `pipe` until EOF, an error or a cancel.
runtime::Task<PumpEnd> pumpSplice(net::TcpStream& from, net::TcpStream& to, Pipe& pipe,
                                  PumpProgress& progress);
// The same through a buffer of `buffer_size` bytes with read()/write().
runtime::Task<PumpEnd> pumpCopy(net::TcpStream& from, net::TcpStream& to, size_t buffer_size,
                                PumpProgress& progress);

}  // namespace gatehouse::l4
