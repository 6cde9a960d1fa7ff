// Policy `transform`: config errors with the option's line, request edits (headers, query, path,
// method, JSON body), and response edits (status, headers, JSON body, ETag, size bound).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "http/filter.h"
#include "policy_test_util.h"

namespace gatehouse {
namespace {

using nlohmann::json;

http::FilterFactoryPtr build(const std::string& yaml, std::string* error = nullptr) {
  return testutil::buildPolicy("transform", yaml, error);
}

std::string buildError(const std::string& yaml) {
  std::string error;
  EXPECT_FALSE(build(yaml, &error)) << yaml;
  return error;
}

TEST(Transform, ConfigErrorsNameTheOptionAndLine) {
  auto e = buildError("request:\n  headers:\n    set:\n      X-A: \"{{ requst.path }}\"\n");
  EXPECT_NE(e.find("request.headers.set.X-A (line 4): template column 4: unknown variable"),
            std::string::npos)
      << e;
  e = buildError("response:\n  body:\n    - remove: a/b\n");
  EXPECT_NE(e.find("response.body[0].remove (line 3)"), std::string::npos) << e;
  e = buildError("request:\n  headers:\n    set: {X-A: \"{{ response.status }}\"}\n");
  EXPECT_NE(e.find("not available here"), std::string::npos) << e;
  EXPECT_NE(buildError("request: {body: [{set: /a, remove: /b, value: 1}]}").find("one operation"),
            std::string::npos);
  EXPECT_NE(buildError("{}").find("no transformation"), std::string::npos);
  EXPECT_NE(buildError("request: {headers: {remove: [content-length]}}").find("framing"),
            std::string::npos);
  EXPECT_NE(buildError("on_non_json: maybe\nrequest: {method: POST}").find("on_non_json"),
            std::string::npos);
}

TEST(Transform, RequestHeadersQueryPathMethod) {
  auto f = build(R"(
request:
  method: POST
  path: "/v2/users/{{ request.params.id }}"
  headers:
    remove: [X-Debug]
    rename: {X-Old: X-New}
    set: {X-User: "{{ consumer.name | default \"anon\" }}", X-Path: "{{ request.path }}"}
    add: {X-Tag: "t"}
  query:
    remove: [secret]
    rename: {p: page}
    set: {src: "{{ request.header.X-Src }} gw"}
)");
  ASSERT_TRUE(f);
  EXPECT_FALSE(f->wantsRequestBody());
  http::RequestContext ctx;
  ctx.request.method = "GET";
  ctx.request.path = "/users/7";
  ctx.request.query = "p=2&secret=x&src=old&keep";
  ctx.path_params.push_back({"id", "7"});
  ctx.request.headers.add("X-Debug", "1");
  ctx.request.headers.add("X-Old", "o");
  ctx.request.headers.add("X-Src", "a&b");
  auto ref = f->create();
  EXPECT_EQ(ref.filter->onRequestHeaders(ctx), http::Verdict::kContinue);
  EXPECT_EQ(ctx.request.method, "POST");
  EXPECT_EQ(ctx.request.path, "/v2/users/7");
  EXPECT_EQ(ctx.request.query, "page=2&keep&src=a%26b%20gw");
  const auto& h = ctx.request.headers;
  EXPECT_FALSE(h.has("x-debug"));
  EXPECT_FALSE(h.has("x-old"));
  EXPECT_EQ(h.get("x-new"), "o");
  EXPECT_EQ(h.get("x-user"), "anon");
  EXPECT_EQ(h.get("x-path"), "/users/7");  // templates read the request as it came
  EXPECT_EQ(h.get("x-tag"), "t");
}

TEST(Transform, RenderedPathsCannotBreakTheRequestLine) {
  auto f = build("request: {path: \"/u/{{ request.header.x-name }}/%41\"}");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.headers.add("x-name", "a b?c#d%zz\x01");
  auto ref = f->create();
  ref.filter->onRequestHeaders(ctx);
  EXPECT_EQ(ctx.request.path, "/u/a%20b%3Fc%23d%25zz%01/%41");
  EXPECT_NE(buildError("request: {query: {add: {\"a b\": x}}}").find("invalid query parameter"),
            std::string::npos);
}

TEST(Transform, HeaderValuesWithLineBreaksAreLeftOut) {
  auto f = build("request: {headers: {set: {X-Q: \"{{ request.query.q }}\"}}}");
  ASSERT_TRUE(f);
  http::RequestContext ctx;
  ctx.request.query = "q=a%0d%0aInjected:%201";
  auto ref = f->create();
  ref.filter->onRequestHeaders(ctx);
  EXPECT_FALSE(ctx.request.headers.has("x-q"));
}

constexpr const char* kBodyRules = R"(
request:
  body:
    - set: /meta/source
      value: "gw-{{ request.header.X-Tenant }}"
    - add: /meta/version
      value: 2
    - add: /name
      value: ignored
    - remove: /password
    - rename: /userName
      to: user_name
    - move: /tmp
      to: /meta/tmp
    - set: /id
      value_json: "{{ request.params.id }}"
    - map: /items
      rules:
        - remove: /internal
        - set: /seen
          value: true
    - wrap: data
)";

TEST(Transform, RequestJsonBodyRules) {
  auto f = build(kBodyRules);
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->wantsRequestBody());
  http::RequestContext ctx;
  ctx.request.headers.add("content-type", "application/json; charset=utf-8");
  ctx.request.headers.add("x-tenant", "acme");
  ctx.path_params.push_back({"id", "12"});
  auto ref = f->create();
  ref.filter->onRequestHeaders(ctx);
  EXPECT_EQ(ctx.buffer_request_body, 1024u * 1024u);
  std::string body = R"({"name": "n", "password": "p", "userName": "u", "tmp": [1],
                         "items": [{"internal": 1, "a": 1}, {"a": 2}]})";
  EXPECT_EQ(ref.filter->onRequestBody(ctx, body, true), http::Verdict::kContinue);
  EXPECT_EQ(json::parse(body), json::parse(R"({"data": {"name": "n", "user_name": "u", "id": 12,
      "meta": {"source": "gw-acme", "version": 2, "tmp": [1]},
      "items": [{"a": 1, "seen": true}, {"a": 2, "seen": true}]}})"));
}

