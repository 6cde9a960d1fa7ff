#include "server/server.h"

#include <signal.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <unistd.h>

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
  for (int s : {SIGHUP, SIGTERM, SIGINT, SIGUSR1})
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

Result<Server::Built> Server::load() {
  config::LoadResult lr;
  if (opts_.preset) {
    lr.config = *opts_.preset;
  } else {
    lr = config::loadConfigFile(opts_.config_path);
  }
  if (!lr.ok()) {
    std::string msg;
    for (const auto& e : lr.errors)
      msg += "\n  " + e.format();
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, "invalid config:" + msg);
  }
  auto cfg = std::make_shared<const config::Config>(std::move(*lr.config));
  auto sr = server::buildSnapshot(cfg, stats_.get(), generation_ + 1, &health_, &dns_.results());
  if (!sr.snapshot) {
    std::string msg;
    for (const auto& e : sr.errors)
      msg += "\n  " + e;
    return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, "invalid config:" + msg);
  }
  return Built{cfg, sr.snapshot};
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
    for (auto& pw : per_worker) {
      ListenerSocket ls{key, i, -1};
      if (!exists) {
        auto fd = l.mode == config::ListenerMode::kUdp ? net::bindUdpSocket(*addr, true)
                                                       : net::bindListenSocket(*addr, 4096, true);
        if (!fd.ok()) return fail(fd.error());
        opened.push_back(*fd);
        ls.fd = *fd;
      }
      pw.push_back(ls);
    }
  }
  return per_worker;
}

int Server::run() {
  // Signals are taken synchronously through a signalfd on the control loop.
  blockControlSignals();  // idempotent; main() already did it before starting any thread
  sigset_t mask = controlSignals();
  int sigfd = ::signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);

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
  adopt(cfg, built->snapshot);
  stats_->config_loaded_at = static_cast<int64_t>(std::time(nullptr));
  for (int i = 0; i < nworkers; ++i) {
    workers_[static_cast<size_t>(i)]->start(current_, (*sockets)[static_cast<size_t>(i)]);
  }

  if (cfg.admin.enabled) {
    admin_ = std::make_unique<admin::AdminServer>(loop_, [this] { return adminState(); });
    auto addr = net::SocketAddress::parse(cfg.admin.address, cfg.admin.port);
    Status st = addr.ok() ? admin_->listen(*addr) : Status(addr.error());
    if (!st.ok()) {
      log::error("admin: ", st.error().message);
      beginShutdown();
    }
  }
  for (const auto& l : cfg.listeners) {
    log::info("listening on ", listenerKey(l), " (", nworkers, " workers)");
  }
  if (admin_) log::info("admin API on ", cfg.admin.address, ":", cfg.admin.port);

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
  log::info("shut down");
  return exit_code_;
}

void Server::adopt(const config::Config& cfg, std::shared_ptr<const proxy::Snapshot> snap) {
  for (const auto& l : cfg.listeners)
    open_listeners_.insert(listenerKey(l));
  current_ = std::move(snap);
  generation_ = current_->generation;
  health_.activate(proxy::clustersOf(current_));
  dns_.activate(*current_->config);
  if (exporter_) exporter_->configure(cfg.tracing, GATEHOUSE_VERSION);
}

void Server::reload(const char* why) {
  if (shutting_down_) return;
  log::info("reloading config (", why, ")");
  auto built = load();
  if (!built.ok()) {
    stats_->reloads_failed.inc();
    log::error("reload rejected, still serving generation ", generation_, ": ",
               built.error().message);
    return;
  }
  const auto& cfg = *built->config;
  if (cfg.workers > 0 && static_cast<size_t>(cfg.workers) != workers_.size()) {
    log::warn("workers: changing the worker count needs a restart; keeping ", workers_.size());
  }
  auto sockets = bindListeners(cfg);
  if (!sockets.ok()) {
    stats_->reloads_failed.inc();
    log::error("reload rejected: ", sockets.error().message);
    return;
  }
  std::shared_ptr<proxy::AccessLogSink> sink = log_sink_;
  std::string want = cfg.access_log.path == "off" ? "stdout" : cfg.access_log.path;
  if (want != log_sink_->path()) {
    auto s = proxy::AccessLogSink::open(want);
    if (!s.ok()) {
      stats_->reloads_failed.inc();
      log::error("reload rejected: ", s.error().message);
      for (auto& pw : *sockets) {
        for (auto& ls : pw) {
          if (ls.fd >= 0) ::close(ls.fd);
        }
      }
      return;
    }
    sink = *s;
  }
  log_sink_ = sink;
  open_listeners_.clear();
  adopt(cfg, built->snapshot);
  for (size_t i = 0; i < workers_.size(); ++i) {
    workers_[i]->applySnapshot(current_, (*sockets)[i], sink);
  }
  stats_->reloads_ok.inc();
  stats_->config_loaded_at = static_cast<int64_t>(std::time(nullptr));
  log::info("config generation ", generation_, " active");
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

void Server::beginShutdown() {
  if (shutting_down_) return;
  shutting_down_ = true;
  health_.stop();
  dns_.stop();
  auto drain = current_ ? current_->config->timeouts.drain : std::chrono::milliseconds(15000);
  log::info("draining (deadline ", drain.count(), " ms)");
  if (admin_) admin_->close();
  auto deadline = Clock::now() + drain;
  for (auto& w : workers_)
    w->drain(deadline);
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
        if (log_sink_) {
          auto st = log_sink_->reopen();
          if (!st.ok())
            log::error(st.error().message);
          else
            log::info("access log reopened");
        }
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

admin::ServerState Server::adminState() const {
  return {current_, stats_.get(), generation_, workers_.size(), shutting_down_};
}

}  // namespace gatehouse::server
