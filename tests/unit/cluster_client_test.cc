// The cluster client (proxy/cluster_client.h) against small HTTP/1.1 servers on the test's own
// event loop: answers, pooled connections, concurrent calls, retries past a dead host, limits,
// timeouts and typed failures. Also the implicit clusters a policy's URL adds to a snapshot.
#include "proxy/cluster_client.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/loader.h"
#include "metrics/stats.h"
#include "net/tcp.h"
#include "server/snapshot_builder.h"
#include "upstream/connection_pool.h"

namespace gatehouse::proxy {
namespace {

using runtime::Task;
using Code = AttemptError::Code;

// A WorkerContext with its own pools, installing snapshots as server::Worker does.
class TestWorker final : public WorkerContext {
 public:
  explicit TestWorker(metrics::Stats& stats) : WorkerContext(0, stats) {}
  void install(std::shared_ptr<const Snapshot> snap) {
    auto ws = std::make_shared<WorkerSnapshot>();
    ws->snap = snap;
    for (const auto& c : snap->clusters) {
      upstream::WorkerCluster wc;
      wc.cluster = &c;
      wc.lb = c.lb->create(c.hosts);
      for (size_t i = 0; i < c.hosts.hosts.size(); ++i) {
        pools_.push_back(std::make_unique<upstream::EndpointPool>(c.pool_max_idle_per_endpoint,
                                                                  std::chrono::seconds(30)));
        wc.pools.push_back(pools_.back().get());
      }
      ws->clusters.push_back(std::move(wc));
    }
    publish(std::move(ws));
  }

 private:
  std::vector<std::unique_ptr<upstream::EndpointPool>> pools_;
};

// A keep-alive HTTP/1.1 server on the loop: answers every request with `body` (status
// `status`), or never answers when `silent`. Counts connections and requests.
class TinyServer {
 public:
  explicit TinyServer(runtime::EventLoop& loop) : loop_(loop) {
    auto addr = net::SocketAddress::parse("127.0.0.1", 0);
    auto l = net::TcpListener::bind(loop, *addr, 64, false);
    EXPECT_TRUE(l.ok());
    listener_ = std::move(*l);
    runtime::spawn(acceptLoop());
  }
  ~TinyServer() { listener_->close(); }
  uint16_t port() const { return listener_->localAddress().port(); }

  int status = 200;
  std::string body = "hello";
  bool silent = false;
  int connections = 0;
  int requests = 0;
  std::string last_head;
  std::string last_body;

 private:
  Task<> acceptLoop() {
    for (;;) {
      auto acc = co_await listener_->accept();
      if (!acc.ok()) co_return;
      ++connections;
      runtime::spawn(serve(std::make_unique<net::TcpStream>(loop_, acc->fd)));
    }
  }

  Task<> serve(std::unique_ptr<net::TcpStream> s) {
    std::string in;
    char buf[4096];
    for (;;) {
      size_t end;
      while ((end = in.find("\r\n\r\n")) == std::string::npos) {
        auto n = co_await s->read(buf, sizeof buf, runtime::kNoDeadline);
        if (!n.ok() || *n == 0) co_return;
        in.append(buf, *n);
      }
      std::string head = in.substr(0, end + 4);
      size_t length = 0;
      if (auto p = head.find("content-length: "); p != std::string::npos) {
        length = std::stoul(head.substr(p + 16));
      }
      while (in.size() < head.size() + length) {
        auto n = co_await s->read(buf, sizeof buf, runtime::kNoDeadline);
        if (!n.ok() || *n == 0) co_return;
        in.append(buf, *n);
      }
      ++requests;
      last_head = head;
      last_body = in.substr(head.size(), length);
      in.erase(0, head.size() + length);
      if (silent) continue;
      std::string out =
          "HTTP/1.1 " + std::to_string(status) +
          " X\r\ncontent-type: text/plain\r\ncontent-length: " + std::to_string(body.size()) +
          "\r\n\r\n" + body;
      iovec v{out.data(), out.size()};
      if (!(co_await s->writeAll(&v, 1, runtime::kNoDeadline)).ok()) co_return;
    }
  }

