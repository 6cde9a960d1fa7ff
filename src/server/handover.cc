#include "server/handover.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

extern char** environ;

namespace gatehouse::server {
namespace {

constexpr size_t kMaxMessage = 1024;

Error sysError(const char* what, int err) {
  return Error::make(ErrorCode::kIo, ErrorSource::kInternal,
                     std::string(what) + ": " + std::strerror(err));
}

Status sendMessage(int sock, const std::string& text, int fd) {
  msghdr msg{};
  iovec iov{const_cast<char*>(text.data()), text.size()};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    std::memset(control, 0, sizeof control);
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd, sizeof(int));
  }
  for (;;) {
    if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return {};
    if (errno != EINTR) return sysError("handover: send", errno);
  }
}

void setTimeouts(int sock, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// The next space-separated word of `text`, consumed; empty at the end.
std::string_view nextWord(std::string_view& text) {
  const size_t start = text.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    text = {};
    return {};
  }
  text.remove_prefix(start);
  const size_t end = std::min(text.find(' '), text.size());
  std::string_view word = text.substr(0, end);
  text.remove_prefix(end);
  return word;
}

}  // namespace

std::optional<HandoverMessage> parseHandoverMessage(std::string_view text) {
  HandoverMessage m;
  const std::string_view tag = nextWord(text);
  if (tag == "END") {
    if (!nextWord(text).empty()) return std::nullopt;
    return m;
  }
  if (tag == "A") {
    m.tag = HandoverMessage::Tag::kAdmin;
    m.key = nextWord(text);
    if (m.key.empty() || !nextWord(text).empty()) return std::nullopt;
    return m;
  }
  if (tag != "L") return std::nullopt;
  m.tag = HandoverMessage::Tag::kListener;
  const std::string_view worker = nextWord(text);
  auto [end, ec] = std::from_chars(worker.data(), worker.data() + worker.size(), m.worker);
  if (worker.empty() || ec != std::errc() || end != worker.data() + worker.size() ||
      m.worker >= kMaxHandoverWorkers) {
    return std::nullopt;
  }
  m.key = nextWord(text);
  if (m.key.empty()) return std::nullopt;
  // The name is the rest: a listener's name may hold spaces.
  const size_t start = text.find_first_not_of(' ');
  if (start != std::string_view::npos) m.name = text.substr(start);
  return m;
}

int InheritedSockets::take(const std::string& key, size_t worker) {
  auto it = listeners.find(key);
  if (it == listeners.end() || worker >= it->second.size()) return -1;
  return std::exchange(it->second[worker], -1);
}

int InheritedSockets::takeAdmin(const std::string& key) {
  if (key != admin_key) return -1;
  return std::exchange(admin_fd, -1);
}

void InheritedSockets::closeRest() {
  for (auto& [key, fds] : listeners) {
    for (int& fd : fds) {
      if (fd >= 0) ::close(std::exchange(fd, -1));
    }
  }
  listeners.clear();
  if (admin_fd >= 0) ::close(std::exchange(admin_fd, -1));
}

Status sendSockets(int sock, const std::vector<HandedSocket>& sockets) {
  setTimeouts(sock, std::chrono::seconds(5));
  for (const HandedSocket& s : sockets) {
    std::string text = s.kind == HandedSocket::Kind::kAdmin
                           ? "A " + s.key
                           : "L " + std::to_string(s.worker) + " " + s.key + " " + s.name;
    if (text.size() > kMaxMessage) {
      return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kInternal,
                         "handover: listener key too long: " + s.key);
    }
    Status st = sendMessage(sock, text, s.fd);
    if (!st.ok()) return st;
  }
  return sendMessage(sock, "END", -1);
}

Result<InheritedSockets> receiveSockets(int sock, std::chrono::milliseconds timeout) {
  setTimeouts(sock, timeout);
  InheritedSockets out;
  auto fail = [&](Error e) {
    out.closeRest();
    return e;
  };
  for (;;) {
    char buf[kMaxMessage + 1];
    iovec iov{buf, kMaxMessage};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(sysError("handover: receive", errno));
    if (n == 0) {
      return fail(Error::make(ErrorCode::kClosed, ErrorSource::kInternal,
                              "handover: the old process closed the socket before END"));
    }
    int fd = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int got;
        std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        if (fd < 0) {
          fd = got;
        } else {
          ::close(got);  // one fd per message; anything more is not ours to keep
        }
      }
    }
    std::string_view text(buf, static_cast<size_t>(n));
    const std::optional<HandoverMessage> m = parseHandoverMessage(text);
    if (m && m->tag == HandoverMessage::Tag::kEnd) {
      if (fd >= 0) ::close(fd);
      return out;
    }
    if (m && m->tag == HandoverMessage::Tag::kAdmin && fd >= 0) {
      if (out.admin_fd >= 0) ::close(out.admin_fd);
      out.admin_fd = fd;
      out.admin_key = m->key;
      continue;
    }
    if (m && m->tag == HandoverMessage::Tag::kListener && fd >= 0) {
      auto& fds = out.listeners[m->key];
      if (fds.size() <= m->worker) fds.resize(m->worker + 1, -1);
      if (fds[m->worker] >= 0) ::close(fds[m->worker]);
      fds[m->worker] = fd;
      continue;
    }
    if (fd >= 0) ::close(fd);
    return fail(Error::make(ErrorCode::kProtocol, ErrorSource::kInternal,
                            "handover: unexpected message '" + std::string(text) + "'"));
  }
}

Status sendReady(int sock) {
  setTimeouts(sock, std::chrono::seconds(5));
  return sendMessage(sock, "READY " + std::to_string(::getpid()), -1);
}

pid_t parseReady(std::string_view msg) {
  constexpr std::string_view kTag = "READY ";
  if (msg.substr(0, kTag.size()) != kTag) return 0;
  msg.remove_prefix(kTag.size());
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(msg.data(), msg.data() + msg.size(), pid);
  if (ec != std::errc() || end != msg.data() + msg.size() || pid <= 0) return 0;
  return pid;
}

Result<pid_t> spawnSuccessor(const std::string& binary, const std::vector<std::string>& argv,
                             int child_fd) {
  // The successor's end must survive exec; every other fd of ours is close-on-exec.
  const int flags = ::fcntl(child_fd, F_GETFD);
  if (flags < 0 || ::fcntl(child_fd, F_SETFD, flags & ~FD_CLOEXEC) < 0) {
    return sysError("upgrade: fcntl", errno);
  }
  std::vector<std::string> env_strings;
  const std::string prefix = std::string(kUpgradeFdEnv) + "=";
  for (char** e = environ; e && *e; ++e) {
    if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) env_strings.emplace_back(*e);
  }
  env_strings.push_back(prefix + std::to_string(child_fd));
  std::vector<char*> envp;
  for (auto& s : env_strings)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& s : args)
    argp.push_back(s.data());
  argp.push_back(nullptr);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, binary.c_str(), nullptr, &attr, argp.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  ::fcntl(child_fd, F_SETFD, flags);
  if (rc != 0) return sysError(("upgrade: cannot start " + binary).c_str(), rc);
  return pid;
}

}  // namespace gatehouse::server
