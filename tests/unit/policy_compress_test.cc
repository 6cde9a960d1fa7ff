// Policy `compress`: options, which responses get coded, the headers it changes, and request
// body decoding with its bound.
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>

#include "compress/encoder.h"
#include "http/filter.h"
#include "policies/compress/compress.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

using policies::compress::matchesMediaType;
using policies::compress::parseOptions;

http::FilterFactoryPtr build(const std::string& yaml, std::string* error = nullptr) {
  return testutil::buildPolicy("compress", yaml, error);
}

std::string buildError(const std::string& yaml) {
  std::string error;
  EXPECT_FALSE(build(yaml, &error)) << yaml;
  return error;
}

TEST(CompressOptions, Defaults) {
  auto o = parseOptions(YAML::Load(""));
  ASSERT_TRUE(o.ok());
  ASSERT_EQ(o->algorithms.size(), 3u);
  EXPECT_EQ(o->algorithms[0], compress::Algorithm::kBrotli);
  EXPECT_EQ(o->levels[static_cast<size_t>(compress::Algorithm::kGzip)], 6);
  EXPECT_EQ(o->min_size, 256u);
  EXPECT_FALSE(o->decode_requests);
  EXPECT_TRUE(matchesMediaType("text/html; charset=utf-8", o->content_types));
  EXPECT_TRUE(matchesMediaType("Application/JSON", o->content_types));
  EXPECT_TRUE(matchesMediaType("application/problem+json", o->content_types));
  EXPECT_TRUE(matchesMediaType("image/svg+xml", o->content_types));
  EXPECT_FALSE(matchesMediaType("image/png", o->content_types));
  EXPECT_FALSE(matchesMediaType("application/octet-stream", o->content_types));
  EXPECT_FALSE(matchesMediaType("", o->content_types));
  EXPECT_FALSE(matchesMediaType("+json", o->content_types));
}

TEST(CompressOptions, Errors) {
  EXPECT_NE(buildError("algorithms: [gzip, lzma]").find("unknown coding 'lzma'"),
            std::string::npos);
  EXPECT_NE(buildError("algorithms: [gzip, gzip]").find("listed twice"), std::string::npos);
  EXPECT_NE(buildError("levels: {gzip: 10}").find("levels.gzip"), std::string::npos);
  EXPECT_NE(buildError("levels: {br: 12}").find("levels.br"), std::string::npos);
  EXPECT_NE(buildError("content_types: [json]").find("not a media type"), std::string::npos);
  EXPECT_NE(buildError("min_sise: 10").find("unknown option"), std::string::npos);
  EXPECT_NE(buildError("request_decompression: {max_size: 0}").find("max_size"), std::string::npos);
}

struct Exchange {
  http::RequestContext ctx;
  http::FilterRef ref;
};

// Runs the request and response head phases: a 200 of `type` with a known length `length`
// (0: unknown) through the policy built from `yaml`.
void respond(Exchange& ex, const http::FilterFactoryPtr& f, std::string_view accept,
             std::string_view type, uint64_t length = 0) {
  ex.ctx.request.method = "GET";
  if (!accept.empty()) ex.ctx.request.headers.add("accept-encoding", accept);
  ex.ref = f->create();
  ex.ref.filter->onRequestHeaders(ex.ctx);
  ex.ctx.response.status = 200;
  ex.ctx.response.headers.add("content-type", type);
  ex.ctx.response.chunked = length == 0;
  ex.ctx.response.content_length = length;
}

TEST(CompressPolicy, CodesAndMarksTheResponse) {
  auto f = build("algorithms: [gzip]");
  ASSERT_TRUE(f);
  Exchange ex;
  respond(ex, f, "gzip, br", "application/json", 5000);
  ex.ctx.response.headers.add("etag", "\"v1\"");
  ex.ctx.response.headers.add("vary", "Origin");
  ex.ref.filter->onResponseHeaders(ex.ctx);
  const auto& h = ex.ctx.response.headers;
  EXPECT_EQ(h.get("content-encoding"), "gzip");
  EXPECT_EQ(h.get("etag"), "W/\"v1\"");
  EXPECT_EQ(h.count("vary"), 2u);
  EXPECT_EQ(ex.ctx.response_body_declines, 0);
  std::string body = std::string(3000, 'a');
  std::string coded;
  std::string chunk = body.substr(0, 1000);
  ex.ref.filter->onResponseBody(ex.ctx, chunk, false);
  coded += chunk;
  chunk = body.substr(1000);
  ex.ref.filter->onResponseBody(ex.ctx, chunk, true);
  coded += chunk;
  auto plain = compress::decodeAll(compress::DecodeCoding::kGzip, coded, 1 << 20);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, body);
}

