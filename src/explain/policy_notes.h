#pragma once
// What one policy of a route's chain would decide for an explained request, judged from its
// config and the request alone: nothing runs, nothing is counted, no token is taken from a
// limiter and no service is called. Internal to explain/; called by explainRequest().
#include <string>
#include <string_view>

#include "http/filter.h"
#include "http/headers.h"

namespace YAML {
class Node;
}
namespace gatehouse::policies {
class ConsumerRegistry;
}

namespace gatehouse::explain {

// What the chain knows about the request so far, updated by each note.
struct ChainState {
  const http::HeaderMap* headers = nullptr;
  std::string_view method;
  std::string_view query;
  std::string_view client_ip;
  const policies::ConsumerRegistry* consumers = nullptr;  // may be null
  std::string consumer;              // set by an auth note that could name the consumer
  bool maybe_authenticated = false;  // a credential is present whose check happens at run time
};

enum class Decision {
  kContinue,  // passes the request on (perhaps changing it)
  kRespond,   // answers the request itself with `status`
  kDepends,   // decided at run time: a secret to verify, a counter, a script, a response
};
std::string_view decisionName(Decision d);  // "continue", "respond", "depends"

struct PolicyNote {
  Decision decision = Decision::kContinue;
  int status = 0;      // kRespond (and kDepends when the failure status is known)
  std::string detail;  // one line, for people
};

// `config` is the policy's YAML as written (validated when the snapshot was built); `factory`
// is its compiled half from the snapshot, or null.
PolicyNote notePolicy(std::string_view name, const YAML::Node& config,
                      const http::FilterFactory* factory, ChainState& state);

}  // namespace gatehouse::explain
