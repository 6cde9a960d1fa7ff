#include "proxy/attempt_error.h"

#include <utility>

namespace gatehouse::proxy {

using Code = AttemptError::Code;

AttemptError attemptError(Code code, std::string detail) {
  AttemptError e;
  e.code = code;
  e.detail = std::move(detail);
  switch (code) {
    case Code::kConnectFailed:
    case Code::kConnectTimeout:
    case Code::kTlsFailed:
    case Code::kRefusedStream:
      e.retryable = true;  // nothing reached the upstream: another host is safe for any request
      break;
    case Code::kReset:
    case Code::kBadResponse:
    case Code::kResponseTimeout:
    case Code::kStatus:
      e.retryable = true;
      e.may_have_reached_upstream = true;
      break;
    case Code::kBodyTooLarge:
    case Code::kBodyIncomplete:
    case Code::kCancelled:
    case Code::kRequestTimeout:
    case Code::kResponseTooLarge:
      e.may_have_reached_upstream = true;
      break;
    default:
      break;
  }
  return e;
}

AttemptError statusError(int status) {
  AttemptError e = attemptError(Code::kStatus);
  e.status = status;
  return e;
}

AttemptError overflowError(upstream::Limit limit) {
  AttemptError e = attemptError(Code::kOverflow);
  e.limit = limit;
  return e;
}

metrics::RetryReason retryReason(const AttemptError& e) {
  using metrics::RetryReason;
  switch (e.code) {
    case Code::kRefusedStream:
      return RetryReason::kRefusedStream;
    case Code::kReset:
    case Code::kBadResponse:
      return RetryReason::kReset;
    case Code::kResponseTimeout:
      return RetryReason::kTimeout;
    case Code::kStatus:
      return RetryReason::kStatus;
    default:
      return RetryReason::kConnectFailure;
  }
}

bool hostFault(const AttemptError& e) {
  switch (e.code) {
    case Code::kNoHost:
    case Code::kOverflow:
    case Code::kPoolLimit:
    case Code::kSwitchToHttp2:
    case Code::kBodyTooLarge:
    case Code::kBodyIncomplete:
      return false;
    default:
      return true;
  }
}

ErrorReply errorReply(const AttemptError& e) {
  switch (e.code) {
    case Code::kNone:
    case Code::kSwitchToHttp2:
    case Code::kStatus:
      return {502, "bad response from upstream", "bad upstream response"};
    case Code::kNoHost:
      return {503, "no upstream host available", "no upstream host available"};
    case Code::kOverflow:
      return {503, "upstream overflow", "upstream overflow"};
    case Code::kPoolLimit:
      return {503, "upstream connection limit reached", "upstream connection limit reached"};
    case Code::kConnectFailed:
      return {502, "upstream connect failed", "upstream connect failed"};
    case Code::kConnectTimeout:
      return {504, "upstream connect timeout", "upstream connect timeout"};
    case Code::kTlsFailed:
      return {502, "upstream TLS handshake failed", "upstream TLS handshake failed"};
    case Code::kRefusedStream:
    case Code::kReset:
    case Code::kBadResponse:
      return {502, "bad response from upstream", "bad upstream response"};
    case Code::kResponseTimeout:
      return {504, "upstream response timeout", "upstream response timeout"};
    case Code::kRequestTimeout:
      return {504, "request timeout", "request timeout"};
    case Code::kBodyTooLarge:
      return {413, "request body too large", "request body too large"};
    case Code::kBodyIncomplete:
      return {400, "request body incomplete", "request body incomplete"};
    case Code::kCancelled:
      return {499, "client went away", "client went away"};
    case Code::kUnknownCluster:
      return {503, "unknown upstream cluster", "unknown upstream cluster"};
    case Code::kResponseTooLarge:
      return {502, "upstream response too large", "upstream response too large"};
  }
  return {502, "bad response from upstream", "bad upstream response"};
}

std::string_view codeName(AttemptError::Code code) {
  switch (code) {
    case Code::kNone:
      return "none";
    case Code::kNoHost:
      return "no_host";
    case Code::kOverflow:
      return "overflow";
    case Code::kPoolLimit:
      return "pool_limit";
    case Code::kConnectFailed:
      return "connect_failed";
    case Code::kConnectTimeout:
      return "connect_timeout";
    case Code::kTlsFailed:
      return "tls_failed";
    case Code::kSwitchToHttp2:
      return "switch_to_http2";
    case Code::kRefusedStream:
      return "refused_stream";
    case Code::kReset:
      return "reset";
    case Code::kBadResponse:
      return "bad_response";
    case Code::kResponseTimeout:
      return "response_timeout";
    case Code::kRequestTimeout:
      return "request_timeout";
    case Code::kStatus:
      return "status";
    case Code::kBodyTooLarge:
      return "body_too_large";
    case Code::kBodyIncomplete:
      return "body_incomplete";
    case Code::kCancelled:
      return "cancelled";
    case Code::kUnknownCluster:
      return "unknown_cluster";
    case Code::kResponseTooLarge:
      return "response_too_large";
  }
  return "other";
}

}  // namespace gatehouse::proxy
