#include "cli/commands.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/admin_fetch.h"
#include "cli/help.h"
#include "config/config_tree.h"
#include "config/loader.h"
#include "explain/explain.h"
#include "explain/request.h"
#include "server/snapshot_builder.h"

namespace gatehouse::cli {

namespace {

using nlohmann::json;

int usageError(std::string_view command, const std::string& message) {
  std::fprintf(stderr, "gatehouse %.*s: %s\n", static_cast<int>(command.size()), command.data(),
               message.c_str());
  if (const CommandHelp* c = findCommand(command)) {
    std::fprintf(stderr, "usage: gatehouse %.*s\n", static_cast<int>(c->synopsis.size()),
                 c->synopsis.data());
  }
  return 2;
}

// Loads and compiles `path` as a reload would; prints every error and returns null on failure.
std::shared_ptr<const proxy::Snapshot> compile(const std::string& path) {
  auto lr = config::loadConfigFile(path);
  if (!lr.ok()) {
    for (const auto& e : lr.errors)
      std::fprintf(stderr, "%s\n", e.format().c_str());
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), lr.errors.size());
    return nullptr;
  }
  // Policies, regexes and endpoints are checked by building the snapshot.
  auto cfg = std::make_shared<const config::Config>(std::move(*lr.config));
  auto sr = server::buildSnapshot(cfg, nullptr, 1);
  if (!sr.snapshot) {
    for (const auto& e : sr.errors)
      std::fprintf(stderr, "%s\n", e.c_str());
    std::fprintf(stderr, "%s: %zu error(s)\n", path.c_str(), sr.errors.size());
    return nullptr;
  }
  return sr.snapshot;
}

// The running gateway's config tree and a line naming it, from /api/v1/config (the versioned
// admin API) or else /config. Both may carry the tree as "config" (an object) or the YAML text.
struct Running {
  json tree;
  std::string label;
};

// Scalars as the YAML text has them (our trees keep every scalar a string), so that a tree a
// server converted with types ("port": 8080) compares equal to the file's ("8080").
void scalarsAsStrings(json& j) {
  if (j.is_object() || j.is_array()) {
    for (auto& v : j)
      scalarsAsStrings(v);
  } else if (j.is_number() || j.is_boolean()) {
    j = j.dump();
  }
}

Result<json> treeFromReply(const FetchReply& r) {
  json j = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return config::configTree(r.body);  // a YAML body
  if (j.is_object() && j.contains("data") && j["data"].is_object()) j = j["data"];
  // The YAML text first: converted here, it is converted exactly as the file is.
  for (const char* key : {"yaml", "source_text", "text"}) {
    if (j.is_object() && j.contains(key) && j[key].is_string()) {
      return config::configTree(j[key].get<std::string>());
    }
  }
  if (j.is_object() && j.contains("config") && j["config"].is_object()) {
    json tree = j["config"];
    scalarsAsStrings(tree);
    config::redactTree(tree);
    return tree;
  }
  return Error::make(ErrorCode::kNotFound, ErrorSource::kUpstream, "no config in the reply");
}

std::string describe(const FetchReply& r) {
  json j = json::parse(r.body, nullptr, false);
  if (j.is_object() && j.contains("data") && j["data"].is_object()) j = j["data"];
  std::string out;
  if (j.is_object() && j.contains("generation")) out += "generation " + j["generation"].dump();
  if (j.is_object() && j.contains("source") && j["source"].is_string()) {
    out += (out.empty() ? "" : ", ") + j["source"].get<std::string>();
  }
  return out;
}

