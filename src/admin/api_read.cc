// The read endpoints of /api/v1 (docs/admin-api.md): routes, clusters with host health,
// consumers (names and credential kinds, never secrets), policies, listeners, certificates.
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "admin/api_v1.h"
#include "http/filter.h"
#include "lb/host_health.h"

namespace gatehouse::admin {

namespace {

Json located(const std::string& file, int line, const std::string& yaml_path) {
  Json j;
  j["file"] = file;
  j["line"] = line;
  j["yaml_path"] = yaml_path;
  return j;
}

Json policyList(const std::vector<config::PolicySpec>& specs) {
  Json out = Json::array();
  for (const auto& p : specs) {
    Json j = located(p.file, p.line, p.yaml_path);
    j["name"] = p.name;
    out.push_back(std::move(j));
  }
  return out;
}

Json matchJson(const config::RouteMatch& m) {
  Json j = Json::object();
  if (m.path_exact) j["path_exact"] = *m.path_exact;
  if (m.path_prefix) j["path_prefix"] = *m.path_prefix;
  if (m.path_regex) j["path_regex"] = *m.path_regex;
  if (m.path_template) j["path_template"] = *m.path_template;
  if (!m.methods.empty()) j["methods"] = m.methods;
  if (!m.headers.empty()) {
    Json hs = Json::array();
    for (const auto& h : m.headers)
      hs.push_back(h.name);
    j["headers"] = std::move(hs);
  }
  if (!m.query.empty()) {
    Json qs = Json::array();
    for (const auto& q : m.query)
      qs.push_back(q.name);
    j["query"] = std::move(qs);
  }
  return j;
}

Json routeJson(const config::Route& r, const std::string& vhost, const std::string& file) {
  Json j;
  j["name"] = r.name;
  j["virtual_host"] = vhost;
  j["match"] = matchJson(r.match);
  if (r.cluster) j["cluster"] = *r.cluster;
  if (!r.clusters.empty()) {
    Json split = Json::array();
    for (const auto& w : r.clusters)
      split.push_back({{"name", w.name}, {"weight", w.weight}});
    j["clusters"] = std::move(split);
  }
  if (r.direct_response) j["direct_response"] = r.direct_response->status;
  if (r.redirect) j["redirect"] = r.redirect->status;
  if (r.mirror) j["mirror"] = r.mirror->cluster;
  if (r.timeout) j["timeout_ms"] = r.timeout->count();
  j["policies"] = policyList(r.policies);
  j["source"] = located(file, r.line, r.yaml_path);
  return j;
}

ApiReply noConfig() {
  return apiError(503, "no config loaded yet");
}

std::string isoTime(int64_t unix_seconds) {
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};

std::string nameText(X509_NAME* name) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (!bio) return {};
  X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  std::string out(data, static_cast<size_t>(n));
  BIO_free(bio);
  return out;
}

int64_t asn1ToUnix(const ASN1_TIME* t) {
  std::tm tm{};
  if (!t || ASN1_TIME_to_tm(t, &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

// The leaf certificate of a PEM file: subject, issuer, SANs and validity.
Json certificateJson(const std::string& file) {
  Json j;
  j["file"] = file;
  FILE* f = std::fopen(file.c_str(), "r");
  if (!f) {
    j["error"] = "cannot read the file";
    return j;
  }
  std::unique_ptr<X509, X509Deleter> cert(PEM_read_X509(f, nullptr, nullptr, nullptr));
  std::fclose(f);
  if (!cert) {
    j["error"] = "no PEM certificate in the file";
    return j;
  }
  j["subject"] = nameText(X509_get_subject_name(cert.get()));
  j["issuer"] = nameText(X509_get_issuer_name(cert.get()));
  Json sans = Json::array();
  auto* names = static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
    if (gn->type == GEN_DNS || gn->type == GEN_URI || gn->type == GEN_EMAIL) {
      const char* prefix = gn->type == GEN_DNS ? "DNS:" : gn->type == GEN_URI ? "URI:" : "email:";
      const ASN1_STRING* s = gn->d.ia5;
      sans.push_back(prefix + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                          static_cast<size_t>(ASN1_STRING_length(s))));
    } else if (gn->type == GEN_IPADD && gn->d.ip->length == 4) {
      const unsigned char* b = gn->d.ip->data;
      sans.push_back("IP:" + std::to_string(b[0]) + "." + std::to_string(b[1]) + "." +
                     std::to_string(b[2]) + "." + std::to_string(b[3]));
    }
  }
  if (names) GENERAL_NAMES_free(names);
  j["sans"] = std::move(sans);
  const int64_t not_before = asn1ToUnix(X509_get0_notBefore(cert.get()));
  const int64_t not_after = asn1ToUnix(X509_get0_notAfter(cert.get()));
  j["not_before"] = isoTime(not_before);
  j["not_after"] = isoTime(not_after);
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  j["expires_in_days"] = (not_after - now) / 86400;
  j["expired"] = not_after <= now;
  return j;
}

}  // namespace

ApiReply apiRoutesList(ApiCall& call) {
  if (!call.state.snapshot) return noConfig();
  const auto& cfg = *call.state.snapshot->config;
  ApiReply r;
  r.body["generation"] = call.generation_before;
  r.body["routes"] = Json::array();
  for (const auto& vh : cfg.virtual_hosts) {
    for (const auto& route : vh.routes)
      r.body["routes"].push_back(routeJson(route, vh.name, cfg.source_file));
  }
  return r;
}

ApiReply apiClusters(ApiCall& call) {
  if (!call.state.snapshot) return noConfig();
  const auto& snap = *call.state.snapshot;
  const int64_t now = lb::steadyNowNs();
  ApiReply r;
  r.body["clusters"] = Json::array();
  for (const auto& cc : snap.clusters) {
    Json c;
    c["name"] = cc.name;
    const config::Cluster* spec = nullptr;
    for (const auto& s : snap.config->clusters) {
      if (s.name == cc.name) spec = &s;
    }
    c["configured"] = spec != nullptr;
    if (spec) {
      c["lb"] = spec->lb;
      c["source"] = located(snap.config->source_file, spec->line, spec->yaml_path);
    }
    c["health_check"] = cc.health_check.has_value();
    Json hosts = Json::array();
    for (const auto& h : cc.hosts.hosts) {
      Json hj;
      hj["host"] = h.name;
      hj["hostname"] = h.hostname;
      hj["weight"] = h.weight;
      hj["priority"] = h.priority;
      if (const lb::HostHealth* hh = h.health.get()) {
        const int64_t until = hh->ejected_until_ns.load(std::memory_order_relaxed);
        hj["healthy"] = hh->check_healthy.load(std::memory_order_relaxed);
        hj["ejected"] = until > now;
        if (until > now) hj["ejected_for_ms"] = (until - now) / 1000000;
        hj["ejections_total"] = hh->ejections_total.load(std::memory_order_relaxed);
        hj["drained"] = hh->admin_drained.load(std::memory_order_relaxed);
        hj["available"] = hh->available(now);
        const auto sum = hh->sumCounters();
        hj["in_flight"] = sum.active;
        hj["requests"] = sum.requests;
        hj["failures"] = sum.failures;
      } else {
        hj["available"] = true;
      }
      hosts.push_back(std::move(hj));
    }
    c["hosts"] = std::move(hosts);
    r.body["clusters"].push_back(std::move(c));
  }
  return r;
}

ApiReply apiConsumers(ApiCall& call) {
  if (!call.state.snapshot) return noConfig();
  const auto& cfg = *call.state.snapshot->config;
  ApiReply r;
  r.body["consumers"] = Json::array();
  for (const auto& c : cfg.consumers) {
    Json j;
    j["name"] = c.name;
    j["groups"] = c.groups;
    Json meta = Json::object();
    for (const auto& [k, v] : c.metadata)
      meta[k] = v;
    j["metadata"] = std::move(meta);
    // What kinds of credentials exist, never the credentials (or their hashes).
    Json creds;
    creds["api_keys"] = c.api_keys.size();
    Json users = Json::array();
    for (const auto& b : c.basic)
      users.push_back(b.username);
    creds["basic_users"] = std::move(users);
    Json key_ids = Json::array();
    for (const auto& h : c.hmac)
      key_ids.push_back(h.key_id);
    creds["hmac_key_ids"] = std::move(key_ids);
    creds["certificates"] = c.certificates.size();
    j["credentials"] = std::move(creds);
    j["source"] = located(cfg.source_file, c.line, c.yaml_path);
    r.body["consumers"].push_back(std::move(j));
  }
  return r;
}

ApiReply apiPolicies(ApiCall& call) {
  ApiReply r;
  Json available = Json::array();
  for (const auto& p : http::policyRegistry())
    available.push_back(p.name);
  r.body["available"] = std::move(available);
  r.body["in_use"] = Json::array();
  if (!call.state.snapshot) return r;
  for (const auto& vh : call.state.snapshot->config->virtual_hosts) {
    for (auto& p : policyList(vh.policies)) {
      p["scope"] = "virtual_host";
      p["virtual_host"] = vh.name;
      r.body["in_use"].push_back(std::move(p));
    }
    for (const auto& route : vh.routes) {
      for (auto& p : policyList(route.policies)) {
        p["scope"] = "route";
        p["virtual_host"] = vh.name;
        p["route"] = route.name;
        r.body["in_use"].push_back(std::move(p));
      }
    }
  }
  return r;
}

ApiReply apiListeners(ApiCall& call) {
  if (!call.state.snapshot) return noConfig();
  const auto& cfg = *call.state.snapshot->config;
  ApiReply r;
  r.body["listeners"] = Json::array();
  for (const auto& l : cfg.listeners) {
    Json j;
    j["name"] = l.name;
    j["address"] = l.address;
    j["port"] = l.port;
    j["mode"] = l.mode == config::ListenerMode::kUdp   ? "udp"
                : l.mode == config::ListenerMode::kTcp ? "tcp"
                                                       : "http";
    j["tls"] = l.tls.has_value();
    if (l.tls) j["client_auth"] = l.tls->client_auth;
    j["virtual_hosts"] = l.virtual_hosts;
    j["proxy_protocol"] = l.proxy_protocol.has_value();
    r.body["listeners"].push_back(std::move(j));
  }
  Json admin;
  admin["address"] = cfg.admin.address;
  admin["port"] = cfg.admin.port;
  admin["tls"] = call.state.admin_options && call.state.admin_options->tls.has_value();
  r.body["admin"] = std::move(admin);
  return r;
}

ApiReply apiCertificates(ApiCall& call) {
  if (!call.state.snapshot) return noConfig();
  const auto& cfg = *call.state.snapshot->config;
  ApiReply r;
  r.body["certificates"] = Json::array();
  auto add = [&](const config::ListenerTls& tls, const std::string& where) {
    for (const auto& c : tls.certificates) {
      Json j = certificateJson(c.cert_file);
      j["listener"] = where;
      r.body["certificates"].push_back(std::move(j));
    }
  };
  for (const auto& l : cfg.listeners) {
    if (l.tls) add(*l.tls, l.name);
  }
  if (call.state.admin_options && call.state.admin_options->tls) {
    add(*call.state.admin_options->tls, "admin");
  }
  return r;
}

}  // namespace gatehouse::admin
