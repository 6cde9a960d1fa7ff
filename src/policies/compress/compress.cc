#include "policies/compress/compress.h"

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "compress/accept_encoding.h"
#include "core/log.h"
#include "core/strings.h"
#include "http/headers.h"
#include "metrics/registry.h"

namespace gatehouse::policies::compress {
namespace {

using gatehouse::compress::DecodeCoding;
using gatehouse::compress::Encoder;
using gatehouse::compress::tokenOf;

struct CodingCells {
  metrics::Counter responses;
  metrics::Counter bytes_in;
  metrics::Counter bytes_out;
};
struct Cells {
  CodingCells by_algorithm[kAlgorithmCount];
  metrics::Counter decoded_requests;
  metrics::Counter refused_requests;
};

metrics::PerThread<Cells>& cells() {
  return metrics::processCells<Cells>();
}

void collectMetrics(metrics::Scrape& scrape) {
  using metrics::Family;
  using metrics::Type;
  static constexpr Family kResponses{"gatehouse_compress_responses_total",
                                     "Responses the compress policy encoded.",
                                     Type::kCounter,
                                     {"algorithm"}};
  static constexpr Family kIn{"gatehouse_compress_bytes_in_total",
                              "Response body bytes before encoding.",
                              Type::kCounter,
                              {"algorithm"}};
  static constexpr Family kOut{"gatehouse_compress_bytes_out_total",
                               "Response body bytes after encoding.",
                               Type::kCounter,
                               {"algorithm"}};
  static constexpr Family kDecoded{"gatehouse_compress_request_bodies_decoded_total",
                                   "Request bodies decoded for the upstream.", Type::kCounter};
  static constexpr Family kRefused{
      "gatehouse_compress_request_bodies_refused_total",
      "Coded request bodies refused: corrupt (400) or over request_decompression.max_size (413).",
      Type::kCounter};
  struct Row {
    const Family* family;
    metrics::Counter CodingCells::*field;
  };
  for (const Row row : {Row{&kResponses, &CodingCells::responses},
                        Row{&kIn, &CodingCells::bytes_in}, Row{&kOut, &CodingCells::bytes_out}}) {
    auto& samples = scrape.family(*row.family);
    for (Algorithm a : gatehouse::compress::kAllAlgorithms) {
      uint64_t total = 0;
      cells().forEach([&](const Cells& c) {
        total += (c.by_algorithm[static_cast<size_t>(a)].*row.field).get();
      });
      samples.add({tokenOf(a)}, total);
    }
  }
  scrape.family(kDecoded).add({}, cells().sum(&Cells::decoded_requests));
  scrape.family(kRefused).add({}, cells().sum(&Cells::refused_requests));
}

// Whether a Cache-Control value forbids transforming the content (RFC 9111 §5.2.2.6).
bool noTransform(const http::HeaderMap& headers) {
  bool found = false;
  for (const auto& f : headers.fields()) {
    if (!http::iequals(f.name, "cache-control")) continue;
    strings::forEachListItem(
        f.value, [&](std::string_view d) { found = found || http::iequals(d, "no-transform"); });
  }
  return found;
}

// Adds Accept-Encoding to Vary unless it is there already (or Vary is "*").
void addVary(http::HeaderMap& headers) {
  bool covered = false;
  for (const auto& f : headers.fields()) {
    if (!http::iequals(f.name, "vary")) continue;
    strings::forEachListItem(f.value, [&](std::string_view v) {
      covered = covered || v == "*" || http::iequals(v, "accept-encoding");
    });
  }
  if (!covered) headers.add("vary", "Accept-Encoding");
}

// A strong ETag names these exact bytes; the encoded body is other bytes with the same meaning.
void weakenETag(http::HeaderMap& headers) {
  const std::string_view etag = headers.get("etag");
  if (etag.empty() || etag.starts_with("W/")) return;
  std::string weak = "W/";
  weak.append(etag);
  headers.set("etag", weak);
}

class CompressFilter final : public http::Filter {
 public:
  explicit CompressFilter(const Options& o) : o_(o) {}

  http::Verdict onRequestHeaders(http::RequestContext& ctx) override {
    auto& req = ctx.request;
    choice_ = gatehouse::compress::negotiate(req.headers.get("accept-encoding"), o_.algorithms);
    head_ = req.method == "HEAD";
    if (o_.decode_requests && req.has_body) {
      const std::string_view coding = strings::trimSpaces(req.headers.get("content-encoding"));
      if (!coding.empty()) decode_ = gatehouse::compress::decodeCodingOf(coding);
      // The core reads the whole coded body (up to the same bound) before the upstream sees it.
      if (decode_) ctx.buffer_request_body = std::max(ctx.buffer_request_body, o_.max_decoded_size);
    }
    return http::Verdict::kContinue;
  }

