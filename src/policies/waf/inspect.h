#pragma once
// One request through ModSecurity: the `waf` policy's adapter between the gateway's request
// model and a ModSecurity Transaction. It feeds the connection, URI and headers (phase 1), the
// body that was read (phase 2: urlencoded forms, multipart and JSON are parsed by ModSecurity's
// body processors), and optionally the response head and body (phases 3 and 4), and reports
// after each phase whether the rules want the exchange stopped. Used on one worker thread; each
// worker has its own ModSecurity instance (its persistent collections are not safely shared),
// all of them run the shared, read-only RuleSet. CPU only: nothing here waits.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "http/headers.h"
#include "policies/waf/rules.h"

namespace modsecurity {
class Transaction;
}

namespace gatehouse::policies::waf {

// Rules a route switches off for its requests, on top of the shared RuleSet.
struct Exclusions {
  std::vector<std::pair<int, int>> id_ranges;  // inclusive; a single id is [id, id]
  std::vector<std::string> tags;
  bool empty() const { return id_ranges.empty() && tags.empty(); }
};

struct RequestHead {
  std::string_view method;
  std::string_view path;
  std::string_view query;         // without '?'
  std::string_view http_version;  // "1.1", "2.0"
  std::string_view authority;
  std::string_view client_ip;
  std::span<const http::HeaderField> headers;
  // The body's framing, whose headers the gateway removed before policies run: the rules
  // expect them (CRS 920180 flags a POST with neither).
  bool content_length_present = false;
  uint64_t content_length = 0;
  bool chunked = false;
};

// What the rules decided after a phase.
struct Decision {
  bool interrupt = false;  // stop here: answer `status`
  int status = 0;
};

// A rule that matched, for the log.
struct Match {
  int id = 0;
  std::string message;
  std::string data;
  int severity = 0;
  bool disruptive = false;  // the rule that blocked (never set in detection-only mode)
};

class Inspection {
 public:
  Inspection(const RuleSet& rules, const Exclusions& exclusions, std::string_view request_id);
  ~Inspection();
  Inspection(const Inspection&) = delete;
  Inspection& operator=(const Inspection&) = delete;

  Decision requestHead(const RequestHead& head);
  // The whole request body as read (empty when there is none, or when it is not inspected).
  Decision requestBody(std::string_view body);
  Decision responseHead(int status, std::string_view http_version,
                        std::span<const http::HeaderField> headers);
  Decision responseBody(std::string_view body);

  std::vector<Match> matches() const;
  // CRS's inbound anomaly score so far (0 without the CRS).
  int inboundScore() const;

 private:
  Decision decision();
  std::unique_ptr<modsecurity::Transaction> tx_;
  std::string id_;
};

}  // namespace gatehouse::policies::waf
