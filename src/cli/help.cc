#include "cli/help.h"

#include <set>

namespace gatehouse::cli {

namespace {

constexpr OptionHelp kRunOptions[] = {
    {"-c, --config", "FILE",
     "The YAML configuration (docs/config.md). Also accepted as the "
     "first argument."},
    {"--workers", "N", "Worker threads (default: the config's `workers`, else one per core)."},
    {"--log-level", "LEVEL", "debug, info, warn or error (default info)."},
    {"--pid-file", "FILE",
     "Write the process id to FILE once serving (removed at exit unless a successor rewrote "
     "it); `gatehouse upgrade` reads it."},
};

constexpr OptionHelp kUpgradeOptions[] = {
    {"--pid-file", "FILE", "The pid file of the running instance (required)."},
    {"--binary", "PATH", "Start this binary instead of the one the instance was started from."},
    {"--timeout", "SECONDS", "How long to wait for the successor to serve (default 60)."},
};

constexpr OptionHelp kValidateOptions[] = {
    {"--diff-with", "URL",
     "Also print what FILE changes against the config a running gateway serves, fetched from "
     "its admin API (GET /api/v1/config, else GET /config), e.g. http://127.0.0.1:9901. Secrets "
     "are compared by a short hash and never printed."},
    {"--token", "TOKEN",
     "Bearer token for an admin API that requires one (default: $GATEHOUSE_ADMIN_TOKEN)."},
};

constexpr OptionHelp kExplainOptions[] = {
    {"-c, --config", "FILE", "The configuration to explain against (required)."},
    {"--method", "METHOD", "Request method (default GET)."},
    {"--url", "URL",
     "http://host:port/path?query, or an origin-form /path?query. The port picks the listener."},
    {"--path", "PATH", "Same as --url with an origin-form target."},
    {"--host", "HOST", "Host header (default: from the URL)."},
    {"-H, --header", "'NAME: VALUE'", "A request header; repeat for more."},
    {"--client-ip", "IP", "Client address for IP rules and hashing (default 127.0.0.1)."},
    {"--listener", "NAME",
     "Listener by name or index (default: by the URL's port, else the first "
     "HTTP listener)."},
    {"--json", "", "Print the explanation as JSON instead of text."},
    {"--", "curl ARGS...", "Describe the request as a curl command line instead of flags."},
};

constexpr OptionHelp kDemoOptions[] = {
    {"--port", "PORT", "Proxy port (default 8080)."},
    {"--admin-port", "PORT", "Admin API port (default 9901)."},
    {"--workers", "N", "Worker threads."},
};

constexpr OptionHelp kLuaTestOptions[] = {
    {"--request", "FILE|JSON", "The request the script's hooks see."},
    {"--policy", "FILE|YAML", "The lua policy's config (limits, args)."},
    {"--json", "", "Print the result as JSON."},
};

constexpr OptionHelp kHelpOptions[] = {
    {"--man", "", "Print the manual page (roff) instead."},
};

constexpr CommandHelp kCommands[] = {
    {"run", "[run] -c FILE [--workers N] [--log-level LEVEL] [--pid-file FILE]",
     "serve with a configuration file",
     "Loads FILE, binds its listeners and serves until SIGTERM or SIGINT (graceful drain). "
     "SIGHUP, or a change to FILE, reloads it: a config that fails validation is rejected and the "
     "old one keeps serving. SIGUSR1 reopens log files. Under systemd (Type=notify) it reports "
     "READY=1 once listening, RELOADING=1 during a reload and STOPPING=1 when draining.",
     kRunOptions, "gatehouse run -c /etc/gatehouse/gatehouse.yaml\n"},
    {"upgrade", "upgrade --pid-file FILE [--binary PATH] [--timeout SECONDS]",
     "replace a running instance's binary without dropping a connection",
     "Signals the instance named by FILE (SIGUSR2), which starts its successor and hands it the "
     "listening sockets over a Unix socket; the old process stops accepting and drains its "
     "connections and streams. Exit status 0 once the successor serves, 1 if it failed to start "
     "(the old process keeps serving and logs why) or did not serve within the timeout.",
     kUpgradeOptions, "gatehouse upgrade --pid-file /run/gatehouse.pid\n"},
    {"validate", "validate FILE [--diff-with URL] [--token TOKEN]", "check a configuration",
     "Loads and compiles FILE as a reload would (policies, regexes, clusters) and prints every "
     "error as file:line: yaml.path: message. Exit status 0 when valid, 1 otherwise. With "
     "--diff-with, also prints what FILE changes against a running gateway, one line per change: "
     "'+' added, '-' removed, '~' changed.",
     kValidateOptions,
     "gatehouse validate gatehouse.yaml\n"
     "gatehouse validate gatehouse.yaml --diff-with http://127.0.0.1:9901\n"},
    {"explain", "explain -c FILE [--method M] [--url URL] [-H 'K: V']... [--json] [-- curl ...]",
     "show what the gateway would do with a request",
     "Says which listener, virtual host and route take the request and why each earlier route "
     "did not; the policies that would run, in order, with what each would decide where the "
     "config and the request are enough to tell (a missing credential, an IP rule, CORS, a "
     "direct response); the cluster, how a split or canary rule chooses, the host a balancer "
     "would pick, and the timeouts and retries in force. Nothing is sent and nothing is counted. "
     "Offline, every host counts as healthy; the running gateway's admin API answers the same "
     "question with live health: POST /api/v1/explain.",
     kExplainOptions,
     "gatehouse explain -c gatehouse.yaml --url http://api.example.com:8080/users/7\n"
     "gatehouse explain -c gatehouse.yaml --method POST --path /admin -H 'x-api-key: k1'\n"
     "gatehouse explain -c gatehouse.yaml --json -- curl -H 'Origin: https://a.example' "
     "http://localhost:8080/api\n"},
    {"demo", "demo [--port PORT] [--admin-port PORT] [--workers N]",
     "serve a self-contained example",
     "Starts two echo upstreams and a gateway in front of them (round robin), with a direct "
     "response on /hello and a redirect on /old.",
     kDemoOptions, "gatehouse demo --port 8080\n"},
    {"lua-test", "lua-test SCRIPT --request FILE|JSON [--policy FILE|YAML] [--json]",
     "run a Lua policy's hooks without a gateway",
     "Runs SCRIPT's hooks on the given request and prints what they did (docs/lua.md).",
     kLuaTestOptions, "gatehouse lua-test script.lua --request '{\"path\": \"/x\"}'\n"},
    {"version", "version", "print the version", "Prints the version and exits.", {}, ""},
    {"help", "help [COMMAND] [--man]", "show help for a command",
     "Without COMMAND, lists the commands; with one, describes it; with --man, prints the whole "
     "manual page in roff.",
     kHelpOptions, "gatehouse help explain\ngatehouse help --man | man -l -\n"},
    {"completion",
     "completion bash",
     "print a shell completion script",
     "Prints a bash completion script for gatehouse: source <(gatehouse completion bash), or "
     "install it as /usr/share/bash-completion/completions/gatehouse.",
     {},
     "source <(gatehouse completion bash)\n"},
};

std::string padded(std::string_view s, size_t width) {
  std::string out(s);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

// Wraps `text` at `width` columns, each line indented by `indent` spaces.
std::string wrapped(std::string_view text, size_t indent, size_t width = 78) {
  std::string out;
  std::string line;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view word = text.substr(pos, end - pos);
    if (!line.empty() && indent + line.size() + 1 + word.size() > width) {
      out += std::string(indent, ' ') + line + "\n";
      line.clear();
    }
    if (!line.empty()) line += ' ';
    line += word;
    pos = end + 1;
  }
  if (!line.empty()) out += std::string(indent, ' ') + line + "\n";
  return out;
}

// roff text: a leading '.' or '\'' would be a request, and '\' and '-' need escapes.
std::string roff(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else {
      out += c;
    }
  }
  if (!out.empty() && (out[0] == '.' || out[0] == '\'')) out = "\\&" + out;
  return out;
}

}  // namespace

