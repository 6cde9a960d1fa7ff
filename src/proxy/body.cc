#include "proxy/body.h"

#include <cstdio>

namespace gatehouse::proxy {

void BodyReader::reset(Framing f, uint64_t content_length, uint64_t max_chunked_body) {
  framing_ = f;
  remaining_ = content_length;
  total_ = 0;
  pending_consume_ = 0;
  done_ = f == Framing::kNone || (f == Framing::kContentLength && content_length == 0);
  if (f == Framing::kChunked) decoder_.reset(max_chunked_body);
}

void BodyReader::consume(Buffer& buf) {
  buf.consume(pending_consume_);
  pending_consume_ = 0;
}

bool BodyReader::skipBuffered(Buffer& buf) {
  if (done_) return true;
  if (framing_ != Framing::kContentLength || pending_consume_ != 0 || buf.size() < remaining_) {
    return false;
  }
  buf.consume(static_cast<size_t>(remaining_));
  total_ += remaining_;
  remaining_ = 0;
  done_ = true;
  return true;
}

runtime::Task<Result<BodyReader::Span>> BodyReader::next(net::TcpStream& s, Buffer& buf,
                                                         runtime::Duration idle,
                                                         ErrorSource source) {
  for (;;) {
    if (done_) co_return Span{{}, true};
    if (!buf.empty()) {
      std::string_view avail = buf.readable();
      switch (framing_) {
        case Framing::kContentLength: {
          size_t n = avail.size() < remaining_ ? avail.size() : static_cast<size_t>(remaining_);
          remaining_ -= n;
          total_ += n;
          pending_consume_ = n;
          if (remaining_ == 0) done_ = true;
          co_return Span{avail.substr(0, n), false};
        }
        case Framing::kUntilClose:
          total_ += avail.size();
          pending_consume_ = avail.size();
          co_return Span{avail, false};
        case Framing::kChunked: {
          http1::ParseError perr;
          auto step = decoder_.feed(avail, perr);
          if (step.status == http1::ParseStatus::kError) {
            const ErrorCode code = perr.status == 413 ? ErrorCode::kTooLarge : ErrorCode::kProtocol;
            co_return Error::make(code, source, std::string(perr.reason));
          }
          if (step.status == http1::ParseStatus::kComplete) done_ = true;
          if (!step.data.empty()) {
            total_ += step.data.size();
            pending_consume_ = step.consumed;
            co_return Span{step.data, false};
          }
          buf.consume(step.consumed);
          if (done_) co_return Span{{}, true};
          if (step.consumed > 0) continue;
          break;  // needs more bytes
        }
        case Framing::kNone:
          co_return Span{{}, true};
      }
    }
    buf.reserve(4096);
    auto n = co_await s.read(buf.writePtr(), buf.writable(), s.loop().now() + idle);
    if (!n.ok()) {
      Error e = n.error();
      e.source = source;
      co_return e;
    }
    if (*n == 0) {
      if (framing_ == Framing::kUntilClose) {
        done_ = true;
        co_return Span{{}, true};
      }
      co_return Error::make(ErrorCode::kClosed, source, "connection closed mid-body");
    }
    buf.commit(*n);
  }
}

runtime::Task<Status> BodyWriter::write(net::TcpStream& s, std::string_view data,
                                        runtime::TimePoint deadline) {
  if (data.empty()) co_return Status{};
  written_ += data.size();
  if (!chunked_) {
    iovec v{const_cast<char*>(data.data()), data.size()};
    co_return co_await s.writeAll(&v, 1, deadline);
  }
  char head[24];
  int hn = std::snprintf(head, sizeof head, "%zx\r\n", data.size());
  iovec v[3] = {{head, static_cast<size_t>(hn)},
                {const_cast<char*>(data.data()), data.size()},
                {const_cast<char*>("\r\n"), 2}};
  co_return co_await s.writeAll(v, 3, deadline);
}

namespace {
// Fields that must not travel in a trailer section (RFC 9110 §6.5.1): framing, routing and
// hop-by-hop fields. A next hop that merges trailers into the header section would otherwise
// see a second Content-Length or Host, or close a connection we keep.
bool forbiddenTrailer(std::string_view name) {
  static constexpr std::string_view kForbidden[] = {
      "content-length", "transfer-encoding", "host",  "connection", "keep-alive", "te", "trailer",
      "upgrade",        "proxy-connection",  "expect"};
  for (std::string_view f : kForbidden) {
    if (http::iequals(name, f)) return true;
  }
  return false;
}
}  // namespace

runtime::Task<Status> BodyWriter::finish(net::TcpStream& s, const http::HeaderMap* trailers,
                                         runtime::TimePoint deadline) {
  if (!chunked_) co_return Status{};
  scratch_.assign("0\r\n");
  if (trailers) {
    for (const auto& f : trailers->fields()) {
      if (forbiddenTrailer(f.name)) continue;
      scratch_.append(f.name).append(": ").append(f.value).append("\r\n");
    }
  }
  scratch_.append("\r\n");
  iovec v{scratch_.data(), scratch_.size()};
  co_return co_await s.writeAll(&v, 1, deadline);
}

}  // namespace gatehouse::proxy
