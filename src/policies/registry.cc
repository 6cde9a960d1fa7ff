// The list of built-in policies: adding a policy is one folder plus one line here.
#include "http/filter.h"
#include "policies/direct_response/direct_response.h"
#include "policies/headers/headers.h"
#include "policies/rate_limit/rate_limit.h"
#include "policies/redirect/redirect.h"
#include "policies/rewrite/rewrite.h"

namespace gatehouse::http {

const std::vector<PolicyRegistration>& policyRegistry() {
  static const std::vector<PolicyRegistration> kPolicies = {
      {"headers", &policies::headers::build},
      {"direct_response", &policies::direct_response::build},
      {"redirect", &policies::redirect::build},
      {"rewrite", &policies::rewrite::build},
      {"rate_limit", &policies::rate_limit::build},
  };
  return kPolicies;
}

}  // namespace gatehouse::http
