#include "http/client.h"

#include <algorithm>
#include <cctype>

#include "config/model.h"
#include "http/headers.h"
#include "http/http1_parser.h"
#include "net/tcp.h"

namespace gatehouse::http {
namespace {

Error urlError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

Error callError(ErrorCode code, std::string msg) {
  return Error::make(code, ErrorSource::kUpstream, std::move(msg),
                     code == ErrorCode::kTimeout || code == ErrorCode::kConnectFailed);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

Result<Url> parseUrl(std::string_view text) {
  Url u;
  std::string scheme = lower(text.substr(0, text.find("://")));
  if (text.find("://") == std::string_view::npos || (scheme != "http" && scheme != "https")) {
    return urlError("expected an http:// or https:// URL");
  }
  for (unsigned char c : text) {
    if (c <= 0x20 || c >= 0x7f) return urlError("URL contains whitespace or non-ASCII bytes");
  }
  u.https = scheme == "https";
  std::string_view rest = text.substr(scheme.size() + 3);
  if (rest.find('#') != std::string_view::npos) return urlError("URL must not have a fragment");
  size_t end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, end);
  std::string_view target = end == std::string_view::npos ? std::string_view{} : rest.substr(end);
  if (authority.empty()) return urlError("URL has no host");
  if (authority.find('@') != std::string_view::npos) {
    return urlError("URL must not carry credentials (user@host)");
  }
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return urlError("unterminated IPv6 literal in URL");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return urlError("unexpected bytes after IPv6 literal in URL");
      port = after.substr(1);
    }
    if (!net::SocketAddress::parse(host, 0).ok()) return urlError("invalid IPv6 literal in URL");
  } else {
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port = authority.substr(colon + 1);
    }
    for (unsigned char c : host) {
      if (!std::isalnum(c) && c != '-' && c != '.' && c != '_') {
        return urlError("invalid character in URL host");
      }
    }
  }
  if (host.empty()) return urlError("URL has no host");
  u.port = u.https ? 443 : 80;
  if (authority.back() == ':') return urlError("URL has an empty port");
  if (!port.empty()) {
    if (port.size() > 5) return urlError("URL port must be 1-65535");
    unsigned v = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return urlError("URL port must be 1-65535");
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v == 0 || v > 65535) return urlError("URL port must be 1-65535");
    u.port = static_cast<uint16_t>(v);
  }
  u.host = lower(host);
  u.authority = lower(authority);
  u.target = target.empty() ? "/" : std::string(target);
  if (u.target.front() == '?') u.target.insert(0, "/");
  return u;
}

Result<std::shared_ptr<const ClientEndpoint>> ClientEndpoint::create(std::string_view url,
                                                                     const ClientTlsOptions& tls) {
  auto parsed = parseUrl(url);
  if (!parsed.ok()) return parsed.error();
  auto ep = std::make_shared<ClientEndpoint>();
  ep->url = std::move(*parsed);
  auto addr = net::resolve(ep->url.host, ep->url.port);
  if (!addr.ok()) return addr.error();
  ep->address = *addr;
  if (ep->url.https) {
    config::UpstreamTls cfg;
    cfg.verify = tls.verify;
    cfg.ca_file = tls.ca_file;
    auto ctx = net::TlsClientContext::create(cfg);
    if (!ctx.ok()) return ctx.error();
    ep->tls = std::move(*ctx);
  }
  return std::shared_ptr<const ClientEndpoint>(std::move(ep));
}

std::string_view ClientResponse::header(std::string_view lower_name) const {
  for (const auto& [n, v] : headers) {
    if (n == lower_name) return v;
  }
  return {};
}

