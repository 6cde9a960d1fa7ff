#include "cli/admin_fetch.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "http/headers.h"

namespace gatehouse::cli {

namespace {

constexpr size_t kMaxReply = 16 * 1024 * 1024;
constexpr int kTimeoutMs = 10000;

Error failed(std::string msg) {
  return Error::make(ErrorCode::kIo, ErrorSource::kUpstream, std::move(msg));
}

// Closes the descriptor on every way out.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

bool waitFor(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, kTimeoutMs) == 1;
}

Result<std::string> dechunk(std::string_view body) {
  std::string out;
  while (true) {
    const size_t eol = body.find("\r\n");
    if (eol == std::string_view::npos) return failed("truncated chunked reply");
    const size_t size = std::strtoul(std::string(body.substr(0, eol)).c_str(), nullptr, 16);
    body.remove_prefix(eol + 2);
    if (size == 0) return out;
    if (body.size() < size + 2) return failed("truncated chunked reply");
    out.append(body.substr(0, size));
    body.remove_prefix(size + 2);
  }
}

}  // namespace

Result<FetchReply> fetch(std::string_view base_url, std::string_view path, std::string_view token) {
  std::string_view rest = base_url;
  if (!rest.starts_with("http://")) {
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kInternal,
                       "'" + std::string(base_url) + "': expected http://HOST:PORT");
  }
  rest.remove_prefix(7);
  rest = rest.substr(0, rest.find('/'));
  std::string host(rest);
  std::string port = "80";
  if (const size_t colon = host.rfind(':');
      colon != std::string::npos && host.find(']', colon) == std::string::npos) {
    port = host.substr(colon + 1);
    host.resize(colon);
  }
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return failed("cannot resolve '" + host + "': " + ::gai_strerror(rc));
  }
  Fd sock;
  std::string connect_error = "no address";
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    Fd s{::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (s.fd < 0) continue;
    if (::connect(s.fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
      connect_error = std::strerror(errno);
      continue;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (!waitFor(s.fd, POLLOUT)) {
      connect_error = "timed out";
      continue;
    }
    ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      connect_error = std::strerror(err);
      continue;
    }
    std::swap(sock.fd, s.fd);
    break;
  }
  ::freeaddrinfo(res);
  if (sock.fd < 0) return failed("cannot connect to " + std::string(rest) + ": " + connect_error);

  std::string request = "GET " + std::string(path) + " HTTP/1.1\r\nHost: " + std::string(rest) +
                        "\r\nAccept: application/json\r\nConnection: close\r\n";
  if (!token.empty()) request += "Authorization: Bearer " + std::string(token) + "\r\n";
  request += "\r\n";
  for (size_t sent = 0; sent < request.size();) {
    if (!waitFor(sock.fd, POLLOUT)) return failed("timed out sending the request");
    const ssize_t n = ::send(sock.fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN) return failed(std::string("send: ") + std::strerror(errno));
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[16384];
  for (;;) {
    if (!waitFor(sock.fd, POLLIN)) return failed("timed out waiting for the reply");
    const ssize_t n = ::recv(sock.fd, buf, sizeof buf, 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return failed(std::string("recv: ") + std::strerror(errno));
    }
    reply.append(buf, static_cast<size_t>(n));
    if (reply.size() > kMaxReply) return failed("reply larger than 16 MiB");
  }

  const size_t head_end = reply.find("\r\n\r\n");
  if (!reply.starts_with("HTTP/1.") || reply.size() < 12 || head_end == std::string::npos) {
    return failed("malformed HTTP reply");
  }
  FetchReply out;
  out.status = std::atoi(reply.c_str() + 9);
  const std::string_view head(reply.data(), head_end);
  std::string_view body(reply.data() + head_end + 4, reply.size() - head_end - 4);
  bool chunked = false;
  size_t pos = head.find("\r\n");
  while (pos != std::string_view::npos && pos < head.size()) {
    const size_t next = head.find("\r\n", pos + 2);
    const std::string_view line = head.substr(
        pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view name = line.substr(0, colon);
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ')
        value.remove_prefix(1);
      if (http::iequals(name, "content-type")) out.content_type = std::string(value);
      if (http::iequals(name, "transfer-encoding") && http::iequals(value, "chunked")) {
        chunked = true;
      }
      if (http::iequals(name, "content-length")) {
        const size_t len = std::strtoul(std::string(value).c_str(), nullptr, 10);
        if (len < body.size()) body = body.substr(0, len);
      }
    }
    pos = next;
  }
  if (chunked) {
    auto plain = dechunk(body);
    if (!plain.ok()) return plain.error();
    out.body = std::move(*plain);
  } else {
    out.body = std::string(body);
  }
  return out;
}

}  // namespace gatehouse::cli
