#pragma once
// Socket addresses (IPv4/IPv6 literals only; name resolution happens in discovery).
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace gatehouse::net {

struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t len = 0;

  static Result<SocketAddress> parse(std::string_view ip, uint16_t port);
  static SocketAddress fromSockaddr(const sockaddr* sa, socklen_t len);
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  int family() const { return storage.ss_family; }
  uint16_t port() const;
  std::string ip() const;        // "127.0.0.1" or "::1"
  std::string toString() const;  // "127.0.0.1:80" or "[::1]:80"
};

// The local address of a connected socket (getsockname); empty (len 0) on failure.
SocketAddress localAddressOf(int fd);

// An IP literal, or a name through the system resolver (first address). Blocks: call it on
// the control thread (snapshot builds), never on a worker.
Result<SocketAddress> resolve(const std::string& host, uint16_t port);

}  // namespace gatehouse::net
