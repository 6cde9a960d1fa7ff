#include "server/server.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "config/loader.h"
#include "core/log.h"
#include "net/tls_tickets.h"
#include "net/udp.h"
#include "server/sd_notify.h"

namespace gatehouse::server {

using namespace runtime;  // the loop, timers, stats this thread drives

namespace {
// UDP ports are a space of their own: a UDP listener may share a TCP listener's port.
std::string listenerKey(const config::Listener& l) {
  const char* scheme = l.mode == config::ListenerMode::kUdp ? "udp:" : "";
  return scheme + l.address + ":" + std::to_string(l.port);
}

std::string fileHash(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return std::to_string(std::hash<std::string>{}(ss.str())) + ":" + std::to_string(ss.str().size());
}
}  // namespace

namespace {
sigset_t controlSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  for (int s : {SIGHUP, SIGTERM, SIGINT, SIGUSR1, SIGUSR2})
    sigaddset(&mask, s);
  return mask;
}
}  // namespace

void blockControlSignals() {
  sigset_t mask = controlSignals();
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

Server::Server(ServerOptions opts) : opts_(std::move(opts)) {}

Server::~Server() {
  for (auto& w : workers_)
    w->join();
}

std::string Server::describe(const Problems& problems) {
  std::string msg = "invalid config:";
  for (const auto& p : problems) {
    config::ConfigError e{p.file, p.line, p.column, p.path, p.message};
    msg += "\n  " + e.format();
  }
  return msg;
}

namespace {
// The loader's result as a Built's config, or its errors as problems.
std::shared_ptr<const config::Config> takeConfig(config::LoadResult& lr,
                                                 std::vector<admin::ConfigProblem>& problems) {
  for (auto& e : lr.errors) {
    problems.push_back({e.file, e.line, e.column, e.path, e.message});
  }
  if (!lr.ok()) return nullptr;
  return std::make_shared<const config::Config>(std::move(*lr.config));
}
}  // namespace

std::optional<Server::Built> Server::loadText(const std::string& text, Problems& problems) {
  config::AdminAccess admin;
  auto lr = config::loadConfigString(text, opts_.config_path, &admin);
  return fromLoaded(lr, std::move(admin), text, problems);
}

std::optional<Server::Built> Server::fromLoaded(config::LoadResult& lr, config::AdminAccess admin,
                                                const std::string& text, Problems& problems) {
  auto cfg = takeConfig(lr, problems);
  if (!cfg) return std::nullopt;
  Built b;
  b.config = std::move(cfg);
  b.text = text;
  b.admin_options = std::make_shared<const config::AdminAccess>(std::move(admin));
  auto sr =
      server::buildSnapshot(b.config, stats_.get(), generation_ + 1, &health_, &dns_.results());
  if (!sr.snapshot) {
    for (auto& e : sr.errors)
      problems.push_back({opts_.config_path, 0, 0, "", std::move(e)});
    return std::nullopt;
  }
  b.snapshot = sr.snapshot;
  auto access = admin::AccessPolicy::build(*b.admin_options);
  if (!access.ok()) {
    problems.push_back({opts_.config_path, 0, 0, "admin", access.error().message});
    return std::nullopt;
  }
  b.access = std::make_shared<const admin::AccessPolicy>(std::move(*access));
  return b;
}

Result<Server::Built> Server::load(Problems* out) {
  Problems problems;
  std::optional<Built> built;
  if (opts_.preset) {
    // Demo mode: an in-memory config, no text and no file to write back to.
    auto cfg = std::make_shared<const config::Config>(*opts_.preset);
    auto sr = server::buildSnapshot(cfg, stats_.get(), generation_ + 1, &health_, &dns_.results());
    for (auto& e : sr.errors)
      problems.push_back({"", 0, 0, "", std::move(e)});
    auto options = std::make_shared<const config::AdminAccess>();
    auto access = admin::AccessPolicy::build(*options);
    if (sr.snapshot && access.ok()) {
      built = Built{cfg, sr.snapshot,
                    std::make_shared<const admin::AccessPolicy>(std::move(*access)), options, ""};
    }
  } else {
    std::string text;
    config::AdminAccess admin;
    auto lr = config::loadConfigFile(opts_.config_path, &text, &admin);
    built = fromLoaded(lr, std::move(admin), text, problems);
  }
  if (!built) {
    std::string msg = describe(problems);
    if (out) *out = std::move(problems);
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, msg);
  }
  return std::move(*built);
}

