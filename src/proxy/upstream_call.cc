#include "proxy/upstream_call.h"

namespace gatehouse::proxy {

using runtime::Task;
using Code = AttemptError::Code;

UpstreamCall::UpstreamCall(proxy::WorkerContext& worker, const CallOptions& options,
                           Http1UpstreamIo& http1, Http2UpstreamIo& http2)
    : w_(worker),
      opt_(options),
      cc_(options.snapshot->snap->clusters[static_cast<size_t>(options.cluster)]),
      wc_(options.snapshot->clusters[static_cast<size_t>(options.cluster)]),
      stats_(worker.stats().cluster(cc_.stats_slot)),
      http1_(http1),
      http2_(http2),
      retry_(*options.retry, stats_, &cc_.breakers) {
  stats_.requests.inc();
}

UpstreamCall::~UpstreamCall() {
  if (http1_.prepared()) http1_.reset();
  if (http2_.prepared()) http2_.reset();
}

void UpstreamCall::expire() {
  expired_ = true;
  if (current_) current_->interrupt();
}

void UpstreamCall::abort() {
  aborted_ = true;
  if (current_) current_->cancel();
}

Task<AttemptError> UpstreamCall::run(RequestBody& body, ResponseHandler& handler) {
  body_ = &body;
  handler_ = &handler;
  for (;;) {
    if (aborted_) co_return attemptError(Code::kCancelled);
    // One attempt, inline (no coroutine frame of its own): pick a host, open, exchange.
    AttemptError e = startAttempt();
    if (e.ok()) {
      UpstreamIo* io = &ioFor(*target_.pool, false);
      // (GCC 12 miscompiles co_await inside ?:, hence the plain ifs.)
      std::optional<AttemptError> opened = io->tryOpen(target_);
      if (opened) {
        e = std::move(*opened);
      } else {
        e = co_await io->open(target_);
      }
      if (e.code == Code::kSwitchToHttp2) {
        // protocol auto: the fresh connection spoke h2 and is in the pool now; same host,
        // same attempt, continued as a stream.
        io = &ioFor(*target_.pool, true);
        opened = io->tryOpen(target_);
        if (opened) {
          e = std::move(*opened);
        } else {
          e = co_await io->open(target_);
        }
      }
      // abort() while connecting had nothing to cancel: stop before the request is sent.
      if (e.ok() && aborted_) e = attemptError(Code::kCancelled);
      if (e.ok()) {
        sent_at_ = runtime::Clock::now();
        current_ = io;
        e = co_await io->exchange(*body_, *this, opt_.head_timeout);
        current_ = nullptr;
      }
      endAttempt(e);
    }
    if (e.ok()) co_return e;
    // The client's body failing is reported as such, even past the deadline.
    if (expired_ && e.code != Code::kBodyTooLarge && e.code != Code::kBodyIncomplete) {
      e = attemptError(Code::kRequestTimeout);
    }
    countAttemptFailure(e);
    // A status retry was decided when its head arrived (keepHead); anything else here.
    runtime::Duration delay = status_delay_;
    if (e.code == Code::kStatus || shouldRetry(e, delay)) {
      if (co_await backoff(delay)) continue;
      e = attemptError(Code::kRequestTimeout);  // the deadline passed during the backoff
      stats_.timeouts.inc();
    }
    if (e.code == Code::kReset || e.code == Code::kBadResponse || e.code == Code::kRefusedStream) {
      stats_.bad_responses.inc();
    }
    co_return e;
  }
}

AttemptError UpstreamCall::startAttempt() {
  const int hi =
      wc_.lb->pick({opt_.request, opt_.client_ip, opt_.lb_set_cookie, retry_.triedHosts()});
  if (hi < 0) return attemptError(Code::kNoHost);
  retry_.startAttempt(hi);
  tracker_.emplace(*wc_.lb, hi);
  const auto& host = cc_.hosts.hosts[static_cast<size_t>(hi)];
  if (opt_.log) {
    opt_.log->attempts = retry_.tries();
    opt_.log->upstream = host.name;
  }
  target_ = {&cc_, &host, wc_.pools[static_cast<size_t>(hi)], &stats_, opt_.log, opt_.deadline};
  attempt_status_ = 0;
  if (opt_.trace) traceAttemptStart(host);
  return AttemptError{};
}

void UpstreamCall::endAttempt(const AttemptError& e) {
  if (attempt_traced_) traceAttemptEnd(e);
  // When a head arrived, keepHead already told the balancer how the host did.
  if (hostFault(e)) {
    tracker_->end(false);
  } else {
    tracker_->abandon();
  }
  tracker_.reset();
}

UpstreamIo& UpstreamCall::ioFor(const upstream::EndpointPool& pool, bool http2) {
  http2 =
      http2 || cc_.http2 || (cc_.protocol_auto && pool.alpn == upstream::EndpointPool::Alpn::kH2);
  const auto& cfg = *opt_.snapshot->snap->config;
  if (http2) {
    if (!http2_.prepared()) http2_.prepare(*opt_.request, cfg, cc_.tls != nullptr, opt_.web);
    return http2_;
  }
  if (!http1_.prepared()) {
    http1_.prepare(*opt_.request, cfg, opt_.wait_continue);
    http1_.setProxyHeader(opt_.proxy_header, opt_.proxy_owner);
  }
  return http1_;
}

bool UpstreamCall::keepHead(UpstreamIo& up) {
  const double ms = msSince(sent_at_);
  if (opt_.log) opt_.log->upstream_response_ms = ms;
  stats_.upstream_latency.observeUs(static_cast<uint64_t>(ms * 1000));
  const int status = up.status();
  attempt_status_ = status;
  tracker_->end(status < 500);
  // A status the policy retries: the answer is dropped and the request goes to another host.
  if (status >= 400 && up.requestSent() && shouldRetry(statusError(status), status_delay_)) {
    return false;
  }
  response_started_ = true;
  return true;
}

Task<bool> UpstreamCall::takeResponse(UpstreamIo& up) {
  return handler_->onResponse(up);  // not a coroutine: the handler's task itself
}

bool UpstreamCall::shouldRetry(const AttemptError& e, runtime::Duration& delay) {
  RequestFacts facts;
  facts.idempotent = opt_.request->isIdempotent();
  facts.body_replayable = body_->replayable();
  facts.response_started = response_started_;
  facts.deadline_expired = expired_;
  return retry_.mayRetry(e, facts, w_.nextRandom(), delay) == RetryVerdict::kRetry;
}

Task<bool> UpstreamCall::backoff(runtime::Duration delay) {
  if (delay.count() > 0) co_await w_.loop().sleepFor(delay);
  if (expired_) co_return false;
  body_->rewind();
  co_return true;
}

void UpstreamCall::countAttemptFailure(const AttemptError& e) {
  switch (e.code) {
    case Code::kNoHost:
      stats_.no_host.inc();
      break;
    case Code::kConnectFailed:
    case Code::kTlsFailed:
      stats_.connect_failures.inc();
      break;
    case Code::kConnectTimeout:
      stats_.timeouts.inc();
      w_.stats().timeout(metrics::TimeoutReason::kUpstreamConnect);
      break;
    case Code::kResponseTimeout: {
      stats_.timeouts.inc();
      const bool call_deadline = opt_.deadline && w_.loop().now() >= *opt_.deadline;
      w_.stats().timeout(call_deadline ? metrics::TimeoutReason::kGrpcDeadline
                                       : metrics::TimeoutReason::kUpstreamHeader);
      break;
    }
    case Code::kRequestTimeout:
      stats_.timeouts.inc();
      break;
    default:
      break;
  }
}

}  // namespace gatehouse::proxy