  runtime::EventLoop& loop_;
  std::unique_ptr<net::TcpListener> listener_;
};

// A port with nothing listening (bound, then closed).
uint16_t deadPort() {
  runtime::EventLoop loop;
  auto l = net::TcpListener::bind(loop, *net::SocketAddress::parse("127.0.0.1", 0), 1, false);
  return (*l)->localAddress().port();
}

// `stats` gives each cluster its counter slot (a call counts on it); null when nothing calls.
std::shared_ptr<const Snapshot> compile(const std::string& yaml, metrics::Stats* stats = nullptr) {
  auto loaded = config::loadConfigString(yaml, "test.yaml");
  EXPECT_TRUE(loaded.ok());
  if (!loaded.ok()) return nullptr;
  auto cfg = std::make_shared<config::Config>(std::move(*loaded.config));
  auto built = server::buildSnapshot(cfg, stats, 1);
  for (const auto& e : built.errors)
    ADD_FAILURE() << e;
  return built.snapshot;
}

std::string endpoint(uint16_t port) {
  return "\"127.0.0.1:" + std::to_string(port) + "\"";
}

// Runs `body` as a coroutine on a test worker whose snapshot is `yaml`, until it returns.
class ClusterClientTest : public ::testing::Test {
 protected:
  metrics::Stats stats_{1};
  TestWorker worker_{stats_};
  runtime::EventLoop& loop() { return worker_.loop(); }

  template <class Fn>
  void run(const std::string& yaml, Fn fn) {
    auto snap = compile(yaml, &stats_);
    ASSERT_NE(snap, nullptr);
    bool done = false;
    auto main = [&]() -> Task<> {
      worker_.install(snap);
      co_await fn();
      done = true;
      loop().stop();
    };
    runtime::Timer guard;  // a hung call fails the test instead of hanging it
    guard.arm(
        loop(), loop().now() + std::chrono::seconds(20),
        [](void* l) { static_cast<runtime::EventLoop*>(l)->stop(); }, &loop());
    runtime::spawn(main());
    loop().run();
    runtime::destroyDetachedCoroutines();
    EXPECT_TRUE(done);
  }