Result<std::vector<std::vector<ListenerSocket>>> Server::bindListeners(const config::Config& cfg) {
  std::vector<std::vector<ListenerSocket>> per_worker(workers_.size());
  std::vector<int> opened;
  auto fail = [&](Error e) {
    for (int fd : opened)
      ::close(fd);
    return e;
  };
  for (size_t i = 0; i < cfg.listeners.size(); ++i) {
    const auto& l = cfg.listeners[i];
    std::string key = listenerKey(l);
    bool exists = open_listeners_.count(key) > 0;
    auto addr = net::SocketAddress::parse(l.address, l.port);
    if (!addr.ok()) return fail(addr.error());
    for (size_t w = 0; w < per_worker.size(); ++w) {
      ListenerSocket ls{key, i, -1};
      if (!exists) {
        // A predecessor's socket (binary upgrade) keeps its accept queue: nothing is refused.
        int fd = inherited_.take(key, w);
        if (fd < 0) {
          auto bound = l.mode == config::ListenerMode::kUdp
                           ? net::bindUdpSocket(*addr, true)
                           : net::bindListenSocket(*addr, 4096, true);
          if (!bound.ok()) return fail(bound.error());
          fd = *bound;
        }
        opened.push_back(fd);
        ls.fd = fd;
      }
      per_worker[w].push_back(ls);
    }
  }
  return per_worker;
}

void Server::keepListenerCopies(const config::Config& cfg,
                                const std::vector<std::vector<ListenerSocket>>& sockets) {
  for (size_t w = 0; w < sockets.size(); ++w) {
    for (const ListenerSocket& ls : sockets[w]) {
      if (ls.fd < 0) continue;
      auto& copies = listen_fds_[ls.key];
      if (copies.size() <= w) copies.resize(w + 1, -1);
      if (copies[w] >= 0) ::close(copies[w]);
      copies[w] = ::fcntl(ls.fd, F_DUPFD_CLOEXEC, 0);
      listener_names_[ls.key] = cfg.listeners[ls.listener_index].name;
    }
  }
}