TEST(Transform, NonJsonRequestBodyRejectedOrPassed) {
  auto reject = build("request: {body: [{remove: /a}]}");
  http::RequestContext ctx;
  ctx.request.headers.add("content-type", "text/plain");
  auto ref = reject->create();
  ref.filter->onRequestHeaders(ctx);
  std::string body = "hello";
  EXPECT_EQ(ref.filter->onRequestBody(ctx, body, true), http::Verdict::kRespond);
  EXPECT_EQ(ctx.local_reply.status, 415);

  auto pass = build("on_non_json: pass\nrequest: {body: [{remove: /a}]}");
  http::RequestContext ctx2;
  ctx2.request.headers.add("content-type", "application/json");
  auto ref2 = pass->create();
  ref2.filter->onRequestHeaders(ctx2);
  std::string broken = "{\"a\": ";
  EXPECT_EQ(ref2.filter->onRequestBody(ctx2, broken, true), http::Verdict::kContinue);
  EXPECT_EQ(broken, "{\"a\": ");
}

// Runs the response phases over `body` delivered in two chunks; returns what the client gets.
std::string respond(const http::FilterFactoryPtr& f, http::RequestContext& ctx, std::string body) {
  ctx.response_started = true;
  ctx.response.content_length = body.size();
  auto ref = f->create();
  ref.filter->onRequestHeaders(ctx);
  if (ref.filter->onResponseHeaders(ctx) == http::Verdict::kRespond) {
    ctx.response.status = ctx.local_reply.status;  // as the core sends it
    return ctx.local_reply.body;
  }
  if (!ctx.hold_response_head) return body;
  std::string first = body.substr(0, body.size() / 2), second = body.substr(body.size() / 2);
  ref.filter->onResponseBody(ctx, first, false);
  EXPECT_EQ(first, "");  // held until the end
  ref.filter->onResponseBody(ctx, second, true);
  return second;
}