Result<Running> fetchRunning(const std::string& url, const std::string& token) {
  std::string last_error;
  for (const char* path : {"/api/v1/config", "/config"}) {
    auto r = fetch(url, path, token);
    if (!r.ok()) return r.error();  // the connection failed: the next path would too
    if (r->status == 401 || r->status == 403) {
      return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kUpstream,
                         std::string(path) + ": " + std::to_string(r->status) +
                             " (pass --token or set GATEHOUSE_ADMIN_TOKEN)");
    }
    if (r->status != 200) {
      last_error = std::string(path) + ": status " + std::to_string(r->status);
      continue;
    }
    auto tree = treeFromReply(*r);
    if (!tree.ok()) {
      last_error = std::string(path) + ": " + tree.error().message;
      continue;
    }
    Running out;
    out.tree = std::move(*tree);
    out.label = url + path;
    if (std::string d = describe(*r); !d.empty()) out.label += " (" + d + ")";
    return out;
  }
  return Error::make(ErrorCode::kNotFound, ErrorSource::kUpstream,
                     "the running gateway serves no config to compare with (" + last_error + ")");
}

}  // namespace

int runValidate(std::span<const std::string> args) {
  std::string path;
  std::string diff_with;
  std::string token;
  if (const char* t = std::getenv("GATEHOUSE_ADMIN_TOKEN")) token = t;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    const bool has_value = i + 1 < args.size();
    if ((a == "--diff-with" || a == "--token" || a == "-c" || a == "--config") && !has_value) {
      return usageError("validate", "'" + a + "' needs a value");
    }
    if (a == "--diff-with") {
      diff_with = args[++i];
    } else if (a == "--token") {
      token = args[++i];
    } else if (a == "-c" || a == "--config") {
      path = args[++i];
    } else if (path.empty() && !a.starts_with("-")) {
      path = a;
    } else {
      return usageError("validate", "unknown argument '" + a + "'");
    }
  }
  if (path.empty()) return usageError("validate", "no FILE");
  auto snap = compile(path);
  if (!snap) return 1;
  // Configured clusters: the implicit ones policies' URLs add are not the user's to count.
  std::printf("%s: ok (%zu routes, %zu clusters)\n", path.c_str(), snap->routes.size(),
              snap->config->clusters.size());
  if (diff_with.empty()) return 0;

  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  auto local = config::configTree(text.str());
  if (!local.ok()) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), local.error().message.c_str());
    return 1;
  }
  auto running = fetchRunning(diff_with, token);
  if (!running.ok()) {
    std::fprintf(stderr, "--diff-with %s: %s\n", diff_with.c_str(),
                 running.error().message.c_str());
    return 1;
  }
  const auto changes = config::diffTrees(running->tree, *local);
  std::printf("changes from %s to %s:\n", running->label.c_str(), path.c_str());
  if (changes.empty()) {
    std::printf("  none: the file is what the gateway runs\n");
  } else {
    std::fputs(config::formatChanges(changes).c_str(), stdout);
    std::printf("%zu change(s)\n", changes.size());
  }
  return 0;
}

int runExplain(std::span<const std::string> args) {
  std::string config_path;
  bool as_json = false;
  std::vector<std::string> flags;
  std::vector<std::string> curl;
  bool curl_mode = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (curl_mode) {
      curl.push_back(a);
    } else if (a == "--") {
      curl_mode = true;
    } else if (a == "-c" || a == "--config") {
      if (i + 1 >= args.size()) return usageError("explain", "'" + a + "' needs a value");
      config_path = args[++i];
    } else if (a == "--json") {
      as_json = true;
    } else {
      flags.push_back(a);
    }
  }
  if (config_path.empty()) return usageError("explain", "-c FILE is required");
  if (curl_mode && !flags.empty()) {
    return usageError("explain", "give the request as flags or after '--' as curl, not both");
  }
  auto req = curl_mode ? explain::fromCurl(curl) : explain::fromFlags(flags);
  if (!req.ok()) return usageError("explain", req.error().message);
  auto snap = compile(config_path);
  if (!snap) return 1;
  const json out = explain::explainRequest(*snap, *req);
  if (as_json) {
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    std::fputs(explain::renderText(out).c_str(), stdout);
  }
  return 0;
}

}  // namespace gatehouse::cli