int Server::run() {
  // Signals are taken synchronously through a signalfd on the control loop.
  blockControlSignals();  // idempotent; main() already did it before starting any thread
  sigset_t mask = controlSignals();
  int sigfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (Status st = inheritSockets(); !st.ok()) {
    log::error("upgrade: ", st.error().message);
    return 1;
  }

  // Worker count is fixed for the process; it is read before the first snapshot.
  int nworkers = opts_.workers_override;
  if (nworkers <= 0) {
    config::LoadResult probe =
        opts_.preset ? config::LoadResult{} : config::loadConfigFile(opts_.config_path);
    const config::Config* c =
        opts_.preset ? &*opts_.preset : (probe.ok() ? &*probe.config : nullptr);
    nworkers = c && c->workers > 0 ? c->workers : 0;
  }
  if (nworkers <= 0) nworkers = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // One inherited SO_REUSEPORT socket per worker: a socket without a worker would hold
  // connections nobody accepts, so an upgrade keeps the predecessor's worker count.
  size_t inherited_workers = 0;
  for (const auto& [key, fds] : inherited_.listeners)
    inherited_workers = std::max(inherited_workers, fds.size());
  if (inherited_workers > 0 && inherited_workers != static_cast<size_t>(nworkers)) {
    log::warn("upgrade: keeping the predecessor's ", inherited_workers, " workers (not ", nworkers,
              "); changing the worker count needs a restart");
    nworkers = static_cast<int>(inherited_workers);
  }
  stats_ = std::make_unique<metrics::Stats>(nworkers);

  auto built = load();
  if (!built.ok()) {
    log::error(built.error().message);
    return 1;
  }
  if (!opts_.preset) config_hash_ = fileHash(opts_.config_path);
  const auto& cfg = *built->config;
  auto sink =
      proxy::AccessLogSink::open(cfg.access_log.path == "off" ? "stdout" : cfg.access_log.path);
  if (!sink.ok()) {
    log::error(sink.error().message);
    return 1;
  }
  log_sink_ = *sink;

  exporter_ = std::make_unique<trace::Exporter>(static_cast<size_t>(nworkers));
  for (int i = 0; i < nworkers; ++i) {
    workers_.push_back(std::make_unique<Worker>(i, *stats_, log_sink_));
    workers_.back()->attachTracer(&exporter_->ring(static_cast<size_t>(i)));
  }
  auto sockets = bindListeners(cfg);
  if (!sockets.ok()) {
    log::error(sockets.error().message);
    workers_.clear();
    return 1;
  }
  keepListenerCopies(cfg, *sockets);
  adopt(cfg, built->snapshot);
  recordConfig(*built, "startup");
  stats_->config_loaded_at = static_cast<int64_t>(std::time(nullptr));
  for (int i = 0; i < nworkers; ++i) {
    workers_[static_cast<size_t>(i)]->start(current_, (*sockets)[static_cast<size_t>(i)]);
  }

  if (cfg.admin.enabled) {
    // The admin listener's address and TLS are fixed for the process (a restart changes them);
    // its tokens and certificate roles follow each reload.
    std::shared_ptr<const net::TlsServerContext> admin_tls;
    Status st;
    if (built->admin_options->tls) {
      // The admin server speaks HTTP/1.1 only: never let ALPN pick h2.
      config::ListenerTls tls = *built->admin_options->tls;
      tls.alpn = {"http/1.1"};
      auto ctx = net::TlsServerContext::create(tls);
      if (ctx.ok()) {
        admin_tls = *ctx;
      } else {
        st = ctx.error();
      }
    }
    admin_ = std::make_unique<admin::AdminServer>(
        loop_, [this] { return adminState(); }, admin_tls);
    auto addr = net::SocketAddress::parse(cfg.admin.address, cfg.admin.port);
    // A predecessor's admin socket (binary upgrade) is adopted rather than bound again.
    const int inherited_admin =
        inherited_.takeAdmin(cfg.admin.address + ":" + std::to_string(cfg.admin.port));
    if (st.ok() && inherited_admin >= 0) {
      admin_->adopt(inherited_admin);
    } else if (st.ok()) {
      st = addr.ok() ? admin_->listen(*addr) : Status(addr.error());
    }
    if (!st.ok()) {
      log::error("admin: ", st.error().message);
      beginShutdown();
    }
  }
  for (const auto& l : cfg.listeners) {
    log::info("listening on ", listenerKey(l), " (", nworkers, " workers)");
  }
  if (admin_) log::info("admin API on ", cfg.admin.address, ":", cfg.admin.port);
  // Listeners are bound, workers serve and the admin API listens: tell systemd (and a waiting
  // predecessor, during a binary upgrade).
  announceServing();
  if (!shutting_down_) sd::ready("serving generation " + std::to_string(generation_));

  if (sigfd >= 0) spawn(signalLoop(sigfd));
  // TLS session-ticket keys: a new key every 12 h; the last 3 stay valid for resumption.
  ticket_timer_.arm(
      loop_, loop_.now() + std::chrono::hours(12),
      [](void* p) {
        auto* s = static_cast<Server*>(p);
        net::tickets::rotate();
        s->ticket_timer_.arm(s->loop_, s->loop_.now() + std::chrono::hours(12),
                             s->ticket_timer_.callback(), p);
      },
      this);
  if (!opts_.preset && cfg.watch) {
    int ifd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    std::string dir = std::filesystem::path(opts_.config_path).parent_path().string();
    if (dir.empty()) dir = ".";
    if (ifd >= 0 &&
        ::inotify_add_watch(ifd, dir.c_str(),
                            IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY) >= 0) {
      spawn(watchLoop(ifd));
    } else if (ifd >= 0) {
      ::close(ifd);
    }
  }
  loop_.run();
  for (auto& w : workers_)
    w->join();
  removePidFile();
  log::info("shut down");
  return exit_code_;
}

