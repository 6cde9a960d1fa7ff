#pragma once
// The control thread: loads and validates config, builds snapshots, binds listeners, starts the
// workers, and runs the admin API, signal handling (SIGHUP reload, SIGTERM/SIGINT drain,
// SIGUSR1 log reopen) and the config-file watcher on its own EventLoop.
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "config/model.h"
#include "metrics/stats.h"
#include "proxy/access_log.h"
#include "proxy/snapshot.h"
#include "runtime/event_loop.h"
#include "server/snapshot_builder.h"
#include "server/worker.h"
#include "trace/exporter.h"
#include "upstream/dns_discovery.h"
#include "upstream/health_checker.h"

namespace gatehouse::server {

using runtime::EventLoop;
using runtime::Task;
using runtime::Timer;

struct ServerOptions {
  std::string config_path;               // empty when `preset` is given
  std::optional<config::Config> preset;  // an in-memory config (demo mode)
  int workers_override = 0;
};

// Blocks the signals the control loop handles, in the calling thread and every thread it
// starts later. Call first in main(), before any thread exists.
void blockControlSignals();

class Server {
 public:
  explicit Server(ServerOptions opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads config, starts everything and blocks until shut down. Returns the exit code.
  int run();
  // Control thread: the loop that runs the admin API and signals (demo upstreams share it).
  EventLoop& loop() { return loop_; }

 private:
  struct Built {
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const proxy::Snapshot> snapshot;
  };
  Result<Built> load();
  // Binds sockets for listeners not open yet: one SO_REUSEPORT socket per worker.
  Result<std::vector<std::vector<ListenerSocket>>> bindListeners(const config::Config& cfg);
  // `snap` (built from `cfg`) is now the active snapshot: its listeners count as open, and
  // host health checks and DNS discovery follow it. Workers are told separately.
  void adopt(const config::Config& cfg, std::shared_ptr<const proxy::Snapshot> snap);
  void reload(const char* why);
  // DNS answers changed: rebuild the current config's snapshot with them and publish it.
  void republish();
  void beginShutdown();
  Task<> signalLoop(int sigfd);
  Task<> watchLoop(int inotify_fd);
  // What the admin API's built-in endpoints report.
  admin::ServerState adminState() const;

  ServerOptions opts_;
  EventLoop loop_;
  std::unique_ptr<metrics::Stats> stats_;
  // Before workers_: the workers hand span batches to its rings until they are joined.
  std::unique_ptr<trace::Exporter> exporter_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::shared_ptr<const proxy::Snapshot> current_;
  std::shared_ptr<proxy::AccessLogSink> log_sink_;
  std::set<std::string> open_listeners_;
  uint64_t generation_ = 0;
  std::string config_hash_;
  bool shutting_down_ = false;
  int exit_code_ = 0;
  Timer watch_debounce_;
  Timer shutdown_poll_;
  // Host health across reloads; after loop_, since its checks and tick run on it.
  upstream::HealthRegistry health_{loop_};
  upstream::DnsDiscovery dns_{loop_, [this] { republish(); }};
  Timer ticket_timer_;
};

}  // namespace gatehouse::server
