#include "l4/tls_passthrough.h"

#include <algorithm>
#include <map>

namespace gatehouse::l4 {

namespace hello = net::tls_hello;
using runtime::Task;

namespace {

constexpr size_t kRecordHeader = 5;
constexpr char kHandshakeRecord = 0x16;

// How many bytes must have arrived before parsing can end other than kNeedMore: the first
// record's end once its header is known (a ClientHello sent a byte at a time is then parsed
// once per record, not once per byte); 0 to parse now.
size_t firstRecordEnd(std::string_view in) {
  if (in.size() < kRecordHeader || in[0] != kHandshakeRecord) return 0;
  const auto len =
      static_cast<size_t>((static_cast<uint8_t>(in[3]) << 8) | static_cast<uint8_t>(in[4]));
  return kRecordHeader + len;
}

}  // namespace

Result<std::shared_ptr<const TlsPassthroughInspector>> TlsPassthroughInspector::compile(
    const config::TlsPassthrough& spec, const proxy::Snapshot& snap, int fallback) {
  auto out = std::make_shared<TlsPassthroughInspector>();
  out->fallback_ = fallback;
  std::map<std::string, size_t, std::less<>> groups;  // pattern -> index into by_name_
  for (const config::TlsPassthroughRoute& r : spec.routes) {
    Route route{r.alpn, snap.clusterIndex(r.cluster)};
    if (route.cluster < 0) {
      return Error::make(ErrorCode::kNotFound, ErrorSource::kConfig,
                         "tls_passthrough: unknown cluster '" + r.cluster + "'");
    }
    if (r.sni.empty()) {
      out->any_name_.push_back(std::move(route));
      continue;
    }
    auto [it, added] = groups.try_emplace(r.sni, out->by_name_.size());
    if (added) {
      if (auto st = out->names_.add(r.sni, it->second); !st.ok()) return st.error();
      out->by_name_.emplace_back();
    }
    out->by_name_[it->second].push_back(std::move(route));
  }
  return std::shared_ptr<const TlsPassthroughInspector>(std::move(out));
}

int TlsPassthroughInspector::firstOffered(const std::vector<Route>& routes,
                                          const hello::ClientHello& ch) {
  for (const Route& r : routes) {
    if (r.alpn.empty()) return r.cluster;
    for (const std::string& p : r.alpn) {
      if (std::find(ch.alpn.begin(), ch.alpn.end(), p) != ch.alpn.end()) return r.cluster;
    }
  }
  return -1;
}

int TlsPassthroughInspector::route(const hello::ClientHello& ch) const {
  if (!ch.server_name.empty()) {
    if (auto group = names_.match(ch.server_name)) {
      if (int c = firstOffered(by_name_[*group], ch); c >= 0) return c;
    }
  }
  if (int c = firstOffered(any_name_, ch); c >= 0) return c;
  return fallback_;
}

Task<Result<Inspection>> TlsPassthroughInspector::inspect(net::TcpStream& client, Buffer& first,
                                                          runtime::TimePoint deadline) const {
  hello::ClientHello ch;
  for (;;) {
    std::string_view in = first.readable();
    if (in.size() >= std::min(firstRecordEnd(in), limits_.max_bytes)) {
      hello::HelloError err = hello::HelloError::kNone;
      const hello::HelloStatus st = hello::inspect(in, limits_, ch, err);
      if (st == hello::HelloStatus::kComplete) break;
      if (st == hello::HelloStatus::kNotTls) {
        co_return Error::make(ErrorCode::kProtocol, ErrorSource::kDownstream, "not TLS");
      }
      if (st == hello::HelloStatus::kError) {
        co_return Error::make(ErrorCode::kProtocol, ErrorSource::kDownstream,
                              std::string(hello::toString(err)));
      }
    }
    first.reserve(2048);
    auto n = co_await client.read(first.writePtr(), first.writable(), deadline);
    if (!n.ok()) co_return n.error();
    if (*n == 0) co_return Error::make(ErrorCode::kClosed, ErrorSource::kDownstream);
    first.commit(*n);
  }
  Inspection out;
  out.cluster = route(ch);
  out.server_name = std::move(ch.server_name);
  co_return out;
}

}  // namespace gatehouse::l4
