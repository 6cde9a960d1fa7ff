#include "explain/explain.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <string_view>

#include "explain/policy_notes.h"
#include "explain/upstream_notes.h"
#include "http/message.h"
#include "http/request_target.h"
#include "proxy/rewrite.h"
#include "proxy/router.h"

namespace gatehouse::explain {

namespace {

using nlohmann::json;

struct ListenerPick {
  int index = -1;
  std::string how;
  std::string error;
};

uint16_t portOf(std::string_view authority, std::string_view scheme) {
  const size_t close = authority.rfind(']');
  const size_t colon = authority.rfind(':');
  if (colon != std::string_view::npos && (close == std::string_view::npos || colon > close)) {
    return static_cast<uint16_t>(std::atoi(std::string(authority.substr(colon + 1)).c_str()));
  }
  return scheme == "https" ? 443 : 80;
}

ListenerPick pickListener(const config::Config& cfg, const ExplainRequest& req,
                          const http::Target& target) {
  ListenerPick p;
  const auto& ls = cfg.listeners;
  if (!req.listener.empty()) {
    for (size_t i = 0; i < ls.size(); ++i) {
      if (ls[i].name == req.listener) {
        p.index = static_cast<int>(i);
        p.how = "named";
      }
    }
    if (p.index < 0 && req.listener.find_first_not_of("0123456789") == std::string::npos) {
      const size_t i = std::strtoul(req.listener.c_str(), nullptr, 10);
      if (i < ls.size()) {
        p.index = static_cast<int>(i);
        p.how = "by index";
      }
    }
    if (p.index < 0) p.error = "no listener named '" + req.listener + "'";
    return p;
  }
  if (target.form == http::TargetForm::kAbsolute) {
    const uint16_t port = portOf(target.authority, target.scheme);
    for (size_t i = 0; i < ls.size(); ++i) {
      if (ls[i].port == port && ls[i].mode == config::ListenerMode::kHttp) {
        p.index = static_cast<int>(i);
        p.how = "the HTTP listener on the URL's port " + std::to_string(port);
        return p;
      }
    }
  }
  for (size_t i = 0; i < ls.size(); ++i) {
    if (ls[i].mode == config::ListenerMode::kHttp) {
      p.index = static_cast<int>(i);
      p.how = "the first HTTP listener (no --listener, no URL port that a listener has)";
      return p;
    }
  }
  p.error = "the config has no HTTP listener";
  return p;
}

json listenerJson(const config::Listener& l, size_t index, const std::string& how) {
  json j;
  j["index"] = index;
  j["name"] = l.name;
  j["address"] = l.address + ":" + std::to_string(l.port);
  j["tls"] = l.tls.has_value();
  j["chosen"] = how;
  return j;
}

// Where route `route_id` is written: its vhost's config and its index there.
const config::Route* routeConfig(const config::Config& cfg, size_t vhost, size_t route_id) {
  size_t first = 0;
  for (size_t i = 0; i < vhost; ++i)
    first += cfg.virtual_hosts[i].routes.size();
  const auto& routes = cfg.virtual_hosts[vhost].routes;
  if (route_id < first || route_id - first >= routes.size()) return nullptr;
  return &routes[route_id - first];
}

struct ChainResult {
  json steps = json::array();
  int responds = 0;       // status of the first step that answers, 0 if none
  std::string responder;  // its name
  bool depends = false;   // a step before the upstream decides at run time
};

void addStep(ChainResult& out, const std::string& name, const std::string& from,
             const PolicyNote& note) {
  json s;
  s["name"] = name;
  s["from"] = from;
  if (out.responds != 0) {
    s["decision"] = "not reached";
    s["detail"] = "the request was already answered by " + out.responder;
    out.steps.push_back(std::move(s));
    return;
  }
  s["decision"] = decisionName(note.decision);
  if (note.status != 0) s["status"] = note.status;
  s["detail"] = note.detail;
  if (note.decision == Decision::kRespond) {
    out.responds = note.status;
    out.responder = name;
  }
  if (note.decision == Decision::kDepends) out.depends = true;
  out.steps.push_back(std::move(s));
}

ChainResult policyChain(const proxy::Snapshot& snap, const config::VirtualHost& vh,
                        const config::Route& r, const proxy::CompiledRoute& cr, size_t route_id,
                        ChainState& state, std::string_view path) {
  ChainResult out;
  size_t k = 0;  // index into cr.filters: virtual-host policies, then route policies
  auto run = [&](const std::vector<config::PolicySpec>& specs, const std::string& from) {
    for (const auto& spec : specs) {
      const http::FilterFactory* f = k < cr.filters.size() ? cr.filters[k].get() : nullptr;
      ++k;
      const YAML::Node cfg = spec.config && *spec.config ? *spec.config : YAML::Node();
      addStep(out, spec.name, from, notePolicy(spec.name, cfg, f, state));
    }
  };
  run(vh.policies, "virtual host '" + vh.name + "'");
  run(r.policies, "route");
  if (r.rewrite.strip_prefix || r.rewrite.regex || r.rewrite.host) {
    std::string detail = "path sent upstream: " +
                         proxy::rewritePath(r.rewrite, snap.router->rewriteRegex(route_id), path);
    if (r.rewrite.host) detail += ", Host: " + *r.rewrite.host;
    addStep(out, "rewrite", "route action", {Decision::kContinue, 0, detail});
  }
  if (r.direct_response) {
    addStep(out, "direct_response", "route action",
            {Decision::kRespond, r.direct_response->status,
             "answers " + std::to_string(r.direct_response->status) + " (" +
                 r.direct_response->content_type + ", " +
                 std::to_string(r.direct_response->body.size()) + " bytes)"});
  }
  if (r.redirect) {
    std::string to = r.redirect->location.value_or("");
    if (to.empty()) {
      to = r.redirect->scheme.value_or("(same scheme)") + "://" +
           r.redirect->host.value_or("(same host)") + r.redirect->path.value_or(std::string(path));
    }
    addStep(out, "redirect", "route action",
            {Decision::kRespond, r.redirect->status,
             "redirects " + std::to_string(r.redirect->status) + " to " + to});
  }
  if (r.mirror) {
    addStep(out, "mirror", "route",
            {Decision::kContinue, 0,
             "copies " + std::to_string(static_cast<int>(r.mirror->percent)) +
                 "% of requests to cluster '" + r.mirror->cluster + "' (fire and forget)"});
  }
  return out;
}

json requestJson(const ExplainRequest& req, std::string_view host, const http::Target& t) {
  json j;
  j["method"] = req.method;
  j["host"] = host;
  j["path"] = t.path;
  j["query"] = t.query;
  j["client_ip"] = req.client_ip;
  json h = json::array();
  for (const auto& [k, v] : req.headers)
    h.push_back(json::array({k, v}));
  j["headers"] = std::move(h);
  return j;
}

json outcome(int status, std::string summary) {
  json o;
  o["status"] = status;  // 0: forwarded upstream
  o["summary"] = std::move(summary);
  return o;
}

}  // namespace

json explainRequest(const proxy::Snapshot& snap, const ExplainRequest& req,
                    const ExplainOptions& options) {
  const config::Config& cfg = *snap.config;
  json j;
  j["config"] = {{"source", cfg.source_file}, {"generation", snap.generation}};
  j["live_health"] = options.live_health;
  http::Target target;
  http::TargetError terr;
  if (!http::parseTarget(req.url, req.method, cfg.path_normalization, target, terr)) {
    j["request"] = {{"method", req.method}, {"url", req.url}};
    j["outcome"] =
        outcome(terr.status, "the gateway refuses the request target: " + std::string(terr.reason));
    return j;
  }
  http::HeaderMap headers;
  for (const auto& [k, v] : req.headers)
    headers.add(k, v);
  std::string host = req.host;
  if (host.empty()) host = std::string(target.authority);
  if (host.empty()) host = std::string(headers.get("host"));
  if (!headers.has("host") && !host.empty()) headers.add("host", host);
  j["request"] = requestJson(req, host, target);

  const ListenerPick lp = pickListener(cfg, req, target);
  if (lp.index < 0) {
    j["outcome"] = outcome(0, lp.error);
    j["error"] = lp.error;
    return j;
  }
  const size_t li = static_cast<size_t>(lp.index);
  const config::Listener& listener = cfg.listeners[li];
  j["listener"] = listenerJson(listener, li, lp.how);
  if (listener.mode != config::ListenerMode::kHttp) {
    j["error"] = "listener '" + listener.name + "' is not an HTTP listener";
    j["outcome"] = outcome(0, j["error"].get<std::string>());
    return j;
  }
  if (listener.https_redirect) {
    j["outcome"] = outcome(listener.https_redirect->status,
                           "the listener redirects every request to HTTPS (port " +
                               std::to_string(listener.https_redirect->port) + ")");
    return j;
  }

  const proxy::RouteRequest rr{host, req.method, target.path, target.query, &headers};
  const proxy::RouteTrace trace = snap.router->explain(li, rr);
  j["host_lookup"] = trace.host;
  json vhosts = json::array();
  for (const auto& v : trace.vhosts) {
    vhosts.push_back({{"name", v.name}, {"selected", v.selected}, {"detail", v.detail}});
  }
  j["virtual_hosts"] = std::move(vhosts);
  json routes = json::array();
  for (const auto& v : trace.routes) {
    json r = {{"name", v.route_name}, {"matched", v.miss == proxy::RouteMiss::kNone}};
    if (v.miss != proxy::RouteMiss::kNone) {
      r["miss"] = proxy::routeMissName(v.miss);
      r["detail"] = v.detail;
    }
    routes.push_back(std::move(r));
  }
  j["routes"] = std::move(routes);
  if (!trace.vhost_index) {
    j["outcome"] = outcome(404, "no virtual host of this listener takes Host '" + host + "'");
    return j;
  }
  const config::VirtualHost& vh = cfg.virtual_hosts[*trace.vhost_index];
  j["virtual_host"] = vh.name;
  if (!trace.match) {
    j["outcome"] = outcome(404, "no route of virtual host '" + vh.name + "' matches");
    return j;
  }
  const size_t route_id = trace.match->route_id;
  const config::Route* r = routeConfig(cfg, *trace.vhost_index, route_id);
  if (r == nullptr || route_id >= snap.routes.size()) {
    j["outcome"] = outcome(500, "internal: route " + std::to_string(route_id) + " not found");
    return j;
  }
  json route = {{"name", trace.match->route_name}, {"line", r->line}, {"yaml_path", r->yaml_path}};
  json params = json::object();
  for (const auto& p : trace.match->params())
    params[std::string(p.name)] = p.value;
  route["params"] = std::move(params);
  j["route"] = std::move(route);

  const proxy::CompiledRoute& cr = snap.routes[route_id];
  ChainState state;
  state.headers = &headers;
  state.method = req.method;
  state.query = target.query;
  state.client_ip = req.client_ip;
  state.consumers = snap.consumers.get();
  ChainResult chain = policyChain(snap, vh, *r, cr, route_id, state, target.path);
  j["policies"] = std::move(chain.steps);
  if (chain.responds != 0) {
    j["outcome"] = outcome(chain.responds, std::to_string(chain.responds) + " from " +
                                               chain.responder + "; nothing is sent upstream");
    return j;
  }

  http::Request request;
  request.method = req.method;
  request.path = target.path;
  request.query = std::string(target.query);
  request.authority = host;
  for (const auto& [k, v] : req.headers)
    request.headers.add(k, v);
  UpstreamNotes up = noteUpstream(snap, cr, request, req.client_ip, options.live_health);
  j["upstream"] = std::move(up.json);
  j["timeouts"] = noteTimeouts(snap, *up.chosen, cr);
  std::string summary = up.summary;
  if (chain.depends) summary += " (if the policies marked 'depends' let it through)";
  j["outcome"] = outcome(0, summary);
  return j;
}

}  // namespace gatehouse::explain