TEST(CompressPolicy, LeavesAlone) {
  auto f = build("min_size: 1000");
  ASSERT_TRUE(f);
  auto coding = [&](auto&& tweak, std::string_view type = "text/plain", uint64_t length = 0,
                    std::string_view accept = "gzip") {
    Exchange ex;
    respond(ex, f, accept, type, length);
    tweak(ex.ctx);
    ex.ref.filter->onResponseHeaders(ex.ctx);
    return std::string(ex.ctx.response.headers.get("content-encoding")) + "|" +
           std::string(ex.ctx.response.headers.get("vary"));
  };
  auto none = [](http::RequestContext&) {};
  EXPECT_EQ(coding(none), "gzip|Accept-Encoding");
  EXPECT_EQ(coding(none, "text/plain", 999), "|");  // known small
  EXPECT_EQ(coding(none, "text/plain", 1000), "gzip|Accept-Encoding");
  EXPECT_EQ(coding(none, "image/png"), "|");
  EXPECT_EQ(coding(none, "text/plain", 0, "identity"), "|Accept-Encoding");
  EXPECT_EQ(coding(none, "text/plain", 0, ""), "|Accept-Encoding");
  EXPECT_EQ(coding([](auto& c) { c.response.headers.add("content-encoding", "br"); }), "br|");
  EXPECT_EQ(
      coding([](auto& c) { c.response.headers.add("cache-control", "public, no-transform"); }),
      "|");
  EXPECT_EQ(coding([](auto& c) { c.response.status = 204; }), "|");
  EXPECT_EQ(coding([](auto& c) { c.response.status = 206; }), "|");
  EXPECT_EQ(coding([](auto& c) {
              c.response.status = 304;
              c.response.has_body = false;  // as the core sets it
            }),
            "|Accept-Encoding");
  EXPECT_EQ(coding([](auto& c) { c.response.headers.add("vary", "accept-encoding"); }),
            "gzip|accept-encoding");
  EXPECT_EQ(coding([](auto& c) { c.response.headers.add("vary", "*"); }), "gzip|*");
}

TEST(CompressPolicy, HeadGetsVaryButNoCoding) {
  auto f = build("");
  Exchange ex;
  ex.ctx.request.method = "HEAD";
  ex.ctx.request.headers.add("accept-encoding", "gzip");
  ex.ref = f->create();
  ex.ref.filter->onRequestHeaders(ex.ctx);
  ex.ctx.response.status = 200;
  ex.ctx.response.headers.add("content-type", "text/html");
  ex.ctx.response.has_body = false;  // as the core sets it for HEAD
  ex.ref.filter->onResponseHeaders(ex.ctx);
  EXPECT_EQ(ex.ctx.response.headers.get("content-encoding"), "");
  EXPECT_EQ(ex.ctx.response.headers.get("vary"), "Accept-Encoding");
  EXPECT_EQ(ex.ctx.response_body_declines, 1);  // the core relays it with its length
}

std::string gzipOf(const std::string& in) {
  auto enc = compress::makeEncoder(compress::Algorithm::kGzip, 6);
  std::string out;
  EXPECT_TRUE(enc.ok() && (*enc)->write(in, out).ok() && (*enc)->finish(out).ok());
  return out;
}

http::Verdict sendCodedBody(http::RequestContext& ctx, const http::FilterFactoryPtr& f,
                            std::string& body, std::string_view coding = "gzip") {
  ctx.request.method = "POST";
  ctx.request.has_body = true;
  ctx.request.headers.add("content-encoding", coding);
  auto ref = f->create();
  ref.filter->onRequestHeaders(ctx);
  return ref.filter->onRequestBody(ctx, body, true);
}

TEST(CompressPolicy, DecodesRequestBodies) {
  auto f = build("request_decompression: {max_size: 1KiB}");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->wantsRequestBody());
  http::RequestContext ctx;
  std::string body = gzipOf(std::string(1024, 'x'));
  EXPECT_EQ(sendCodedBody(ctx, f, body), http::Verdict::kContinue);
  EXPECT_EQ(ctx.buffer_request_body, 1024u);
  EXPECT_EQ(body, std::string(1024, 'x'));
  EXPECT_FALSE(ctx.request.headers.has("content-encoding"));

  http::RequestContext big;
  std::string bomb = gzipOf(std::string(1025, 'x'));
  EXPECT_EQ(sendCodedBody(big, f, bomb), http::Verdict::kRespond);
  EXPECT_EQ(big.local_reply.status, 413);

  http::RequestContext corrupt;
  std::string junk = "definitely not gzip";
  EXPECT_EQ(sendCodedBody(corrupt, f, junk), http::Verdict::kRespond);
  EXPECT_EQ(corrupt.local_reply.status, 400);

  http::RequestContext other;
  std::string lzw = "opaque";
  EXPECT_EQ(sendCodedBody(other, f, lzw, "compress"), http::Verdict::kContinue);
  EXPECT_EQ(other.buffer_request_body, 0u);  // not ours to decode: streamed as it is
  EXPECT_EQ(lzw, "opaque");
}

TEST(CompressPolicy, RequestDecodingIsOffByDefault) {
  auto f = build("");
  EXPECT_FALSE(f->wantsRequestBody());
  EXPECT_TRUE(f->wantsResponseBody());
  auto off = build("request_decompression: {enabled: false}");
  EXPECT_FALSE(off->wantsRequestBody());
}

}  // namespace
}  // namespace gatehouse