runtime::Task<Result<ClientResponse>> fetch(std::shared_ptr<const ClientEndpoint> ep,
                                            ClientRequest req) {
  runtime::EventLoop* loop = runtime::EventLoop::current();
  if (!loop) co_return callError(ErrorCode::kIo, "no event loop on this thread");
  const runtime::TimePoint deadline = runtime::Clock::now() + req.timeout;

  auto conn = co_await net::TcpStream::connect(*loop, ep->address, deadline);
  if (!conn.ok()) {
    co_return callError(
        conn.error().code == ErrorCode::kTimeout ? ErrorCode::kTimeout : ErrorCode::kConnectFailed,
        "connect to " + ep->url.authority + ": " + conn.error().message);
  }
  net::TcpStream& s = **conn;
  s.setNoDelay();
  if (ep->tls) {
    net::SslPtr ssl = ep->tls->newSsl(ep->url.host);
    if (!ssl) co_return callError(ErrorCode::kIo, "cannot create a TLS session");
    s.attachTls(ssl.release());
    auto hs = co_await s.handshake(deadline);
    if (!hs.ok()) {
      co_return callError(
          hs.error().code == ErrorCode::kTimeout ? ErrorCode::kTimeout : ErrorCode::kProtocol,
          ep->url.authority + ": " + hs.error().message);
    }
  }

  std::string out;
  out.reserve(256 + req.body.size());
  out.append(req.method).append(" ").append(ep->url.target).append(" HTTP/1.1\r\nhost: ");
  out.append(ep->url.authority).append("\r\nconnection: close\r\n");
  for (const auto& [n, v] : req.headers)
    out.append(n).append(": ").append(v).append("\r\n");
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT") {
    out.append("content-length: ").append(std::to_string(req.body.size())).append("\r\n");
  }
  out.append("\r\n").append(req.body);
  iovec v{out.data(), out.size()};
  if (auto st = co_await s.writeAll(&v, 1, deadline); !st.ok()) {
    co_return callError(st.error().code,
                        "send to " + ep->url.authority + ": " + st.error().message);
  }

  const bool head_request = req.method == "HEAD";
  const http1::ParseLimits limits;
  const size_t max_raw = req.max_response_bytes + limits.max_header_bytes + 64 * 1024;
  std::string in;
  char chunk[16384];
  bool eof = false;
  auto readMore = [&]() -> runtime::Task<Status> {
    auto n = co_await s.read(chunk, sizeof chunk, deadline);
    if (!n.ok()) {
      co_return callError(n.error().code,
                          "read from " + ep->url.authority + ": " + n.error().message);
    }
    if (*n == 0) eof = true;
    in.append(chunk, *n);
    if (in.size() > max_raw) {
      co_return callError(ErrorCode::kTooLarge,
                          "response from " + ep->url.authority + " exceeds the size limit");
    }
    co_return Status{};
  };

  http1::ResponseHead head;
  http1::ParseError perr;
  for (;;) {
    auto st = http1::parseResponseHead(in, limits, head_request, head, perr);
    if (st == http1::ParseStatus::kError) {
      co_return callError(ErrorCode::kProtocol, "bad response head from " + ep->url.authority +
                                                    ": " + std::string(perr.reason));
    }
    if (st == http1::ParseStatus::kComplete) {
      // 1xx interim responses carry no body; skip them.
      if (head.status >= 100 && head.status < 200) {
        in.erase(0, head.head_size);
        continue;
      }
      break;
    }
    if (eof) co_return callError(ErrorCode::kProtocol, "connection closed before the head");
    if (auto r = co_await readMore(); !r.ok()) co_return r.error();
  }

  ClientResponse resp;
  resp.status = head.status;
  for (const auto& f : head.headers.fields()) {
    resp.headers.emplace_back(lower(f.name), std::string(f.value));
  }
  const size_t head_size = head.head_size;
  const http1::BodyKind kind = head.body;
  const uint64_t length = head.content_length;
  if (kind == http1::BodyKind::kContentLength && length > req.max_response_bytes) {
    co_return callError(ErrorCode::kTooLarge,
                        "response body from " + ep->url.authority + " exceeds the size limit");
  }
  if (kind == http1::BodyKind::kContentLength) {
    while (in.size() - head_size < length) {
      if (eof) co_return callError(ErrorCode::kProtocol, "response body truncated");
      if (auto r = co_await readMore(); !r.ok()) co_return r.error();
    }
    resp.body.assign(in, head_size, length);
  } else if (kind == http1::BodyKind::kChunked) {
    http1::ChunkedDecoder decoder;
    size_t pos = head_size;
    for (;;) {
      auto step = decoder.feed(std::string_view(in).substr(pos), perr);
      if (step.status == http1::ParseStatus::kError) {
        co_return callError(ErrorCode::kProtocol, "bad chunked body from " + ep->url.authority +
                                                      ": " + std::string(perr.reason));
      }
      resp.body.append(step.data);
      pos += step.consumed;
      if (resp.body.size() > req.max_response_bytes) {
        co_return callError(ErrorCode::kTooLarge,
                            "response body from " + ep->url.authority + " exceeds the size limit");
      }
      if (step.status == http1::ParseStatus::kComplete) break;
      if (step.consumed == 0) {
        if (eof) co_return callError(ErrorCode::kProtocol, "chunked body truncated");
        if (auto r = co_await readMore(); !r.ok()) co_return r.error();
      }
    }
  } else if (kind == http1::BodyKind::kUntilClose) {
    while (!eof) {
      if (in.size() - head_size > req.max_response_bytes) {
        co_return callError(ErrorCode::kTooLarge,
                            "response body from " + ep->url.authority + " exceeds the size limit");
      }
      if (auto r = co_await readMore(); !r.ok()) co_return r.error();
    }
    resp.body.assign(in, head_size);
    if (resp.body.size() > req.max_response_bytes) {
      co_return callError(ErrorCode::kTooLarge,
                          "response body from " + ep->url.authority + " exceeds the size limit");
    }
  }
  co_return resp;
}

}  // namespace gatehouse::http
