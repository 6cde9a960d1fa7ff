#include "policies/waf/inspect.h"

#include <modsecurity/intervention.h>
#include <modsecurity/modsecurity.h>
#include <modsecurity/rule_message.h>
#include <modsecurity/rules_set.h>
#include <modsecurity/transaction.h>

#include <charconv>
#include <mutex>

namespace gatehouse::policies::waf {
namespace {

// The worker's ModSecurity instance: it holds the persistent collections (CRS's `ip` and
// `global`), whose in-memory store does not lock reads against writes, so no two threads share
// one. Made under a lock and never destroyed: ModSecurity's constructor and destructor call
// process-wide library setup and teardown (curl_global_init, xmlCleanupParser) that must not
// run while another thread uses those libraries. Matches are read from the Transaction, so the
// log callback discards the text it is given.
modsecurity::ModSecurity& threadModSecurity() {
  thread_local modsecurity::ModSecurity* mine = nullptr;
  if (mine) return *mine;
  static std::mutex mu;
  static auto* instances = new std::vector<std::unique_ptr<modsecurity::ModSecurity>>();
  std::lock_guard lock(mu);
  auto m = std::make_unique<modsecurity::ModSecurity>();
  m->setServerLogCb([](void*, const void*) {}, modsecurity::RuleMessageLogProperty);
  mine = m.get();
  instances->push_back(std::move(m));
  return *mine;
}

std::string str(std::string_view v) {
  return std::string(v);
}

}  // namespace

Inspection::Inspection(const RuleSet& rules, const Exclusions& exclusions,
                       std::string_view request_id)
    : id_(request_id) {
  if (id_.empty()) id_ = "-";
  tx_ = std::make_unique<modsecurity::Transaction>(&threadModSecurity(), rules.raw(), id_.data(),
                                                   nullptr);
  for (const auto& [lo, hi] : exclusions.id_ranges) {
    if (lo == hi) {
      tx_->m_ruleRemoveById.push_back(lo);
    } else {
      tx_->m_ruleRemoveByIdRange.emplace_back(lo, hi);
    }
  }
  for (const auto& t : exclusions.tags)
    tx_->m_ruleRemoveByTag.push_back(t);
}

Inspection::~Inspection() = default;

Decision Inspection::decision() {
  modsecurity::ModSecurityIntervention it;
  modsecurity::intervention::clean(&it);
  Decision d;
  if (tx_->intervention(&it)) {
    d.interrupt = it.disruptive != 0;
    d.status = it.status >= 400 && it.status < 600 ? it.status : 403;
  }
  modsecurity::intervention::free(&it);
  return d;
}

Decision Inspection::requestHead(const RequestHead& head) {
  std::string client = head.client_ip.empty() ? std::string("0.0.0.0") : str(head.client_ip);
  tx_->processConnection(client.c_str(), 0, "127.0.0.1", 0);
  std::string uri = str(head.path);
  if (!head.query.empty()) uri.append("?").append(head.query);
  const std::string method = str(head.method);
  const std::string version = str(head.http_version);
  tx_->processURI(uri.c_str(), method.c_str(), version.c_str());
  bool has_host = false;
  bool has_length = false;
  bool has_te = false;
  for (const auto& f : head.headers) {
    has_host |= http::iequals(f.name, "host");
    has_length |= http::iequals(f.name, "content-length");
    has_te |= http::iequals(f.name, "transfer-encoding");
    tx_->addRequestHeader(reinterpret_cast<const unsigned char*>(f.name.data()), f.name.size(),
                          reinterpret_cast<const unsigned char*>(f.value.data()), f.value.size());
  }
  if (!has_host && !head.authority.empty()) {
    tx_->addRequestHeader("Host", str(head.authority));
  }
  if (head.content_length_present && !has_length) {
    tx_->addRequestHeader("Content-Length", std::to_string(head.content_length));
  }
  if (head.chunked && !has_te && !has_length) tx_->addRequestHeader("Transfer-Encoding", "chunked");
  tx_->processRequestHeaders();
  return decision();
}

Decision Inspection::requestBody(std::string_view body) {
  if (!body.empty()) {
    tx_->appendRequestBody(reinterpret_cast<const unsigned char*>(body.data()), body.size());
  }
  tx_->processRequestBody();
  return decision();
}

Decision Inspection::responseHead(int status, std::string_view http_version,
                                  std::span<const http::HeaderField> headers) {
  for (const auto& f : headers) {
    tx_->addResponseHeader(reinterpret_cast<const unsigned char*>(f.name.data()), f.name.size(),
                           reinterpret_cast<const unsigned char*>(f.value.data()), f.value.size());
  }
  tx_->processResponseHeaders(status, "HTTP " + str(http_version));
  return decision();
}

Decision Inspection::responseBody(std::string_view body) {
  if (!body.empty()) {
    tx_->appendResponseBody(reinterpret_cast<const unsigned char*>(body.data()), body.size());
  }
  tx_->processResponseBody();
  return decision();
}

std::vector<Match> Inspection::matches() const {
  std::vector<Match> out;
  for (const auto& m : tx_->m_rulesMessages) {
    out.push_back({m.m_ruleId, m.m_message, m.m_data, m.m_severity, m.m_isDisruptive});
  }
  return out;
}

int Inspection::inboundScore() const {
  auto* tx = tx_->m_collections.m_tx_collection;
  if (!tx) return 0;
  for (const char* name : {"anomaly_score", "inbound_anomaly_score"}) {
    auto v = tx->resolveFirst(name);
    int n = 0;
    if (v && std::from_chars(v->data(), v->data() + v->size(), n).ec == std::errc() && n > 0) {
      return n;
    }
  }
  return 0;
}

}  // namespace gatehouse::policies::waf
