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

#include "admin/access.h"
#include "admin/admin_server.h"
#include "admin/control_plane.h"
#include "admin/generations.h"
#include "config/admin_options.h"
#include "config/model.h"
#include "metrics/stats.h"
#include "proxy/access_log.h"
#include "proxy/snapshot.h"
#include "runtime/event_loop.h"
#include "server/handover.h"
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
  // For a binary upgrade: the successor runs `self_exe` (the path this binary was started
  // from, resolved at start) with `argv`, unless `<pid_file>.binary` names another binary.
  std::vector<std::string> argv;
  std::string self_exe;
  std::string pid_file;  // written once serving; empty = none
};

// Blocks the signals the control loop handles, in the calling thread and every thread it
// starts later. Call first in main(), before any thread exists.
void blockControlSignals();

class Server final : public admin::ControlPlane {
 public:
  explicit Server(ServerOptions opts);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads config, starts everything and blocks until shut down. Returns the exit code.
  int run();
  // Control thread: the loop that runs the admin API and signals (demo upstreams share it).
  EventLoop& loop() { return loop_; }

  // admin::ControlPlane (control thread).
  uint64_t configGeneration() const override { return config_generation_; }
  std::string configPath() const override { return opts_.config_path; }
  std::string configText() const override { return config_text_; }
  admin::ApplyResult applyConfig(const std::string& yaml, bool dry_run,
                                 const std::string& origin) override;
  const admin::GenerationRing& generations() const override { return generations_; }
  admin::DrainResult setHostDrained(const std::string& cluster, const std::string& host,
                                    bool drained) override;
  std::string reopenLogs() override;

 private:
  struct Built {
    std::shared_ptr<const config::Config> config;
    std::shared_ptr<const proxy::Snapshot> snapshot;
    std::shared_ptr<const admin::AccessPolicy> access;
    std::shared_ptr<const config::AdminAccess> admin_options;
    std::string text;  // the YAML it came from (empty for a preset)
  };
  // Why a config was refused; empty = none.
  using Problems = std::vector<admin::ConfigProblem>;
  static std::string describe(const Problems& problems);
  // Reads the config file (or the preset) and validates it: load(text) does the rest.
  Result<Built> load(Problems* problems = nullptr);
  // Validates `text` as the config file's content: the loader, then a full snapshot build.
  std::optional<Built> loadText(const std::string& text, Problems& problems);
  // The rest of the validation once the loader ran on `text`: the snapshot and access policy.
  std::optional<Built> fromLoaded(config::LoadResult& lr, config::AdminAccess admin,
                                  const std::string& text, Problems& problems);
  // Makes `built` the running config, as every reload does; false (nothing changed) when a
  // listener cannot be bound or the access log opened.
  bool commit(Built built, const std::string& origin, Problems& problems);
  // Binds sockets for listeners not open yet: one SO_REUSEPORT socket per worker.
  Result<std::vector<std::vector<ListenerSocket>>> bindListeners(const config::Config& cfg);
  // Keeps a copy of each new socket in `sockets` (listen_fds_), for a binary upgrade.
  void keepListenerCopies(const config::Config& cfg,
                          const std::vector<std::vector<ListenerSocket>>& sockets);
  // `snap` (built from `cfg`) is now the active snapshot: its listeners count as open, and
  // host health checks and DNS discovery follow it. Workers are told separately.
  void adopt(const config::Config& cfg, std::shared_ptr<const proxy::Snapshot> snap);
  // The running config changed (startup, reload, admin API): its generation, text and access
  // policy, kept in the history.
  void recordConfig(const Built& built, const std::string& origin);
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
  admin::ServerState adminState();

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
  // The control thread's copy of each listening socket, by key, in worker order: what a binary
  // upgrade hands over (the workers close theirs when they drain).
  std::map<std::string, std::vector<int>> listen_fds_;
  std::map<std::string, std::string> listener_names_;  // key -> listener name, for the handover
  InheritedSockets inherited_;                         // from a predecessor, until bound
  int predecessor_fd_ = -1;  // the handover socket to the predecessor, until READY
  pid_t successor_pid_ = 0;  // an upgrade in progress
  uint64_t generation_ = 0;
  // The running config: its generation (a DNS republish keeps it), text and history.
  uint64_t config_generation_ = 0;
  std::string config_text_;
  std::shared_ptr<const std::string> config_text_shared_;  // the same, for GET /config
  admin::GenerationRing generations_;
  std::shared_ptr<const admin::AccessPolicy> access_;
  std::shared_ptr<const config::AdminAccess> admin_options_;
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