std::span<const CommandHelp> commands() {
  return kCommands;
}

const CommandHelp* findCommand(std::string_view name) {
  for (const auto& c : kCommands) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string overview() {
  std::string out = "usage:\n";
  for (const auto& c : kCommands)
    out += "  gatehouse " + std::string(c.synopsis) + "\n";
  out += "\ncommands:\n";
  for (const auto& c : kCommands)
    out += "  " + padded(c.name, 12) + std::string(c.summary) + "\n";
  out += "\n'gatehouse help COMMAND' describes one; 'gatehouse help --man' prints the manual.\n";
  return out;
}

std::string commandText(const CommandHelp& c) {
  std::string out = "usage: gatehouse " + std::string(c.synopsis) + "\n\n";
  out += wrapped(std::string(c.summary) + ". " + std::string(c.description), 0);
  if (!c.options.empty()) {
    out += "\noptions:\n";
    for (const auto& o : c.options) {
      std::string head = std::string(o.flags) + (o.value.empty() ? "" : " " + std::string(o.value));
      if (head.size() > 24) {
        out += "  " + head + "\n" + wrapped(o.text, 28);
      } else {
        const std::string body = wrapped(o.text, 28);
        out += "  " + padded(head, 26) + body.substr(std::min<size_t>(28, body.size()));
      }
    }
  }
  if (!c.examples.empty()) {
    out += "\nexamples:\n";
    std::string_view ex = c.examples;
    while (!ex.empty()) {
      const size_t nl = ex.find('\n');
      out += "  " + std::string(ex.substr(0, nl)) + "\n";
      ex = nl == std::string_view::npos ? std::string_view{} : ex.substr(nl + 1);
    }
  }
  return out;
}

std::string manPage() {
  std::string out = ".TH GATEHOUSE 1 \"\" \"gatehouse " GATEHOUSE_VERSION
                    "\" \"User Commands\"\n"
                    ".SH NAME\ngatehouse \\- API gateway and L4/L7 load balancer\n.SH SYNOPSIS\n";
  for (const auto& c : kCommands)
    out += ".B gatehouse\n" + roff(c.synopsis) + "\n.br\n";
  out +=
      ".SH DESCRIPTION\nGatehouse is an API gateway and load balancer in one binary, configured "
      "by one YAML file (see the configuration reference, docs/config.md) and operated through "
      "signals and its admin API (docs/operations.md).\n.SH COMMANDS\n";
  for (const auto& c : kCommands) {
    out += ".SS \"" + roff(c.name) + "\"\n" +
           roff(std::string(c.summary) + ". " + std::string(c.description)) + "\n";
    for (const auto& o : c.options) {
      out += ".TP\n.B " + roff(o.flags) +
             (o.value.empty() ? "" : " \\fI" + roff(o.value) + "\\fR") + "\n" + roff(o.text) + "\n";
    }
    if (!c.examples.empty()) {
      out += ".PP\nExamples:\n.PP\n.nf\n.RS\n" + roff(c.examples) + ".RE\n.fi\n";
    }
  }
  out +=
      ".SH SIGNALS\n.TP\n.B SIGHUP\nReload the configuration.\n.TP\n.B SIGTERM, SIGINT\n"
      "Drain and stop.\n.TP\n.B SIGUSR1\nReopen log files.\n"
      ".SH FILES\n.TP\n.I /etc/gatehouse/gatehouse.yaml\nThe configuration the systemd unit "
      "(gatehouse.service) runs with.\n"
      ".SH EXIT STATUS\n0 on success; 1 on an invalid configuration or a failed start; 2 on a "
      "usage error.\n";
  return out;
}

std::string bashCompletion() {
  std::string names;
  for (const auto& c : kCommands)
    names += (names.empty() ? "" : " ") + std::string(c.name);
  std::string out =
      "# bash completion for gatehouse (generated by: gatehouse completion bash)\n"
      "_gatehouse() {\n"
      "  local cur prev cmd\n"
      "  cur=\"${COMP_WORDS[COMP_CWORD]}\"\n"
      "  prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
      "  cmd=\"${COMP_WORDS[1]}\"\n"
      "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
      "    COMPREPLY=($(compgen -W \"" +
      names +
      " --help\" -- \"$cur\"))\n"
      "    return\n"
      "  fi\n"
      "  case \"$prev\" in\n"
      "    -c|--config|--policy|--request) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
      "    --log-level) COMPREPLY=($(compgen -W \"debug info warn error\" -- \"$cur\")); return "
      ";;\n"
      "    --method) COMPREPLY=($(compgen -W \"GET HEAD POST PUT PATCH DELETE OPTIONS\" -- "
      "\"$cur\")); return ;;\n"
      "  esac\n"
      "  case \"$cmd\" in\n";
  for (const auto& c : kCommands) {
    std::set<std::string> flags;
    for (const auto& o : c.options) {
      std::string_view f = o.flags;
      while (!f.empty()) {
        const size_t comma = f.find(", ");
        const std::string_view one = f.substr(0, comma);
        if (one.starts_with("-") && one != "--") flags.insert(std::string(one));
        f = comma == std::string_view::npos ? std::string_view{} : f.substr(comma + 2);
      }
    }
    std::string words;
    for (const auto& f : flags)
      words += (words.empty() ? "" : " ") + f;
    if (c.name == "help") words += " " + names;
    if (c.name == "completion") words = "bash";
    out +=
        "    " + std::string(c.name) + ") COMPREPLY=($(compgen -W \"" + words + "\" -- \"$cur\"))";
    if (c.name == "validate" || c.name == "lua-test" || c.name == "run") {
      out += "; [[ \"$cur\" != -* ]] && COMPREPLY+=($(compgen -f -- \"$cur\"))";
    }
    out += " ;;\n";
  }
  out += "  esac\n}\ncomplete -F _gatehouse gatehouse\n";
  return out;
}

}  // namespace gatehouse::cli
