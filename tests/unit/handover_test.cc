// server/handover.h: listening sockets cross a Unix socket (SCM_RIGHTS) with their key and
// worker, arrive as the same kernel sockets, and malformed or cut streams fail cleanly.
#include "server/handover.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace gatehouse::server {
namespace {

int listenOnLoopback() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(::listen(fd, 8), 0);
  return fd;
}

uint16_t portOf(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

struct Pair {
  Pair() { EXPECT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds), 0); }
  ~Pair() {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  int fds[2] = {-1, -1};
};

TEST(Handover, SocketsArriveByKeyAndWorker) {
  Pair p;
  const int w0 = listenOnLoopback();
  const int w1 = listenOnLoopback();
  const int admin = listenOnLoopback();
  std::vector<HandedSocket> out = {
      {HandedSocket::Kind::kListener, 0, "127.0.0.1:8080", "main", w0},
      {HandedSocket::Kind::kListener, 1, "127.0.0.1:8080", "main", w1},
      {HandedSocket::Kind::kAdmin, 0, "127.0.0.1:9901", "admin", admin},
  };
  ASSERT_TRUE(sendSockets(p.fds[0], out).ok());
  auto got = receiveSockets(p.fds[1], std::chrono::seconds(5));
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->listeners.size(), 1u);
  const int r0 = got->take("127.0.0.1:8080", 0);
  const int r1 = got->take("127.0.0.1:8080", 1);
  ASSERT_GE(r0, 0);
  ASSERT_GE(r1, 0);
  EXPECT_EQ(got->take("127.0.0.1:8080", 2), -1);
  EXPECT_EQ(got->take("127.0.0.1:9999", 0), -1);
  // The same sockets: same bound ports, in worker order.
  EXPECT_EQ(portOf(r0), portOf(w0));
  EXPECT_EQ(portOf(r1), portOf(w1));
  EXPECT_EQ(got->takeAdmin("127.0.0.1:1"), -1);
  const int ra = got->takeAdmin("127.0.0.1:9901");
  EXPECT_EQ(portOf(ra), portOf(admin));
  for (int fd : {w0, w1, admin, r0, r1, ra})
    ::close(fd);
}

TEST(Handover, ReadyMessage) {
  Pair p;
  ASSERT_TRUE(sendReady(p.fds[1]).ok());
  char buf[64];
  const ssize_t n = ::read(p.fds[0], buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(parseReady(std::string_view(buf, static_cast<size_t>(n))), ::getpid());
  EXPECT_EQ(parseReady("READY"), 0);
  EXPECT_EQ(parseReady("READY x1"), 0);
  EXPECT_EQ(parseReady("READY 12 "), 0);
  EXPECT_EQ(parseReady("HELLO 12"), 0);
}

TEST(Handover, MessageParser) {
  auto m = parseHandoverMessage("L 3 udp:[::1]:53 dns resolver");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->tag, HandoverMessage::Tag::kListener);
  EXPECT_EQ(m->worker, 3u);
  EXPECT_EQ(m->key, "udp:[::1]:53");
  EXPECT_EQ(m->name, "dns resolver");
  m = parseHandoverMessage("A 127.0.0.1:9901");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->tag, HandoverMessage::Tag::kAdmin);
  EXPECT_EQ(m->key, "127.0.0.1:9901");
  ASSERT_TRUE(parseHandoverMessage("END"));
  EXPECT_EQ(parseHandoverMessage("END")->tag, HandoverMessage::Tag::kEnd);
  for (std::string_view bad : {"", "L", "L 0", "L x k", "L -1 k", "L 4096 k", "A", "A a b",
                               "END x", "X 0 k", "L 99999999999999999999 k"}) {
    EXPECT_FALSE(parseHandoverMessage(bad)) << bad;
  }
}

TEST(Handover, ClosedBeforeEndFails) {
  Pair p;
  const int l = listenOnLoopback();
  ASSERT_EQ(::send(p.fds[0], "L 0 k n", 7, 0), 7);  // no fd attached: a protocol error
  auto got = receiveSockets(p.fds[1], std::chrono::seconds(5));
  EXPECT_FALSE(got.ok());
  Pair q;
  ::close(std::exchange(q.fds[0], -1));
  got = receiveSockets(q.fds[1], std::chrono::seconds(5));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.error().code, ErrorCode::kClosed);
  ::close(l);
}

TEST(Handover, SilentPredecessorTimesOut) {
  Pair p;
  auto got = receiveSockets(p.fds[1], std::chrono::milliseconds(50));
  EXPECT_FALSE(got.ok());
}

}  // namespace
}  // namespace gatehouse::server