void Server::adopt(const config::Config& cfg, std::shared_ptr<const proxy::Snapshot> snap) {
  for (const auto& l : cfg.listeners)
    open_listeners_.insert(listenerKey(l));
  for (auto it = listen_fds_.begin(); it != listen_fds_.end();) {
    if (open_listeners_.count(it->first)) {
      ++it;
      continue;
    }
    for (int fd : it->second) {
      if (fd >= 0) ::close(fd);
    }
    listener_names_.erase(it->first);
    it = listen_fds_.erase(it);
  }
  current_ = std::move(snap);
  generation_ = current_->generation;
  health_.activate(proxy::clustersOf(current_));
  dns_.activate(*current_->config);
  if (exporter_) exporter_->configure(cfg.tracing, GATEHOUSE_VERSION);
}

void Server::recordConfig(const Built& built, const std::string& origin) {
  config_generation_ = generation_;
  config_text_ = built.text;
  config_text_shared_ = std::make_shared<const std::string>(built.text);
  access_ = built.access;
  admin_options_ = built.admin_options;
  generations_.setCapacity(built.admin_options->generations);
  generations_.push(admin::Generation{config_generation_, static_cast<int64_t>(std::time(nullptr)),
                                      origin, built.text});
}

bool Server::commit(Built built, const std::string& origin, Problems& problems) {
  const auto& cfg = *built.config;
  auto refuse = [&](std::string message) {
    stats_->reloads_failed.inc();
    problems.push_back({opts_.config_path, 0, 0, "", message});
    log::error("config rejected, still serving generation ", generation_, ": ", message);
    return false;
  };
  if (cfg.workers > 0 && static_cast<size_t>(cfg.workers) != workers_.size()) {
    log::warn("workers: changing the worker count needs a restart; keeping ", workers_.size());
  }
  auto sockets = bindListeners(cfg);
  if (!sockets.ok()) return refuse(sockets.error().message);
  std::shared_ptr<proxy::AccessLogSink> sink = log_sink_;
  std::string want = cfg.access_log.path == "off" ? "stdout" : cfg.access_log.path;
  if (want != log_sink_->path()) {
    auto s = proxy::AccessLogSink::open(want);
    if (!s.ok()) {
      for (auto& pw : *sockets) {
        for (auto& ls : pw) {
          if (ls.fd >= 0) ::close(ls.fd);
        }
      }
      return refuse(s.error().message);
    }
    sink = *s;
  }
  log_sink_ = sink;
  open_listeners_.clear();
  keepListenerCopies(cfg, *sockets);
  adopt(cfg, built.snapshot);
  recordConfig(built, origin);
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->applySnapshot(current_, (*sockets)[i], sink);
  }
  stats_->reloads_ok.inc();
  stats_->config_loaded_at = static_cast<int64_t>(std::time(nullptr));
  log::info("config generation ", generation_, " active (", origin, ")");
  return true;
}

void Server::reload(const char* why) {
  if (shutting_down_) return;
  log::info("reloading config (", why, ")");
  sd::reloading();
  // READY=1 again on every way out: a rejected reload still leaves the gateway serving.
  struct ReadyAgain {
    const uint64_t& generation;
    ~ReadyAgain() { sd::ready("serving generation " + std::to_string(generation)); }
  } ready_again{generation_};
  auto built = load();
  if (!built.ok()) {
    stats_->reloads_failed.inc();
    log::error("reload rejected, still serving generation ", generation_, ": ",
               built.error().message);
    return;
  }
  Problems problems;
  commit(std::move(*built), std::string("reload (") + why + ")", problems);
}

namespace {
// Writes `text` to a new file next to `path` and syncs it; the caller renames it into place.
Result<std::string> writeTemp(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Error::make(ErrorCode::kIo, ErrorSource::kConfig,
                       "cannot write " + tmp + ": " + std::strerror(errno));
  }
  // Keep the original file's permissions.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) ::fchmod(fd, st.st_mode & 07777);
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
  const bool ok = done == text.size() && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) {
    ::unlink(tmp.c_str());
    return Error::make(ErrorCode::kIo, ErrorSource::kConfig,
                       "cannot write " + tmp + ": " + std::strerror(err));
  }
  return tmp;
}

