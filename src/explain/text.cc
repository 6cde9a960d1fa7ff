// renderText: the explanation for people. Reads only the JSON explainRequest() builds, so both
// outputs always say the same thing.
#include <string>

#include "explain/explain.h"

namespace gatehouse::explain {

namespace {

using nlohmann::json;

std::string s(const json& j, const char* key) {
  if (!j.is_object() || !j.contains(key)) return {};
  const json& v = j[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_null()) return {};
  return v.dump();
}

std::string padded(std::string text, size_t width) {
  if (text.size() < width) text.append(width - text.size(), ' ');
  return text;
}

void line(std::string& out, const char* label, const std::string& text) {
  out += padded(label, 14) + text + "\n";
}

void renderRoutes(std::string& out, const json& j) {
  if (!j.contains("routes") || j["routes"].empty()) return;
  out += "Routes, in written order:\n";
  size_t width = 0;
  for (const auto& r : j["routes"])
    width = std::max(width, s(r, "name").size());
  for (const auto& r : j["routes"]) {
    if (r.value("matched", false)) {
      std::string params;
      if (j.contains("route")) {
        for (const auto& [k, v] : j["route"]["params"].items())
          params += " " + k + "=" + v.get<std::string>();
      }
      out += "  MATCH " + padded(s(r, "name"), width) + "  " +
             (j.contains("route") ? s(j["route"], "yaml_path") : "") +
             (params.empty() ? "" : "  params:" + params) + "\n";
    } else {
      out += "  no    " + padded(s(r, "name"), width) + "  " + s(r, "miss") + ": " +
             s(r, "detail") + "\n";
    }
  }
}

void renderPolicies(std::string& out, const json& j) {
  if (!j.contains("policies")) return;
  if (j["policies"].empty()) {
    out += "Policies:     none\n";
    return;
  }
  out += "Policies, in the order they run:\n";
  size_t n = 0;
  for (const auto& p : j["policies"]) {
    std::string verdict = s(p, "decision");
    if (p.contains("status")) verdict += " " + s(p, "status");
    out += "  " + std::to_string(++n) + ". " + padded(s(p, "name"), 20) + " " +
           padded(verdict, 13) + " " + s(p, "detail") + "  [" + s(p, "from") + "]\n";
  }
}

void renderUpstream(std::string& out, const json& j) {
  if (!j.contains("upstream")) return;
  const json& u = j["upstream"];
  out += "Upstream:\n";
  out += "  choice: " + s(u, "choice") + "\n";
  if (u.contains("split")) {
    for (const auto& w : u["split"]["weighted"]) {
      char pct[32];
      std::snprintf(pct, sizeof pct, "%.1f%%", w.value("percent", 0.0));
      out += "  weighted: " + s(w, "cluster") + " weight " + s(w, "weight") + " (" + pct + ")\n";
    }
    for (const auto& c : u["split"]["canary"]) {
      const bool by_header = c.contains("header");
      out += "  canary: " + std::string(by_header ? "header " : "cookie ") +
             s(c, by_header ? "header" : "cookie") +
             (c.contains("value") ? " = '" + s(c, "value") + "'" : " present") + " -> " +
             s(c, "cluster") + "\n";
    }
  }
  for (const auto& c : u["clusters"]) {
    out += "  cluster '" + s(c, "name") + "' (" + s(c, "lb") + ", " + s(c, "protocol") +
           (c.value("tls", false) ? ", tls" : "") + ")\n";
    for (const auto& h : c["hosts"]) {
      out += "    " + padded(s(h, "name"), 24) + " weight " + s(h, "weight") + ", priority " +
             s(h, "priority") + ", " + s(h, "state") + "\n";
    }
    out += "    pick: " + (c["pick"].is_null() ? std::string("none") : s(c, "pick"));
    if (c.contains("pick_note")) out += " (" + s(c, "pick_note") + ")";
    out += "\n";
  }
}

void renderTimeouts(std::string& out, const json& j) {
  if (!j.contains("timeouts")) return;
  const json& t = j["timeouts"];
  line(out, "Timeouts:",
       "connect " + s(t, "upstream_connect") + ", response " + s(t, "upstream_response") +
           ", upstream idle " + s(t, "upstream_idle") + ", request total " + s(t, "request_total") +
           ", client header " + s(t, "client_header"));
  const json& r = t["retry"];
  std::string on;
  for (const auto& o : r["on"])
    on += (on.empty() ? "" : ", ") + o.get<std::string>();
  line(out, "Retries:",
       s(r, "attempts") + " attempts in all, on " + (on.empty() ? "nothing" : on) +
           "; per try: " + s(r, "per_try_timeout") + "; backoff " + s(r, "backoff") + "; budget " +
           s(r, "budget_percent") + "%");
}

}  // namespace

std::string renderText(const json& j) {
  std::string out;
  const json& req = j.contains("request") ? j["request"] : json::object();
  std::string target = s(req, "path");
  if (!s(req, "query").empty()) target += "?" + s(req, "query");
  if (target.empty()) target = s(req, "url");
  line(out, "Request:",
       s(req, "method") + " " + target + "  Host: " + s(req, "host") + "  client " +
           s(req, "client_ip"));
  if (j.contains("config")) {
    line(out, "Config:",
         s(j["config"], "source") + " (generation " + s(j["config"], "generation") + ")" +
             (j.value("live_health", false) ? ", live host health"
                                            : ", offline: every host counts as available"));
  }
  if (j.contains("listener")) {
    const json& l = j["listener"];
    line(out, "Listener:",
         "'" + s(l, "name") + "' " + s(l, "address") + (l.value("tls", false) ? " (tls)" : "") +
             ": " + s(l, "chosen"));
  }
  if (j.contains("virtual_hosts")) {
    for (const auto& v : j["virtual_hosts"]) {
      if (v.value("selected", false)) {
        line(out, "Virtual host:", "'" + s(v, "name") + "' by " + s(v, "detail"));
      }
    }
    for (const auto& v : j["virtual_hosts"]) {
      if (!v.value("selected", false)) {
        out += "  not '" + s(v, "name") + "': " + s(v, "detail") + "\n";
      }
    }
  }
  renderRoutes(out, j);
  renderPolicies(out, j);
  renderUpstream(out, j);
  renderTimeouts(out, j);
  if (j.contains("outcome")) {
    const json& o = j["outcome"];
    const int status = o.value("status", 0);
    line(out,
         "Outcome:", (status ? std::to_string(status) + ": " : std::string()) + s(o, "summary"));
  }
  return out;
}

}  // namespace gatehouse::explain
