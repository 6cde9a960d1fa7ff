#pragma once
// `gatehouse explain`: what a config snapshot would do with one request, told without sending
// it. Which listener, virtual host and route take it and why each earlier route did not; the
// policies that would run, in order, with what each would decide where that is knowable from
// config and request alone; the cluster (and how a split or canary chooses), the host a
// balancer would pick now, and the timeouts and retries in force.
//
// Used by the CLI (main.cc, on a snapshot built from a file: every host counts as healthy) and
// the admin API (POST /api/v1/explain, on the running snapshot: live host health). Runs on the
// calling thread (the control thread in the gateway). Side effects: none on the request path.
// The host pick uses a balancer built for the call, so no worker's rotation moves and no
// selection is counted; a round-robin pick is therefore that of a fresh balancer.
#include <string>

#include <nlohmann/json.hpp>

#include "explain/request.h"
#include "proxy/snapshot.h"

namespace gatehouse::explain {

struct ExplainOptions {
  // Host health is the running gateway's (admin API); false: the snapshot was built offline,
  // so health checks have not run and every host counts as available.
  bool live_health = false;
};

// The explanation as JSON (the one model both outputs use; docs/operations.md describes each
// field). A request the gateway would refuse before routing (a bad target) is explained too:
// "outcome" says what the client would get.
nlohmann::json explainRequest(const proxy::Snapshot& snap, const ExplainRequest& req,
                              const ExplainOptions& options = {});

// The same explanation for people: one section per step, earlier routes with their reasons.
std::string renderText(const nlohmann::json& explanation);

}  // namespace gatehouse::explain