TEST(Transform, ResponseStatusHeadersBodyAndEtag) {
  auto f = build(R"(
response:
  status:
    - {from: 200, to: 502, when_exists: /error}
    - {from: 404, to: 204}
  headers:
    set: {X-Count: "{{ response.body./count }}"}
  body:
    - unwrap: /data
)");
  ASSERT_TRUE(f);
  EXPECT_TRUE(f->wantsResponseBody());
  {
    http::RequestContext ctx;
    ctx.response.status = 200;
    ctx.response.headers.add("content-type", "application/json");
    ctx.response.headers.add("etag", "\"v1\"");
    std::string out = respond(f, ctx, R"({"count": 2, "data": {"x": 1}})");
    EXPECT_EQ(ctx.response.status, 200);
    EXPECT_EQ(out, R"({"x":1})");
    EXPECT_EQ(ctx.response.headers.get("x-count"), "2");
    EXPECT_EQ(ctx.response.headers.get("etag"), "W/\"v1\"");
  }
  {
    http::RequestContext ctx;
    ctx.response.status = 200;
    ctx.response.headers.add("content-type", "application/json");
    respond(f, ctx, R"({"error": "boom"})");
    EXPECT_EQ(ctx.response.status, 502);
  }
  {
    http::RequestContext ctx;
    ctx.response.status = 404;
    ctx.response.headers.add("content-type", "application/json");
    EXPECT_EQ(respond(f, ctx, R"({"error": "none"})"), "");
    EXPECT_EQ(ctx.response.status, 204);
  }
}

TEST(Transform, OversizedOrNonJsonResponseIs502) {
  auto f = build("max_body_size: 16\nresponse: {body: [{remove: /a}]}");
  http::RequestContext ctx;
  ctx.response.status = 200;
  ctx.response.headers.add("content-type", "application/json");
  std::string out = respond(f, ctx, R"({"a": "0123456789abcdef"})");
  EXPECT_EQ(ctx.response.status, 502);
  EXPECT_NE(out.find("too large"), std::string::npos);

  auto g = build("response: {body: [{remove: /a}]}");
  http::RequestContext ctx2;
  ctx2.response.status = 200;
  ctx2.response.headers.add("content-type", "text/html");
  respond(g, ctx2, "<p>hi</p>");
  EXPECT_EQ(ctx2.response.status, 502);  // judged by its head, never read

  // Passed: a non-JSON body is not even held (an event stream must flow).
  auto h = build("on_non_json: pass\nresponse: {body: [{remove: /a}]}");
  http::RequestContext ctx3;
  ctx3.response.status = 200;
  ctx3.response.headers.add("content-type", "text/event-stream");
  EXPECT_EQ(respond(h, ctx3, "data: x\n\n"), "data: x\n\n");
  EXPECT_FALSE(ctx3.hold_response_head);
  EXPECT_EQ(ctx3.response_body_declines, 1);
}

TEST(Transform, KeyOrderIsKept) {
  auto f = build("response: {body: [{remove: /a}, {set: /b, value: 0}, {set: /new, value: 1}]}");
  http::RequestContext ctx;
  ctx.response.status = 200;
  ctx.response.headers.add("content-type", "application/json");
  EXPECT_EQ(respond(f, ctx, R"({"z": 1, "a": 2, "m": 3, "b": {"y": 1, "c": 2}})"),
            R"({"z":1,"m":3,"b":0,"new":1})");
}

TEST(Transform, CodedResponseBodyPassesThrough) {
  auto f = build("response: {body: [{remove: /a}]}");
  http::RequestContext ctx;
  ctx.response_started = true;
  ctx.response.status = 200;
  ctx.response.headers.add("content-type", "application/json");
  ctx.response.headers.add("content-encoding", "gzip");
  ctx.response.content_length = 10;
  auto ref = f->create();
  ref.filter->onResponseHeaders(ctx);
  EXPECT_FALSE(ctx.hold_response_head);
  EXPECT_EQ(ctx.response_body_declines, 1);
}

}  // namespace
}  // namespace gatehouse