  http::Verdict onRequestBody(http::RequestContext& ctx, std::string& chunk, bool end) override {
    if (!decode_ || !end) return http::Verdict::kContinue;
    auto plain = gatehouse::compress::decodeAll(*decode_, chunk, o_.max_decoded_size);
    if (!plain.ok()) {
      cells().local().refused_requests.inc();
      if (plain.error().code == ErrorCode::kTooLarge) {
        return ctx.respondError(413, "decoded request body too large");
      }
      return ctx.respondError(400, "malformed coded request body");
    }
    cells().local().decoded_requests.inc();
    chunk = std::move(*plain);
    ctx.request.headers.remove("content-encoding");
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseHeaders(http::RequestContext& ctx) override {
    // A body left plain keeps its Content-Length: the core relays it as it came.
    if (!startCoding(ctx.response)) ctx.declineResponseBody();
    return http::Verdict::kContinue;
  }

  http::Verdict onResponseBody(http::RequestContext&, std::string& chunk, bool end) override {
    if (!encoder_) return http::Verdict::kContinue;
    coded_.clear();
    Status st = encoder_->write(chunk, coded_);
    if (st.ok() && end) st = encoder_->finish(coded_);
    if (!st.ok()) log::warn("compress: ", st.error().message);
    stats_->bytes_in.inc(chunk.size());
    stats_->bytes_out.inc(coded_.size());
    chunk.swap(coded_);  // the two buffers alternate, keeping their capacity
    if (end) encoder_.reset();
    return http::Verdict::kContinue;
  }

 private:
  // Marks the response and makes its encoder when this client gets it coded.
  bool startCoding(http::Response& resp) {
    if (!compressible(resp)) return false;
    addVary(resp.headers);  // whether or not this client gets it coded, others might
    if (!choice_ || head_ || !resp.has_body) return false;  // HEAD, 304: nothing to code
    auto encoder =
        gatehouse::compress::makeEncoder(*choice_, o_.levels[static_cast<size_t>(*choice_)]);
    if (!encoder.ok()) {
      log::warn("compress: ", encoder.error().message, "; sending the response plain");
      return false;
    }
    encoder_ = std::move(*encoder);
    resp.headers.set("content-encoding", tokenOf(*choice_));
    weakenETag(resp.headers);
    stats_ = &cells().local().by_algorithm[static_cast<size_t>(*choice_)];
    stats_->responses.inc();
    return true;
  }

  // Whether this response is one the policy codes for clients that accept a coding.
  bool compressible(const http::Response& resp) const {
    if (resp.status < 200 || resp.status == 204 || resp.status == 206) return false;
    const std::string_view coding = resp.headers.get("content-encoding");
    if (!coding.empty() && !http::iequals(strings::trimSpaces(coding), "identity")) return false;
    if (resp.has_body) {  // a HEAD answer or a 304 says what a GET would get: Vary too
      const bool known_length = !resp.chunked && !resp.until_close;
      if (known_length && (resp.content_length == 0 || resp.content_length < o_.min_size)) {
        return false;
      }
    }
    return !noTransform(resp.headers) &&
           matchesMediaType(resp.headers.get("content-type"), o_.content_types);
  }

  const Options& o_;
  std::optional<Algorithm> choice_;
  std::optional<DecodeCoding> decode_;
  bool head_ = false;
  std::unique_ptr<Encoder> encoder_;
  std::string coded_;
  CodingCells* stats_ = nullptr;
};

class CompressFactory final : public http::FilterFactory {
 public:
  explicit CompressFactory(Options o) : o_(std::move(o)) {}
  http::FilterRef create() const override {
    return http::FilterRef::own(std::make_unique<CompressFilter>(o_));
  }
  bool wantsRequestBody() const override { return o_.decode_requests; }
  bool wantsResponseBody() const override { return true; }

 private:
  const Options o_;
};

}  // namespace

Result<http::FilterFactoryPtr> build(const YAML::Node& config) {
  auto o = parseOptions(config);
  if (!o.ok()) return o.error();
  metrics::Registry::process().add("compress", &collectMetrics);
  return http::FilterFactoryPtr(std::make_shared<CompressFactory>(std::move(*o)));
}

}  // namespace gatehouse::policies::compress
