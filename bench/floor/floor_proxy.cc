// The floor (issue 18): the cheapest HTTP/1.1 keep-alive reverse proxy that does the work the
// shared harness asks of a proxy, with Gatehouse's socket options and syscall pattern (one
// edge-triggered epoll registration per socket for IN|OUT|RDHUP, accept4 non-blocking,
// TCP_NODELAY both sides, reads until EAGAIN, a pooled keep-alive upstream connection per
// request, round robin over the origins) and nothing else: no routing, policies, metrics, header
// rewriting or timeouts. It is a yardstick for what the kernel and one event loop cost on this
// machine, not a product: it trusts the origins and stops a client that sends what it cannot
// frame (a request body without Content-Length, a chunked response).
//   floor_proxy LISTEN_PORT ORIGIN_PORT [ORIGIN_PORT...]     (127.0.0.1, one thread)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr size_t kReadSize = 65536;

struct Client;

struct Upstream {
  int fd = -1;
  size_t origin = 0;
  Client* client = nullptr;  // the client whose response this connection carries
  std::string pending;       // request bytes not yet written (connect in progress, EAGAIN)
  std::string head;          // response head bytes until its end is seen
  bool head_done = false;
  size_t left = 0;        // response bytes still to relay, head included
  bool readable = false;  // edge seen and not drained (paused by a slow client)
};

struct Client {
  int fd = -1;
  std::string in;   // request bytes not yet sent upstream
  std::string out;  // response bytes the client has not taken yet
  Upstream* up = nullptr;
};

// Sockets by fd (small and dense): an event for a socket closed earlier in the same batch finds
// an empty slot, or a new socket that then sees one spurious wake-up.
int g_epoll = -1;
std::vector<std::unique_ptr<Client>> g_clients;
std::vector<std::unique_ptr<Upstream>> g_upstreams;
std::vector<sockaddr_in> g_origins;
std::vector<std::vector<Upstream*>> g_idle;  // per origin
size_t g_next_origin = 0;
constexpr uint64_t kUpstreamTag = 1ull << 32;
constexpr uint64_t kListenerTag = 2ull << 32;

template <class T>
T* slot(std::vector<std::unique_ptr<T>>& table, int fd) {
  if (static_cast<size_t>(fd) >= table.size()) table.resize(static_cast<size_t>(fd) + 1024);
  table[static_cast<size_t>(fd)] = std::make_unique<T>();
  table[static_cast<size_t>(fd)]->fd = fd;
  return table[static_cast<size_t>(fd)].get();
}

void watch(int fd, uint64_t tag) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = tag | static_cast<uint32_t>(fd);
  epoll_ctl(g_epoll, EPOLL_CTL_ADD, fd, &ev);
}

void closeUpstream(Upstream* u) {
  const int fd = u->fd;
  close(fd);  // also leaves the epoll set
  g_upstreams[static_cast<size_t>(fd)].reset();
}

void closeClient(Client* c) {
  if (c->up) closeUpstream(c->up);  // mid-response: its framing is lost
  const int fd = c->fd;
  close(fd);
  g_clients[static_cast<size_t>(fd)].reset();
}

// Writes as much of `data` as the socket takes; false on a hard error.
bool writeSome(int fd, std::string_view& data) {
  while (!data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return n < 0 && errno == EAGAIN;
    }
  }
  return true;
}

size_t contentLength(std::string_view head) {
  size_t at = 0;
  while ((at = head.find('\n', at)) != std::string_view::npos) {
    ++at;
    if (head.size() - at > 15 && strncasecmp(head.data() + at, "content-length:", 15) == 0) {
      return std::strtoull(head.data() + at + 15, nullptr, 10);
    }
  }
  return 0;
}

Upstream* takeUpstream() {
  const size_t o = g_next_origin++ % g_origins.size();
  if (!g_idle[o].empty()) {
    Upstream* u = g_idle[o].back();
    g_idle[o].pop_back();
    return u;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return nullptr;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&g_origins[o]), sizeof g_origins[o]) != 0 &&
      errno != EINPROGRESS) {
    close(fd);
    return nullptr;
  }
  Upstream* u = slot(g_upstreams, fd);
  u->origin = o;
  watch(fd, kUpstreamTag);
  return u;
}

// Sends the next complete request in c->in upstream, when no response is in flight. False when
// the client was closed.
bool dispatch(Client* c) {
  if (c->up) return true;
  const size_t end = c->in.find("\r\n\r\n");
  if (end == std::string::npos) return true;
  const size_t len = end + 4 + contentLength(std::string_view(c->in).substr(0, end + 2));
  if (c->in.size() < len) return true;
  Upstream* u = takeUpstream();
  if (!u) {
    closeClient(c);
    return false;
  }
  u->client = c;
  u->head.clear();
  u->head_done = false;
  c->up = u;
  std::string_view req(c->in.data(), len);
  if (!writeSome(u->fd, req)) {
    closeClient(c);
    return false;
  }
  u->pending.assign(req);
  c->in.erase(0, len);
  return true;
}

