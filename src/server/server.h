#pragma once
// The control thread: loads and validates config, builds snapshots, binds listeners, starts the
// workers, and runs the admin API, signal handling (SIGHUP reload, SIGTERM/SIGINT drain,
// SIGUSR1 log reopen, SIGUSR2 binary upgrade: server/handover.h) and the config-file watcher on
// its own EventLoop.
#include <map>
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
#include "server/handover.h"
#include "server/snapshot_builder.h"
#include "server/worker.h"
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
  // For a binary upgrade: the successor runs `self_exe` (the path this binary was started
  // from, resolved at start) with `argv`, unless `<pid_file>.binary` names another binary.
  std::vector<std::string> argv;
  std::string self_exe;
  std::string pid_file;  // written once serving; empty = none
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
    std::shared_ptr<const std::string> text;  // the YAML as read; null for a preset config
  };
  Result<Built> load();
  // Binds sockets for listeners not open yet: one SO_REUSEPORT socket per worker.
  Result<std::vector<std::vector<ListenerSocket>>> bindListeners(const config::Config& cfg);
  // Keeps a copy of each new socket in `sockets` (listen_fds_), for a binary upgrade.
  void keepListenerCopies(const config::Config& cfg,
                          const std::vector<std::vector<ListenerSocket>>& sockets);
  // `snap` (built from `cfg`) is now the active snapshot: its listeners count as open, and
  // host health checks and DNS discovery follow it. Workers are told separately.
  void adopt(const config::Config& cfg, std::shared_ptr<const proxy::Snapshot> snap);
  void reload(const char* why);
  // DNS answers changed: rebuild the current config's snapshot with them and publish it.
  void republish();
  // `upgrade`: a successor serves on our sockets; drain streams up to streams.max_drain_age.
  void beginShutdown(bool upgrade = false);
  // SIGUSR2: starts the successor and hands it the listening sockets.
  void startUpgrade();
  // Waits for the successor's READY (then drains) or its failure (then keeps serving).
  Task<> watchSuccessor(int sock, pid_t pid);
  // New process: takes the sockets of a predecessor (GATEHOUSE_UPGRADE_FD) before binding.
  Status inheritSockets();
  // Listening and serving: tells the predecessor (if any) and writes the pid file.
  void announceServing();
  void writePidFile();
  void removePidFile();
  Task<> signalLoop(int sigfd);
  Task<> watchLoop(int inotify_fd);
  // What the admin API's built-in endpoints report.
  admin::ServerState adminState() const;

  ServerOptions opts_;
  EventLoop loop_;
  std::unique_ptr<metrics::Stats> stats_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<admin::AdminServer> admin_;
  std::shared_ptr<const proxy::Snapshot> current_;
  std::shared_ptr<proxy::AccessLogSink> log_sink_;
  std::set<std::string> open_listeners_;
  // The control thread's copy of each listening socket, by key, in worker order: what a binary
  // upgrade hands over (the workers close theirs when they drain).
  std::map<std::string, std::vector<int>> listen_fds_;
  std::map<std::string, std::string> listener_names_;  // key -> listener name, for the handover
  InheritedSockets inherited_;                         // from a predecessor, until bound
  int predecessor_fd_ = -1;  // the handover socket to the predecessor, until READY
  pid_t successor_pid_ = 0;  // an upgrade in progress
  uint64_t generation_ = 0;
  std::shared_ptr<const std::string> config_text_;  // the active config's YAML (GET /config)
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