  ClusterRequest get(std::string target = "/x") {
    ClusterRequest r;
    r.target = std::move(target);
    r.timeout = std::chrono::seconds(5);
    return r;
  }
};

TEST_F(ClusterClientTest, AnswersAndReusesThePooledConnection) {
  TinyServer srv(loop());
  run("clusters: [{name: idp, endpoints: [" + endpoint(srv.port()) + "]}]\n", [&]() -> Task<> {
    ClusterRequest req = get("/keys?a=1");
    req.headers.emplace_back("accept", "application/json");
    auto r1 = co_await callCluster(worker_, "idp", req);
    EXPECT_TRUE(r1.ok()) << r1.error.detail;
    EXPECT_EQ(r1.response.status, 200);
    EXPECT_EQ(r1.response.body, "hello");
    EXPECT_EQ(r1.response.header("content-type"), "text/plain");
    EXPECT_NE(srv.last_head.find("GET /keys?a=1 HTTP/1.1\r\n"), std::string::npos);
    EXPECT_NE(srv.last_head.find("host: 127.0.0.1\r\n"), std::string::npos) << srv.last_head;
    EXPECT_NE(srv.last_head.find("accept: application/json\r\n"), std::string::npos);
    auto r2 = co_await callCluster(worker_, "idp", get());
    EXPECT_TRUE(r2.ok());
    EXPECT_EQ(srv.requests, 2);
    EXPECT_EQ(srv.connections, 1);  // the second call leased the first call's connection
  });
}

TEST_F(ClusterClientTest, PostsABodyWithItsLengthAndTheCallersHost) {
  TinyServer srv(loop());
  run("clusters: [{name: idp, endpoints: [" + endpoint(srv.port()) + "]}]\n", [&]() -> Task<> {
    ClusterRequest req = get("/introspect");
    req.method = "POST";
    req.authority = "idp.example:8443";
    req.body = "token=abc";
    auto r = co_await callCluster(worker_, "idp", req);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(srv.last_body, "token=abc");
    EXPECT_NE(srv.last_head.find("content-length: 9\r\n"), std::string::npos) << srv.last_head;
    EXPECT_NE(srv.last_head.find("host: idp.example:8443\r\n"), std::string::npos);
  });
}

TEST_F(ClusterClientTest, SeveralCallsRunAtOnceOnOneWorker) {
  TinyServer srv(loop());
  run("clusters: [{name: idp, endpoints: [" + endpoint(srv.port()) + "]}]\n", [&]() -> Task<> {
    int finished = 0;
    bool all_ok = true;
    runtime::EventLoop& l = loop();
    auto one = [&]() -> Task<> {
      auto r = co_await callCluster(worker_, "idp", get());
      all_ok = all_ok && r.ok() && r.response.body == "hello";
      ++finished;
    };
    for (int i = 0; i < 4; ++i)
      runtime::spawn(one());
    while (finished < 4)
      co_await l.sleepFor(std::chrono::milliseconds(1));
    EXPECT_TRUE(all_ok);
    EXPECT_EQ(srv.requests, 4);
    EXPECT_GE(srv.connections, 2);  // in flight together: one connection each
  });
}

TEST_F(ClusterClientTest, RetriesPastADeadHostAsTheClusterSays) {
  TinyServer srv(loop());
  const uint16_t dead = deadPort();
  run("clusters: [{name: idp, lb: round_robin, endpoints: [" + endpoint(dead) + ", " +
          endpoint(srv.port()) + "], retry: {attempts: 2, on: [connect-failure]}}]\n",
      [&]() -> Task<> {
        for (int i = 0; i < 4; ++i) {
          auto r = co_await callCluster(worker_, "idp", get());
          EXPECT_TRUE(r.ok()) << static_cast<int>(r.error.code);
        }
        EXPECT_EQ(srv.requests, 4);
      });
}

TEST_F(ClusterClientTest, FailuresAreTypedAttemptErrors) {
  TinyServer srv(loop());
  const uint16_t dead = deadPort();
  run("clusters:\n  - {name: idp, endpoints: [" + endpoint(srv.port()) +
          "]}\n  - {name: down, endpoints: [" + endpoint(dead) + "], retry: {attempts: 1}}\n",
      [&]() -> Task<> {
        auto unknown = co_await callCluster(worker_, "nope", get());
        EXPECT_EQ(unknown.error.code, Code::kUnknownCluster);
        auto refused = co_await callCluster(worker_, "down", get());
        EXPECT_EQ(refused.error.code, Code::kConnectFailed);
        srv.body.assign(2000, 'x');
        ClusterRequest small = get();
        small.max_response_bytes = 1000;
        auto big = co_await callCluster(worker_, "idp", small);
        EXPECT_EQ(big.error.code, Code::kResponseTooLarge);
        srv.silent = true;
        ClusterRequest quick = get();
        quick.timeout = std::chrono::milliseconds(100);
        auto slow = co_await callCluster(worker_, "idp", quick);
        EXPECT_EQ(slow.error.code, Code::kRequestTimeout);
      });
}

TEST(ClusterCatalog, PolicyUrlsBecomeOneImplicitClusterPerOrigin) {
  auto snap = compile(R"(clusters: [{name: idp, endpoints: ["127.0.0.1:1"]}]
routes:
  - cluster: idp
    policies:
      - name: jwt_auth
        config: {jwks_uri: "http://127.0.0.1:9/keys"}
      - name: oauth2_introspection
        config: {endpoint: "http://127.0.0.1:9/introspect"}
  - match: {path_prefix: /b}
    cluster: idp
    policies:
      - name: jwt_auth
        config: {jwks_cluster: idp, jwks_path: /keys}
)");
  ASSERT_NE(snap, nullptr);
  ASSERT_EQ(snap->clusters.size(), 2u);
  EXPECT_EQ(snap->clusters[0].name, "idp");  // configured clusters keep their indexes
  EXPECT_EQ(snap->clusters[1].name, "http://127.0.0.1:9");
  EXPECT_EQ(snap->clusterIndex("http://127.0.0.1:9"), 1);
  EXPECT_EQ(snap->clusters[1].hosts.hosts.size(), 1u);
}

TEST(ClusterCatalog, AnUnknownClusterNameIsAConfigError) {
  for (const char* policy : {"{name: jwt_auth, config: {jwks_cluster: idq, jwks_path: /k}}",
                             "{name: oauth2_introspection, config: {endpoint_cluster: idq, "
                             "endpoint_path: /i}}"}) {
    auto loaded = config::loadConfigString(
        std::string("clusters: [{name: idp, endpoints: [\"127.0.0.1:1\"]}]\nroutes:\n"
                    "  - cluster: idp\n    policies: [") +
            policy + "]\n",
        "test.yaml");
    ASSERT_TRUE(loaded.ok());
    auto cfg = std::make_shared<config::Config>(std::move(*loaded.config));
    auto built = server::buildSnapshot(cfg, nullptr, 1);
    ASSERT_EQ(built.errors.size(), 1u) << policy;
    EXPECT_NE(built.errors[0].find("unknown cluster 'idq'"), std::string::npos) << built.errors[0];
    EXPECT_NE(built.errors[0].find("routes[0].policies[0].config"), std::string::npos);
  }
}

}  // namespace
}  // namespace gatehouse::proxy
