// Idle upstream connections carrying a PROXY header (cluster proxy_protocol) belong to the
// client the header names: only a request with the same owner tag reuses one.
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "net/tcp.h"
#include "runtime/event_loop.h"
#include "upstream/connection_pool.h"

namespace gatehouse::upstream {
namespace {

TEST(ConnectionPool, OwnedConnectionsAreReusedOnlyByTheirOwner) {
  runtime::EventLoop loop;
  EndpointPool pool(8, std::chrono::seconds(60));
  std::vector<int> peers;
  auto conn = [&](std::string owner) {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    peers.push_back(sv[1]);
    auto c = std::make_unique<PooledConnection>();
    c->stream = std::make_unique<net::TcpStream>(loop, sv[0]);
    c->owner = std::move(owner);
    return c;
  };
  const runtime::TimePoint now = loop.now();
  pool.release(conn("PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n"), now);
  pool.release(conn(""), now);
  pool.release(conn("PROXY TCP4 10.0.0.9 10.0.0.2 2000 80\r\n"), now);
  EXPECT_EQ(pool.acquire(now, "PROXY TCP4 10.0.0.7 10.0.0.2 3000 80\r\n"), nullptr);
  auto a = pool.acquire(now, "PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->owner, "PROXY TCP4 10.0.0.1 10.0.0.2 1000 80\r\n");
  auto shared = pool.acquire(now);
  ASSERT_NE(shared, nullptr);
  EXPECT_EQ(shared->owner, "");
  EXPECT_EQ(pool.acquire(now), nullptr);  // the other client's connection is not shared
  EXPECT_EQ(pool.idleCount(), 1u);
  a.reset();
  shared.reset();
  for (int fd : peers)
    ::close(fd);
}

}  // namespace
}  // namespace gatehouse::upstream
