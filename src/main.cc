// gatehouse: API gateway and load balancer. Subcommands (cli/help.cc describes each): run
// (default), validate, explain, demo, lua-test, upgrade, version, help, completion.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cli/commands.h"
#include "cli/help.h"
#include "core/log.h"
#include "demo/echo_server.h"
#include "policies/lua/test_command.h"
#include "server/server.h"

namespace {

using namespace gatehouse;

int usage(int code) {
  std::fputs(cli::overview().c_str(), code == 0 ? stdout : stderr);
  return code;
}

// gatehouse help [COMMAND] [--man]
int help(const std::vector<std::string>& args) {
  if (args.empty()) return usage(0);
  if (args[0] == "--man") {
    std::fputs(cli::manPage().c_str(), stdout);
    return 0;
  }
  const cli::CommandHelp* c = cli::findCommand(args[0]);
  if (!c) {
    std::fprintf(stderr, "gatehouse help: unknown command '%s'\n", args[0].c_str());
    return usage(2);
  }
  std::fputs(cli::commandText(*c).c_str(), stdout);
  return 0;
}

int completion(const std::vector<std::string>& args) {
  if (args.size() != 1 || args[0] != "bash") {
    std::fprintf(stderr, "usage: gatehouse completion bash\n");
    return 2;
  }
  std::fputs(cli::bashCompletion().c_str(), stdout);
  return 0;
}

std::string readPid(const std::string& path) {
  std::ifstream f(path);
  std::string line;
  std::getline(f, line);
  return line;
}

// Signals the instance named by the pid file to start its successor (SIGUSR2), then waits until
// the pid file names a new, live process: the successor writes it once it serves.
int upgrade(const std::string& pid_file, const std::string& binary, int timeout_s) {
  if (pid_file.empty()) return usage(2);
  const std::string old_text = readPid(pid_file);
  const pid_t old_pid = static_cast<pid_t>(std::atoi(old_text.c_str()));
  if (old_pid <= 0) {
    std::fprintf(stderr, "upgrade: %s names no process\n", pid_file.c_str());
    return 1;
  }
  if (!binary.empty()) {
    if (::access(binary.c_str(), X_OK) != 0) {
      std::fprintf(stderr, "upgrade: %s is not an executable file\n", binary.c_str());
      return 1;
    }
    std::ofstream(pid_file + ".binary", std::ios::trunc) << binary << "\n";
  }
  if (::kill(old_pid, SIGUSR2) != 0) {
    std::fprintf(stderr, "upgrade: cannot signal process %d: %s\n", old_pid, std::strerror(errno));
    return 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t now_pid = static_cast<pid_t>(std::atoi(readPid(pid_file).c_str()));
    if (now_pid > 0 && now_pid != old_pid && ::kill(now_pid, 0) == 0) {
      std::printf("upgraded: process %d serves; process %d drains and exits\n", now_pid, old_pid);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::fprintf(stderr,
               "upgrade: no new process within %d s; process %d keeps serving (see its log)\n",
               timeout_s, old_pid);
  return 1;
}

config::Config demoConfig(uint16_t port, uint16_t admin_port, const std::vector<uint16_t>& ups) {
  config::Config c;
  c.source_file = "<demo>";
  c.watch = false;
  config::Listener l;
  l.name = "demo";
  l.address = "127.0.0.1";
  l.port = port;
  c.listeners.push_back(l);
  c.admin.port = admin_port;
  config::Cluster cl;
  cl.name = "echo";
  for (auto p : ups)
    cl.endpoints.push_back({"127.0.0.1", p, 1});
  c.clusters.push_back(cl);
  config::VirtualHost vh;
  vh.name = "demo";
  vh.domains = {"*"};
  config::Route hello;
  hello.name = "hello";
  hello.match.path_exact = "/hello";
  hello.direct_response = config::DirectResponse{200, "hello from gatehouse\n", "text/plain"};
  vh.routes.push_back(hello);
  config::Route old;
  old.name = "old-docs";
  old.match.path_prefix = "/old";
  old.redirect = config::Redirect{};
  old.redirect->status = 301;
  old.redirect->path = "/hello";
  vh.routes.push_back(old);
  config::Route echo;
  echo.name = "echo";
  echo.match.path_prefix = "/";
  echo.cluster = "echo";
  vh.routes.push_back(echo);
  c.virtual_hosts.push_back(vh);
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  server::blockControlSignals();
  std::vector<std::string> args(argv + 1, argv + argc);
  if (!args.empty() && args[0] == "lua-test") {
    return policies::lua::runLuaTest({args.begin() + 1, args.end()});
  }
  std::string cmd = "run";
  bool named = false;  // `gatehouse run --help` describes run; `gatehouse --help` lists all
  if (!args.empty() && args[0].rfind("-", 0) != 0) {
    cmd = args[0];
    named = true;
    args.erase(args.begin());
  }
  if (const cli::CommandHelp* c = named ? cli::findCommand(cmd) : nullptr) {
    for (const auto& a : args) {
      if (a == "--") break;  // explain's curl words are not ours
      if (a == "-h" || a == "--help") {
        std::fputs(cli::commandText(*c).c_str(), stdout);
        return 0;
      }
    }
  }
  // Commands with their own argument parsing (cli/).
  if (cmd == "help") return help(args);
  if (cmd == "completion") return completion(args);
  if (cmd == "explain") return cli::runExplain(args);
  if (cmd == "validate") return cli::runValidate(args);
  if (cmd != "run" && cmd != "demo" && cmd != "version" && cmd != "upgrade") {
    std::fprintf(stderr, "gatehouse: unknown command '%s'\n", cmd.c_str());
    return usage(2);
  }
  std::string config_path;
  int workers = 0;
  int port = 8080;
  int admin_port = 9901;
  std::string positional;
  std::string pid_file;
  std::string binary;
  int timeout_s = 60;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&]() -> std::string { return i + 1 < args.size() ? args[++i] : std::string(); };
    if (a == "-c" || a == "--config") {
      config_path = value();
    } else if (a == "--pid-file") {
      pid_file = value();
    } else if (a == "--binary") {
      binary = value();
    } else if (a == "--timeout") {
      timeout_s = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--workers") {
      workers = std::atoi(value().c_str());
    } else if (a == "--port") {
      port = std::atoi(value().c_str());
    } else if (a == "--admin-port") {
      admin_port = std::atoi(value().c_str());
    } else if (a == "--log-level") {
      log::Level lvl;
      if (!log::parseLevel(value(), lvl)) return usage(2);
      log::setLevel(lvl);
    } else if (a == "-h" || a == "--help") {
      if (named) {
        if (const cli::CommandHelp* c = cli::findCommand(cmd)) {
          std::fputs(cli::commandText(*c).c_str(), stdout);
          return 0;
        }
      }
      return usage(0);
    } else if (positional.empty() && a.rfind("-", 0) != 0) {
      positional = a;
    } else {
      std::fprintf(stderr, "unknown argument '%s'\n", a.c_str());
      return usage(2);
    }
  }

  if (cmd == "version") {
    std::printf("gatehouse %s\n", GATEHOUSE_VERSION);
    return 0;
  }
  if (cmd == "upgrade") return upgrade(pid_file, binary, timeout_s);
  if (cmd == "demo") {
    auto echo = demo::EchoServers::start(2);
    if (!echo.ok()) {
      log::error("demo: ", echo.error().message);
      return 1;
    }
    server::ServerOptions opts;
    opts.preset = demoConfig(static_cast<uint16_t>(port), static_cast<uint16_t>(admin_port),
                             (*echo)->ports());
    opts.workers_override = workers;
    log::info("demo: echo upstreams on 127.0.0.1:", (*echo)->ports()[0],
              " and 127.0.0.1:", (*echo)->ports()[1]);
    log::info("demo: try  curl -s http://127.0.0.1:", port, "/anything   (twice: see 'upstream')");
    server::Server server(std::move(opts));
    return server.run();
  }
  if (cmd == "run") {
    if (config_path.empty()) config_path = positional;
    if (config_path.empty()) return usage(2);
    server::ServerOptions opts;
    opts.config_path = config_path;
    opts.workers_override = workers;
    opts.pid_file = pid_file;
    // A binary upgrade re-runs this command line with the binary at this path (replaced in
    // place by then), read now: later /proc/self/exe may name a deleted file.
    opts.argv.assign(argv, argv + argc);
    char exe[4096];
    const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) opts.self_exe.assign(exe, static_cast<size_t>(n));
    server::Server server(std::move(opts));
    return server.run();
  }
  return usage(2);
}
