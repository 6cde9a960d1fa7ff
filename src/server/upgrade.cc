// Server's half of a zero-downtime binary upgrade (the protocol is in server/handover.h):
// SIGUSR2 starts the successor and hands it every listening socket; the successor's READY
// starts this process's drain; a successor that exits or stays silent leaves this process
// serving, with the reason logged.
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "core/log.h"
#include "server/server.h"

namespace gatehouse::server {

using namespace runtime;

namespace {

// How long the successor may take to load its config and start serving. Generous: a sanitized
// build on a loaded machine starts slowly, and the old process serves meanwhile.
constexpr auto kSuccessorReadyTimeout = std::chrono::seconds(60);

std::string readFirstLine(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

std::string describeExit(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "stopped";
}

}  // namespace

Status Server::inheritSockets() {
  const char* v = std::getenv(kUpgradeFdEnv);
  if (!v) return {};
  const int fd = std::atoi(v);
  // Not passed on to this process's own successor: it gets its own socket.
  ::unsetenv(kUpgradeFdEnv);
  if (fd <= 2 || ::fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kInternal,
                       std::string(kUpgradeFdEnv) + "=" + v + " is not an open socket");
  }
  predecessor_fd_ = fd;
  auto got = receiveSockets(fd, std::chrono::seconds(10));
  if (!got.ok()) return got.error();
  inherited_ = std::move(*got);
  size_t n = 0;
  for (const auto& [key, fds] : inherited_.listeners)
    n += fds.size();
  log::info("upgrade: took over ", n, " listening sockets",
            inherited_.admin_fd >= 0 ? " and the admin API" : "", " from the running process");
  return {};
}

void Server::announceServing() {
  // Listeners of the predecessor that this config no longer has.
  inherited_.closeRest();
  if (shutting_down_) return;  // a failed start: the predecessor sees the socket close
  if (predecessor_fd_ >= 0) {
    Status st = sendReady(predecessor_fd_);
    if (!st.ok()) log::warn("upgrade: could not tell the old process: ", st.error().message);
    ::close(predecessor_fd_);
    predecessor_fd_ = -1;
  }
  writePidFile();
}

void Server::writePidFile() {
  if (opts_.pid_file.empty()) return;
  const std::string tmp = opts_.pid_file + ".tmp";
  {
    std::ofstream f(tmp, std::ios::trunc);
    f << ::getpid() << "\n";
    if (!f) {
      log::error("pid file ", opts_.pid_file, ": cannot write");
      return;
    }
  }
  if (::rename(tmp.c_str(), opts_.pid_file.c_str()) != 0) {
    log::error("pid file ", opts_.pid_file, ": cannot write");
  }
}

void Server::removePidFile() {
  // After an upgrade the file names the successor: leave it.
  if (opts_.pid_file.empty()) return;
  if (readFirstLine(opts_.pid_file) == std::to_string(::getpid())) {
    ::unlink(opts_.pid_file.c_str());
  }
}

void Server::startUpgrade() {
  if (shutting_down_) {
    log::warn("upgrade: ignored, already draining");
    return;
  }
  if (successor_pid_ > 0) {
    log::warn("upgrade: ignored, process ", successor_pid_, " is starting already");
    return;
  }
  std::string binary = opts_.self_exe;
  if (!opts_.pid_file.empty()) {
    // `gatehouse upgrade --binary PATH` leaves the path here; it is used once.
    const std::string request = opts_.pid_file + ".binary";
    std::string asked = readFirstLine(request);
    if (!asked.empty()) binary = asked;
    ::unlink(request.c_str());
  }
  if (binary.empty() || opts_.argv.empty()) {
    log::error("upgrade: not possible: the binary path or the command line is unknown");
    return;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    log::error("upgrade failed: socketpair: ", std::strerror(errno));
    return;
  }
  std::vector<std::string> argv = opts_.argv;
  argv[0] = binary;
  auto pid = spawnSuccessor(binary, argv, sv[1]);
  ::close(sv[1]);
  if (!pid.ok()) {
    ::close(sv[0]);
    log::error("upgrade failed, still serving: ", pid.error().message);
    return;
  }
  std::vector<HandedSocket> sockets;
  for (const auto& [key, fds] : listen_fds_) {
    for (size_t w = 0; w < fds.size(); ++w) {
      if (fds[w] < 0) continue;
      sockets.push_back({HandedSocket::Kind::kListener, w, key, listener_names_[key], fds[w]});
    }
  }
  if (admin_ && admin_->fd() >= 0 && current_) {
    const auto& a = current_->config->admin;
    sockets.push_back({HandedSocket::Kind::kAdmin, 0, a.address + ":" + std::to_string(a.port),
                       "admin", admin_->fd()});
  }
  log::info("upgrade: started ", binary, " as process ", *pid, "; handing over ", sockets.size(),
            " sockets");
  successor_pid_ = *pid;
  if (Status st = sendSockets(sv[0], sockets); !st.ok()) {
    // Closing our end makes the successor give up; watchSuccessor reaps it.
    log::error("upgrade: ", st.error().message);
    ::shutdown(sv[0], SHUT_RDWR);
  }
  ::fcntl(sv[0], F_SETFL, ::fcntl(sv[0], F_GETFL) | O_NONBLOCK);
  spawn(watchSuccessor(sv[0], *pid));
}

Task<> Server::watchSuccessor(int sock, pid_t pid) {
  pid_t ready = 0;
  {
    net::TcpStream s(loop_, sock);  // closes the socket when done
    char buf[64];
    auto n = co_await s.read(buf, sizeof buf, loop_.now() + kSuccessorReadyTimeout);
    if (n.ok() && *n > 0) ready = parseReady(std::string_view(buf, *n));
  }
  if (ready == pid) {
    log::info("upgrade: process ", pid, " serves now; this process (", ::getpid(),
              ") stops accepting and drains");
    beginShutdown(true);
    co_return;
  }
  // Failed: reap the successor (it exits on its own after an error; a silent one is stopped).
  int status = 0;
  pid_t done = 0;
  for (int i = 0; i < 250 && done == 0; ++i) {
    done = ::waitpid(pid, &status, WNOHANG);
    if (done == 0) co_await loop_.sleepFor(std::chrono::milliseconds(20));
  }
  std::string why;
  if (done == pid) {
    why = "the new process " + describeExit(status) + " before it served (see its log above)";
  } else {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    why = "the new process did not become ready and was stopped";
  }
  successor_pid_ = 0;
  log::error("upgrade failed, still serving generation ", generation_, ": ", why);
}

}  // namespace gatehouse::server
