// The Exchange's side of upstream retries: buffering a small body so that it can be sent
// again, the per-attempt decision and the backoff. The rules themselves are in proxy/retry.cc.
#include "proxy/exchange.h"
#include "proxy/retry.h"

namespace gatehouse::proxy {

using runtime::Task;

namespace {
// Larger bodies stream to the upstream as they arrive, and a request whose body started to
// flow is not retried after it may have reached the upstream.
constexpr uint64_t kMaxReplayBody = 64 * 1024;

// Whether a policy retries failures that happen after the request was sent.
bool retriesAfterSending(const config::RetryPolicy& p) {
  return p.attempts > 1 && (p.on_reset || p.on_timeout || !p.statuses.empty());
}
}  // namespace

Task<bool> Exchange::bufferBodyForRetry() {
  auto& req = ctx_.request;
  // ctx.buffer_request_body already holds the whole body in buffered_body.
  if (ctx_.buffer_request_body > 0 && req.has_body) {
    ex_.body_replayable = true;
    co_return true;
  }
  if (!req.has_body || req.chunked || req.content_length > kMaxReplayBody || req.expect_continue ||
      ex_.route->wants_request_body || !req.isIdempotent() ||
      !retriesAfterSending(ex_.route->retry)) {
    co_return true;
  }
  const auto& cfg = *ex_.snap->snap->config;
  std::string& body = ex_.buffered_body;
  body.clear();
  body.reserve(req.content_length);
  for (;;) {
    auto sp = co_await io_.readBody(cfg.timeouts.client_body);
    if (!sp.ok()) {
      bool timeout = sp.error().code == ErrorCode::kTimeout;
      (timeout ? w_.stats().timeouts_client : w_.stats().bad_requests).inc();
      co_return co_await failBuffering(timeout ? 408 : 400,
                                       timeout ? "request body timeout" : "malformed request body");
    }
    ex_.request_body_started = true;
    if (sp->end) break;
    body.append(sp->data);
    io_.consumeBody();
  }
  ex_.has_first_span = !body.empty();
  ex_.first_span = body;
  ex_.body_replayable = true;
  co_return true;
}

bool Exchange::shouldRetry(const AttemptFailure& f, RetryState& retry, runtime::Duration& delay) {
  RequestFacts facts;
  facts.idempotent = ctx_.request.isIdempotent();
  facts.body_replayable = ex_.body_replayable || !ex_.request_body_started;
  facts.response_started = ctx_.response_started;
  facts.deadline_expired = total_expired_;
  return retry.mayRetry(f, facts, w_.nextRandom(), delay) == RetryVerdict::kRetry;
}

Task<bool> Exchange::backoffAndRewind(runtime::Duration delay) {
  if (delay.count() > 0) co_await w_.loop().sleepFor(delay);
  if (total_expired_) co_return false;
  if (ex_.body_replayable) {
    ex_.has_first_span = !ex_.buffered_body.empty();
    ex_.first_span = ex_.buffered_body;
  }
  co_return true;
}

}  // namespace gatehouse::proxy