// The response is whole and the client has it all: the connection goes back to the pool.
bool finishResponse(Client* c) {
  Upstream* u = c->up;
  u->client = nullptr;
  c->up = nullptr;
  g_idle[u->origin].push_back(u);
  return dispatch(c);
}

// Relays response bytes to the client (what the client does not take waits in c->out). False
// when the client was closed.
bool relay(Client* c, std::string_view bytes) {
  Upstream* u = c->up;
  std::string_view data = bytes.substr(0, u->left);
  u->left -= data.size();
  if (c->out.empty() && !writeSome(c->fd, data)) {
    closeClient(c);
    return false;
  }
  c->out.append(data);
  if (u->left == 0 && c->out.empty()) return finishResponse(c);
  return true;
}

enum class Read { kMore, kWait, kClosed };

// Reads one chunk of the response and relays it: kMore when the socket may hold more for this
// client now, kClosed when the client was closed.
Read readResponse(Upstream* u) {
  char buf[kReadSize];
  Client* c = u->client;
  ssize_t n = read(u->fd, buf, sizeof buf);
  if (n < 0 && errno == EAGAIN) {
    u->readable = false;
    return Read::kWait;
  }
  if (n <= 0) {
    closeClient(c);
    return Read::kClosed;
  }
  // A short read drained the socket (edge-triggered: the next byte brings a new event).
  u->readable = static_cast<size_t>(n) == sizeof buf;
  std::string_view got(buf, static_cast<size_t>(n));
  if (!u->head_done) {
    const size_t seen = u->head.size();
    u->head.append(got);
    const size_t end = u->head.find("\r\n\r\n", seen < 3 ? 0 : seen - 3);
    if (end == std::string::npos) return u->readable ? Read::kMore : Read::kWait;
    u->head_done = true;
    u->left = end + 4 + contentLength(std::string_view(u->head).substr(0, end + 2));
    got = u->head;
  }
  const bool readable = u->readable;
  if (!relay(c, got)) return Read::kClosed;
  return readable && u->client == c && c->out.empty() ? Read::kMore : Read::kWait;
}

void onUpstreamEvent(Upstream* u, uint32_t ev) {
  if ((ev & EPOLLOUT) && !u->pending.empty()) {
    std::string_view rest(u->pending);
    if (!writeSome(u->fd, rest)) return closeClient(u->client);
    u->pending.erase(0, u->pending.size() - rest.size());
  }
  if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) return;
  if (u->client) {
    u->readable = true;
    if (u->client->out.empty()) {
      while (readResponse(u) == Read::kMore) {
      }
    }
    return;
  }
  // Idle in the pool: a close (or stray bytes) means the origin is done with it.
  auto& idle = g_idle[u->origin];
  for (auto& p : idle) {
    if (p == u) {
      p = idle.back();
      idle.pop_back();
      return closeUpstream(u);
    }
  }
}

void onClientEvent(Client* c, uint32_t ev) {
  if ((ev & EPOLLOUT) && !c->out.empty()) {
    std::string_view rest(c->out);
    if (!writeSome(c->fd, rest)) return closeClient(c);
    c->out.erase(0, c->out.size() - rest.size());
    if (c->out.empty() && c->up) {
      Upstream* u = c->up;
      if (u->head_done && u->left == 0) {
        if (!finishResponse(c)) return;
      } else {
        Read r = u->readable ? Read::kMore : Read::kWait;
        while (r == Read::kMore)
          r = readResponse(u);
        if (r == Read::kClosed) return;
      }
    }
  }
  if (!(ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))) return;
  char buf[kReadSize];
  for (;;) {
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n > 0) {
      c->in.append(buf, static_cast<size_t>(n));
      if (static_cast<size_t>(n) < sizeof buf) break;  // drained
    } else if (n < 0 && errno == EAGAIN) {
      break;
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return closeClient(c);
    }
  }
  dispatch(c);
}

void onAccept(int lfd) {
  for (;;) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    slot(g_clients, fd);
    watch(fd, 0);
  }
}

int listenOn(int port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4096) != 0) {
    std::perror("listen");
    std::exit(1);
  }
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s LISTEN_PORT ORIGIN_PORT [ORIGIN_PORT...]\n", argv[0]);
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  for (int i = 2; i < argc; ++i) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(argv[i])));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_origins.push_back(a);
  }
  g_idle.resize(g_origins.size());
  g_epoll = epoll_create1(EPOLL_CLOEXEC);
  const int lfd = listenOn(std::atoi(argv[1]));
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.u64 = kListenerTag;
  epoll_ctl(g_epoll, EPOLL_CTL_ADD, lfd, &lev);
  epoll_event events[256];
  for (;;) {
    const int n = epoll_wait(g_epoll, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      const auto fd = static_cast<size_t>(tag & 0xffffffffu);
      if (tag == kListenerTag) {
        onAccept(lfd);
      } else if (tag & kUpstreamTag) {
        if (fd < g_upstreams.size() && g_upstreams[fd])
          onUpstreamEvent(g_upstreams[fd].get(), events[i].events);
      } else if (fd < g_clients.size() && g_clients[fd]) {
        onClientEvent(g_clients[fd].get(), events[i].events);
      }
    }
  }
}