void syncDirectory(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}
}  // namespace

admin::ApplyResult Server::applyConfig(const std::string& yaml, bool dry_run,
                                       const std::string& origin) {
  admin::ApplyResult r;
  r.generation_before = r.generation_after = config_generation_;
  if (opts_.preset || opts_.config_path.empty()) {
    r.kind = admin::ApplyResult::Kind::kNoFile;
    return r;
  }
  if (shutting_down_) {
    r.kind = admin::ApplyResult::Kind::kNotApplicable;
    r.problems.push_back({opts_.config_path, 0, 0, "", "the server is shutting down"});
    return r;
  }
  // The same validation as a reload: the loader, then a full snapshot build.
  auto built = loadText(yaml, r.problems);
  if (!built) {
    r.kind = admin::ApplyResult::Kind::kInvalid;
    return r;
  }
  if (dry_run) {
    r.kind = admin::ApplyResult::Kind::kValid;
    return r;
  }
  // Durable first, visible second: the new file is synced before the swap, and renamed over
  // the old one only once the swap succeeded.
  auto tmp = writeTemp(opts_.config_path, yaml);
  if (!tmp.ok()) {
    r.kind = admin::ApplyResult::Kind::kNotApplicable;
    r.problems.push_back({opts_.config_path, 0, 0, "", tmp.error().message});
    return r;
  }
  if (!commit(std::move(*built), origin, r.problems)) {
    ::unlink(tmp->c_str());
    r.kind = admin::ApplyResult::Kind::kNotApplicable;
    return r;
  }
  if (::rename(tmp->c_str(), opts_.config_path.c_str()) != 0) {
    // Running but not persisted: say so; the next reload from the file would undo it.
    log::error("admin: generation ", config_generation_, " is running but ", opts_.config_path,
               " could not be replaced: ", std::strerror(errno));
    ::unlink(tmp->c_str());
  } else {
    syncDirectory(opts_.config_path);
  }
  // The watcher sees the rename: the same bytes do not reload again.
  config_hash_ = fileHash(opts_.config_path);
  r.kind = admin::ApplyResult::Kind::kApplied;
  r.generation_after = config_generation_;
  return r;
}

admin::DrainResult Server::setHostDrained(const std::string& cluster, const std::string& host,
                                          bool drained) {
  if (!current_) return admin::DrainResult::kNoCluster;
  const int ci = current_->clusterIndex(cluster);
  if (ci < 0) return admin::DrainResult::kNoCluster;
  const auto& cc = current_->clusters[static_cast<size_t>(ci)];
  for (const auto& h : cc.hosts.hosts) {
    if ((h.name != host && h.hostname != host) || !h.health) continue;
    // The state object outlives reloads while the host stays configured, so the drain does too.
    h.health->admin_drained.store(drained, std::memory_order_relaxed);
    if (h.health->cluster) h.health->cluster->bump();
    log::info("admin: host ", h.name, " of cluster ", cluster, drained ? " drained" : " undrained");
    return admin::DrainResult::kDone;
  }
  return admin::DrainResult::kNoHost;
}

std::string Server::reopenLogs() {
  if (!log_sink_) return "no access log";
  auto st = log_sink_->reopen();
  if (!st.ok()) return st.error().message;
  log::info("access log reopened");
  return {};
}

void Server::republish() {
  if (shutting_down_ || !current_) return;
  auto cfg = current_->config;
  auto sr = server::buildSnapshot(cfg, stats_.get(), generation_ + 1, &health_, &dns_.results());
  if (!sr.snapshot) {
    for (const auto& e : sr.errors)
      log::error("dns update rejected: ", e);
    return;
  }
  // Every listener is open already: this hands each worker the same keys and no new socket.
  auto sockets = bindListeners(*cfg);
  if (!sockets.ok()) {
    log::error("dns update rejected: ", sockets.error().message);
    return;
  }
  current_ = sr.snapshot;
  generation_ = current_->generation;
  health_.activate(proxy::clustersOf(current_));
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->applySnapshot(current_, (*sockets)[i], log_sink_);
  }
  log::info("config generation ", generation_, " active (DNS answers changed)");
}

void Server::beginShutdown(bool upgrade) {
  if (shutting_down_) return;
  shutting_down_ = true;
  sd::stopping();
  health_.stop();
  dns_.stop();
  auto drain = current_ ? current_->config->timeouts.drain : std::chrono::milliseconds(15000);
  if (upgrade && current_) {
    // The successor serves new connections: open streams may run up to their drain age
    // (0 = until they end), and never less than a shutdown's drain.
    const auto age = current_->config->streams.max_drain_age;
    drain = age.count() == 0 ? std::chrono::hours(24 * 365) : std::max(drain, age);
  }
  log::info(upgrade ? "draining after the upgrade (deadline " : "draining (deadline ",
            drain.count(), " ms)");
  if (admin_) admin_->close();
  // The copies kept for an upgrade: the successor, if any, holds the sockets now.
  for (auto& [key, fds] : listen_fds_) {
    for (int fd : fds) {
      if (fd >= 0) ::close(fd);
    }
  }
  listen_fds_.clear();
  auto deadline = Clock::now() + drain;
  for (auto& w : workers_)
    w->drain(deadline, upgrade);
  // Poll for the workers to finish; the control loop then stops.
  shutdown_poll_.arm(
      loop_, loop_.now() + std::chrono::milliseconds(20),
      [](void* p) {
        auto* s = static_cast<Server*>(p);
        bool all = true;
        for (auto& w : s->workers_)
          all = all && w->finished();
        if (all) {
          s->loop_.stop();
        } else {
          s->shutdown_poll_.arm(s->loop_, s->loop_.now() + std::chrono::milliseconds(20),
                                s->shutdown_poll_.callback(), p);
        }
      },
      this);
}

Task<> Server::signalLoop(int sigfd) {
  net::TcpStream s(loop_, sigfd);  // any readable fd works; signalfd supports epoll
  for (;;) {
    signalfd_siginfo info{};
    auto n = co_await s.read(reinterpret_cast<char*>(&info), sizeof info, kNoDeadline);
    if (!n.ok() || *n != sizeof info) co_return;
    switch (info.ssi_signo) {
      case SIGHUP:
        reload("SIGHUP");
        break;
      case SIGUSR1:
        if (std::string err = reopenLogs(); !err.empty()) log::error(err);
        break;
      case SIGUSR2:
        startUpgrade();
        break;
      case SIGTERM:
      case SIGINT:
        beginShutdown();
        break;
      default:
        break;
    }
  }
}

Task<> Server::watchLoop(int inotify_fd) {
  net::TcpStream s(loop_, inotify_fd);
  std::string name = std::filesystem::path(opts_.config_path).filename().string();
  alignas(inotify_event) char buf[4096];
  for (;;) {
    auto n = co_await s.read(buf, sizeof buf, kNoDeadline);
    if (!n.ok() || *n == 0) co_return;
    bool ours = false;
    for (size_t off = 0; off < *n;) {
      auto* ev = reinterpret_cast<inotify_event*>(buf + off);
      if (ev->len > 0 && name == ev->name) ours = true;
      off += sizeof(inotify_event) + ev->len;
    }
    if (!ours) continue;
    // Editors write in several steps: wait for quiet, then reload only if the bytes changed.
    watch_debounce_.arm(
        loop_, loop_.now() + std::chrono::milliseconds(200),
        [](void* p) {
          auto* srv = static_cast<Server*>(p);
          std::string h = fileHash(srv->opts_.config_path);
          if (h != srv->config_hash_) {
            srv->config_hash_ = h;
            srv->reload("config file changed");
          }
        },
        this);
  }
}

admin::ServerState Server::adminState() {
  return {current_,       stats_.get(),   generation_, workers_.size(), shutting_down_,
          config_text_shared_, access_, admin_options_, this};
}

}  // namespace gatehouse::server
