#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include <yaml-cpp/yaml.h>

#include "config/loader.h"
#include "config_test_util.h"

namespace gatehouse::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

// ---------------------------------------------------------------------------------------------
// Validation rules, one test (or a few cases) each

TEST(ConfigValidation, DuplicateNames) {
  EXPECT_CONFIG_ERROR(onlyError(R"(listeners:
  - {name: a, port: 1000}
  - {name: a, port: 1001}
)"),
                      3, "listeners[1].name", "duplicate listener name 'a'");
  EXPECT_CONFIG_ERROR(onlyError(R"(clusters:
  - {name: c, endpoints: ["127.0.0.1:1"]}
  - {name: c, endpoints: ["127.0.0.1:2"]}
)"),
                      3, "clusters[1].name", "duplicate cluster name 'c' (first at line 2)");
  EXPECT_CONFIG_ERROR(onlyError(R"(virtual_hosts:
  - {name: v, domains: [a.com]}
  - {name: v, domains: [b.com]}
)"),
                      3, "virtual_hosts[1].name", "duplicate virtual host name 'v'");
  EXPECT_CONFIG_ERROR(onlyError(R"(virtual_hosts:
  - name: v
    routes:
      - {name: r, direct_response: {status: 200}}
      - {name: r, direct_response: {status: 201}}
)"),
                      5, "virtual_hosts[0].routes[1].name",
                      "duplicate route name 'r' in virtual host 'v' (first at line 4)");
  // The same route name in two virtual hosts is fine.
  loadOk(R"(virtual_hosts:
  - {name: v, domains: [a.com], routes: [{name: r, direct_response: {status: 200}}]}
  - {name: w, domains: [b.com], routes: [{name: r, direct_response: {status: 200}}]}
)");
}

TEST(ConfigValidation, RouteNeedsExactlyOneAction) {
  EXPECT_CONFIG_ERROR(
      onlyError("routes:\n  - match: {path_prefix: /}\n"), 2, "routes[0]",
      "route needs exactly one action: cluster, clusters, direct_response or redirect");
  EXPECT_CONFIG_ERROR(onlyError(R"(clusters: [{name: c, endpoints: ["127.0.0.1:1"]}]
routes:
  - cluster: c
    redirect: {location: /x}
)"),
                      4, "routes[0].redirect",
                      "a route has exactly one action; 'cluster' is already set");
}

TEST(ConfigValidation, RewriteAndTimeoutNeedClusterAction) {
  LoadResult r = load(R"(routes:
  - direct_response: {status: 200}
    rewrite: {strip_prefix: /a}
    timeout: 1s
)");
  ASSERT_EQ(r.errors.size(), 2u) << dump(r);
  EXPECT_CONFIG_ERROR(r.errors[0], 3, "routes[0].rewrite",
                      "'rewrite' applies only to routes that forward to a cluster");
  EXPECT_CONFIG_ERROR(r.errors[1], 4, "routes[0].timeout", "'timeout' applies only");
}

TEST(ConfigValidation, ListenerVirtualHostsMustExist) {
  EXPECT_CONFIG_ERROR(onlyError(R"(listeners:
  - {name: l, port: 80, virtual_hosts: [api, web]}
virtual_hosts: [{name: api}]
)"),
                      2, "listeners[0].virtual_hosts[1]", "unknown virtual host 'web'");
}

TEST(ConfigValidation, ListenerVirtualHostsNotEmpty) {
  EXPECT_CONFIG_ERROR(onlyError("listeners:\n  - {port: 80, virtual_hosts: []}\n"), 2,
                      "listeners[0].virtual_hosts", "must not be empty");
}

TEST(ConfigValidation, AtMostOnePathMatcher) {
  EXPECT_CONFIG_ERROR(onlyError(R"(routes:
  - match: {path_prefix: /a, path_exact: /a}
    direct_response: {status: 200}
)"),
                      2, "routes[0].match.path_exact",
                      "only one path matcher is allowed per route; 'path_prefix' is already set");
}

TEST(ConfigValidation, PathsStartWithSlash) {
  for (std::string key : {"path_exact", "path_prefix", "path_template"}) {
    ConfigError e =
        onlyError("routes:\n  - match: {" + key + ": users}\n    " + std::string(kOkRoute) + "\n");
    EXPECT_CONFIG_ERROR(e, 2, "routes[0].match." + key, "must start with '/'");
  }
  EXPECT_CONFIG_ERROR(
      onlyError("routes:\n  - match: {path_exact: \"/a b\"}\n    " + std::string(kOkRoute)), 2,
      "routes[0].match.path_exact", "must not contain spaces");
}

TEST(ConfigValidation, RegexesMustCompile) {
  ConfigError e = onlyError(R"(routes:
  - match:
      path_regex: "/users/(["
    direct_response: {status: 200}
)");
  EXPECT_CONFIG_ERROR(e, 3, "routes[0].match.path_regex", "invalid regex: missing ]");
  ConfigError h = onlyError(R"(routes:
  - match: {headers: [{name: x-v, regex: "a{2,1}"}]}
    direct_response: {status: 200}
)");
  EXPECT_CONFIG_ERROR(h, 2, "routes[0].match.headers[0].regex",
                      "invalid regex: invalid repetition size: {2,1}");
  // Backreferences are not RE2 syntax (RE2 stays linear-time).
  EXPECT_THAT(onlyError("routes: [{match: {path_regex: '(a)\\1'}, direct_response: {}}]").message,
              HasSubstr("invalid regex"));
}

TEST(ConfigValidation, PathTemplates) {
  auto templ = [](std::string t) {
    return "routes: [{match: {path_template: \"" + t + "\"}, " + std::string(kOkRoute) + "}]";
  };
  loadOk(templ("/users/{id}/orders/{order_id}/"));
  loadOk(templ("/"));
  EXPECT_CONFIG_ERROR(onlyError(templ("/users/id{id}")), 1, "routes[0].match.path_template",
                      "must be a whole segment like /items/{id}");
  EXPECT_THAT(onlyError(templ("/users/{id}/x/{id}")).message, HasSubstr("duplicate variable 'id'"));
  EXPECT_THAT(onlyError(templ("/users/{1x}")).message, HasSubstr("invalid variable name '1x'"));
  EXPECT_THAT(onlyError(templ("/users/{a{b}}")).message, HasSubstr("whole segment"));
  EXPECT_THAT(onlyError(templ("/users//x")).message, HasSubstr("empty path segment"));
}

TEST(ConfigValidation, MethodsAreTokensAndUpperCased) {
  Config c = loadOk("routes: [{match: {methods: [get, Post, PURGE]}, direct_response: {}}]");
  EXPECT_THAT(c.virtual_hosts[0].routes[0].match.methods, ElementsAre("GET", "POST", "PURGE"));
  EXPECT_CONFIG_ERROR(onlyError("routes:\n  - match: {methods: [GET, \"BAD METHOD\"]}\n"
                                "    direct_response: {}\n"),
                      2, "routes[0].match.methods[1]", "'BAD METHOD' is not a valid HTTP method");
  EXPECT_THAT(onlyError("routes: [{match: {methods: [GET, get]}, direct_response: {}}]").message,
              HasSubstr("duplicate method 'GET'"));
}

TEST(ConfigValidation, HeaderMatchNeedsExactlyOneCondition) {
  EXPECT_CONFIG_ERROR(onlyError(R"(routes:
  - match:
      headers:
        - {name: x-a, exact: "1", present: true}
    direct_response: {}
)"),
                      4, "routes[0].match.headers[0]",
                      "needs exactly one of exact, regex, present");
  EXPECT_CONFIG_ERROR(onlyError(R"(routes:
  - match:
      query:
        - {name: q}
    direct_response: {}
)"),
                      4, "routes[0].match.query[0]", "needs exactly one of exact, regex, present");
  EXPECT_CONFIG_ERROR(onlyError(R"(routes:
  - match:
      headers: [{name: "bad name", present: true}]
    direct_response: {}
)"),
                      3, "routes[0].match.headers[0].name", "not a valid header name");
  EXPECT_CONFIG_ERROR(onlyError(R"(routes:
  - match:
      headers: [{exact: "1"}]
    direct_response: {}
)"),
                      3, "routes[0].match.headers[0].name", "missing required option 'name'");
}

TEST(ConfigValidation, RedirectStatusAndParts) {
  EXPECT_CONFIG_ERROR(onlyError("routes:\n  - redirect: {status: 300, location: /x}\n"), 2,
                      "routes[0].redirect.status",
                      "must be one of 301, 302, 303, 307, 308, got 300");
  EXPECT_CONFIG_ERROR(onlyError("routes:\n  - redirect: {status: 301}\n"), 2, "routes[0].redirect",
                      "redirect needs 'location' or at least one of");
  EXPECT_CONFIG_ERROR(onlyError("routes:\n  - redirect: {strip_query: false}\n"), 2,
                      "routes[0].redirect", "redirect needs 'location' or at least one of");
  loadOk("routes: [{redirect: {strip_query: true}}]");
  EXPECT_CONFIG_ERROR(onlyError("routes:\n  - redirect: {location: /x, host: a.com}\n"), 2,
                      "routes[0].redirect.host", "cannot be combined with 'host'");
  EXPECT_CONFIG_ERROR(onlyError("routes:\n  - redirect: {scheme: ftp}\n"), 2,
                      "routes[0].redirect.scheme", "must be http or https");
  for (int status : {301, 302, 303, 307, 308}) {
    loadOk("routes: [{redirect: {status: " + std::to_string(status) + ", path: /x}}]");
  }
}

TEST(ConfigValidation, DirectResponseStatus) {
  EXPECT_CONFIG_ERROR(onlyError("routes:\n  - direct_response: {status: 199}\n"), 2,
                      "routes[0].direct_response.status", "must be between 200 and 599, got 199");
  EXPECT_CONFIG_ERROR(onlyError("routes:\n  - direct_response: {status: 600}\n"), 2,
                      "routes[0].direct_response.status", "must be between 200 and 599");
  Config c = loadOk("routes: [{direct_response: {}}]");
  EXPECT_EQ(c.virtual_hosts[0].routes[0].direct_response->status, 200);
  EXPECT_EQ(c.virtual_hosts[0].routes[0].direct_response->content_type, "text/plain");
}

TEST(ConfigValidation, Rewrite) {
  auto route = [](std::string rewrite) {
    return "clusters: [{name: c, endpoints: [\"127.0.0.1:1\"]}]\nroutes:\n  - cluster: c\n"
           "    rewrite: " +
           rewrite + "\n";
  };
  EXPECT_CONFIG_ERROR(onlyError(route("{regex: \"^/(a)\", regex_replace: \"/\\\\2\"}")), 4,
                      "routes[0].rewrite.regex_replace", "");
  EXPECT_CONFIG_ERROR(onlyError(route("{regex: \"^/a\"}")), 4, "routes[0].rewrite.regex",
                      "'regex' needs 'regex_replace'");
  EXPECT_CONFIG_ERROR(onlyError(route("{strip_prefix: /a, regex: a, regex_replace: b}")), 4,
                      "routes[0].rewrite.regex", "use either strip_prefix or regex, not both");
  EXPECT_CONFIG_ERROR(onlyError(route("{host: \"bad host\"}")), 4, "routes[0].rewrite.host",
                      "is not a valid host[:port]");
  loadOk(route("{host: \"users.internal:8443\"}"));
}

TEST(ConfigValidation, ClusterEndpoints) {
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - {name: c, endpoints: []}\n"), 2,
                      "clusters[0].endpoints", "a cluster needs at least one endpoint");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - {name: c}\n"), 2, "clusters[0].endpoints",
                      "missing required option 'endpoints'");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [{host: a, port: 1, "
                                "weight: 0}]\n"),
                      3, "clusters[0].endpoints[0].weight", "must be between 1 and 10000, got 0");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [{host: a, port: 1, "
                                "weight: 10001}]\n"),
                      3, "clusters[0].endpoints[0].weight", "must be between 1 and 10000");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [\"::1:80\"]\n"), 3,
                      "clusters[0].endpoints[0]", "needs brackets, like [::1]:9003");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [\"a.com:0\"]\n"), 3,
                      "clusters[0].endpoints[0]", "port must be between 1 and 65535");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [\"a.com\"]\n"), 3,
                      "clusters[0].endpoints[0]", "expected host:port");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [\"bad_-.host:1\"]\n"), 3,
                      "clusters[0].endpoints[0]", "not an IP address or a valid DNS name");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [\"10.0.0.300:1\"]\n"), 3,
                      "clusters[0].endpoints[0]", "not an IP address or a valid DNS name");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [a:1, \"a:1\"]\n"), 3,
                      "clusters[0].endpoints[1]", "duplicate endpoint a:1");
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - name: c\n    endpoints: [{host: a}]\n"), 3,
                      "clusters[0].endpoints[0].port", "missing required option 'port'");
  Config c = loadOk("clusters: [{name: c, endpoints: [{host: \"[::1]\", port: 1}]}]");
  EXPECT_EQ(c.clusters[0].endpoints[0].host, "::1");
}

TEST(ConfigValidation, ClusterLbAndPool) {
  EXPECT_CONFIG_ERROR(onlyError("clusters:\n  - {name: c, lb: fastest, endpoints: [a:1]}\n"), 2,
                      "clusters[0].lb",
                      "unknown lb algorithm 'fastest'; expected one of: round_robin, least_conn");
  EXPECT_CONFIG_ERROR(
      onlyError("clusters:\n  - {name: c, endpoints: [a:1],\n"
                "     pool_max_per_endpoint: 10, pool_max_idle_per_endpoint: 11}\n"),
      3, "clusters[0].pool_max_idle_per_endpoint", "must not exceed pool_max_per_endpoint (10)");
}

TEST(ConfigValidation, Domains) {
  Config c = loadOk(
      "virtual_hosts: [{name: v, domains: [\"Api.EXAMPLE.com\", \"*.Example.com\", "
      "\"[::1]\", 10.1.2.3]}]");
  EXPECT_THAT(c.virtual_hosts[0].domains,
              ElementsAre("api.example.com", "*.example.com", "[::1]", "10.1.2.3"));
  for (std::string bad : {"api.*.com", "*api.com", "**", "a.*", "*.*.com"}) {
    ConfigError e = onlyError("virtual_hosts:\n  - {name: v, domains: [ok.com, \"" + bad + "\"]}");
    EXPECT_CONFIG_ERROR(e, 2, "virtual_hosts[0].domains[1]",
                        "a wildcard is allowed only as a leading '*.' or as exactly '*'");
  }
  EXPECT_THAT(onlyError("virtual_hosts: [{name: v, domains: [\"a.com:80\"]}]").message,
              HasSubstr("must not include a port"));
  EXPECT_THAT(onlyError("virtual_hosts: [{name: v, domains: [a.com, A.com]}]").message,
              HasSubstr("duplicate domain 'a.com'"));
}

TEST(ConfigValidation, DuplicateDomainOnOneListener) {
  LoadResult r = load(R"(virtual_hosts:
  - {name: a, domains: [api.example.com, "*"]}
  - {name: b, domains: [www.example.com, API.example.com]}
)");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_CONFIG_ERROR(r.errors[0], 3, "virtual_hosts[1].domains[1]",
                      "domain 'api.example.com' is already served by virtual host 'a' on "
                      "listener 'default'");
  // Top-level routes claim "*" too.
  EXPECT_CONFIG_ERROR(onlyError("virtual_hosts: [{name: a}]\nroutes: []\n"), 2, "routes",
                      "domain '*' is already served by virtual host 'a'");
  // Separate listeners may serve the same domain from different virtual hosts.
  loadOk(R"(listeners:
  - {name: l1, port: 8080, virtual_hosts: [a]}
  - {name: l2, port: 8081, virtual_hosts: [b]}
virtual_hosts:
  - {name: a, domains: [api.example.com]}
  - {name: b, domains: [api.example.com]}
)");
}

TEST(ConfigValidation, TrustedProxies) {
  EXPECT_CONFIG_ERROR(onlyError("forwarded:\n  trusted_proxies: [10.0.0.0/8, 10.0.0.0/33]\n"), 2,
                      "forwarded.trusted_proxies[1]", "invalid CIDR: prefix length must be 0..32");
  EXPECT_CONFIG_ERROR(onlyError("forwarded:\n  trusted_proxies: [10.0.0.1/8]\n"), 2,
                      "forwarded.trusted_proxies[0]",
                      "host bits are set in '10.0.0.1/8'; did you mean '10.0.0.0/8'?");
  EXPECT_CONFIG_ERROR(onlyError("forwarded:\n  trusted_proxies: [proxy.local]\n"), 2,
                      "forwarded.trusted_proxies[0]", "is not an IPv4 or IPv6 address");
  Config c = loadOk("forwarded: {trusted_proxies: [\"fd00::/8\", \"0:0::1\", 0.0.0.0/0]}");
  EXPECT_THAT(c.forwarded.trusted_proxies, ElementsAre("fd00::/8", "::1/128", "0.0.0.0/0"));
}

TEST(ConfigValidation, ListenerAddressIsIpLiteral) {
  EXPECT_CONFIG_ERROR(onlyError("listeners:\n  - {name: l, address: localhost, port: 80}\n"), 2,
                      "listeners[0].address", "'localhost' is not an IP address");
  Config c = loadOk("listeners: [{address: \"::\", port: 8443}]");
  EXPECT_EQ(c.listeners[0].name, "[::]:8443");  // default name
}

TEST(ConfigValidation, AccessLogFields) {
  EXPECT_CONFIG_ERROR(onlyError("access_log:\n  fields: [time, latency]\n"), 2,
                      "access_log.fields[1]", "unknown field 'latency'; expected one of: time,");
  EXPECT_CONFIG_ERROR(onlyError("access_log: {fields: []}"), 1, "access_log.fields",
                      "must not be empty");
  EXPECT_CONFIG_ERROR(onlyError("access_log: {fields: [time, time]}"), 1, "access_log.fields[1]",
                      "duplicate field 'time'");
  std::string all = "access_log: {fields: [";
  for (std::string_view f : kAccessLogFields)
    all += std::string(f) + ",";
  all.back() = ']';
  all += "}";
  EXPECT_EQ(loadOk(all).access_log.fields.size(), kAccessLogFields.size());
  for (std::string_view f : kDefaultAccessLogFields) {
    EXPECT_NE(std::find(kAccessLogFields.begin(), kAccessLogFields.end(), f),
              kAccessLogFields.end());
  }
}

TEST(ConfigValidation, ListenersMustNotShareAddressAndPort) {
  EXPECT_CONFIG_ERROR(onlyError(R"(listeners:
  - {name: a, address: 127.0.0.1, port: 8080}
  - {name: b, address: 127.0.0.1, port: 8080}
)"),
                      3, "listeners[1].port",
                      "listener 'b' on 127.0.0.1:8080 overlaps listener 'a' on 127.0.0.1:8080");
  // A wildcard address overlaps every address of its family on the same port.
  EXPECT_CONFIG_ERROR(onlyError(R"(listeners:
  - {name: a, address: 0.0.0.0, port: 8080}
  - {name: b, address: 10.1.1.1, port: 8080}
)"),
                      3, "listeners[1].port", "overlaps listener 'a' on 0.0.0.0:8080");
  loadOk(R"(listeners:
  - {name: a, address: 127.0.0.1, port: 8080}
  - {name: b, address: 127.0.0.2, port: 8080}
  - {name: c, address: 127.0.0.1, port: 8081}
)");
}

TEST(ConfigValidation, AdminPortMustNotClashWithListener) {
  EXPECT_CONFIG_ERROR(onlyError(R"(listeners: [{name: a, address: 127.0.0.1, port: 9000}]
admin:
  port: 9000
)"),
                      3, "admin.port",
                      "admin port 9000 on 127.0.0.1 overlaps listener 'a' on 127.0.0.1:9000");
  // The default admin port clashes with a listener put there.
  EXPECT_CONFIG_ERROR(onlyError("listeners:\n  - {name: a, port: 9901}\n"), 2, "listeners[0].port",
                      "admin port 9901 on 127.0.0.1 overlaps listener 'a'");
  loadOk("listeners: [{port: 9901}]\nadmin: {enabled: false}\n");
  loadOk("listeners: [{address: 127.0.0.1, port: 9000}]\nadmin: {address: 127.0.0.2, port: 9000}");
}

TEST(ConfigValidation, Policies) {
  Config c = loadOk(R"(virtual_hosts:
  - name: v
    policies:
      - name: headers
      - name: rate_limit
        config: {rps: 10, anything: [goes, here]}
)");
  const auto& p = c.virtual_hosts[0].policies;
  ASSERT_EQ(p.size(), 2u);
  EXPECT_TRUE(p[0].config->IsNull());
  EXPECT_EQ(p[1].name, "rate_limit");
  EXPECT_EQ(p[1].line, 5);
  EXPECT_EQ(p[1].yaml_path, "virtual_hosts[0].policies[1]");
  EXPECT_EQ((*p[1].config)["rps"].as<int>(), 10);

  EXPECT_CONFIG_ERROR(onlyError("virtual_hosts:\n  - name: v\n    policies: [headers]\n"), 3,
                      "virtual_hosts[0].policies[0]", "expected a map, got 'headers'");
  EXPECT_CONFIG_ERROR(onlyError("virtual_hosts:\n  - name: v\n    policies: [{config: {}}]\n"), 3,
                      "virtual_hosts[0].policies[0].name", "missing required option 'name'");
  EXPECT_CONFIG_ERROR(
      onlyError("virtual_hosts:\n  - name: v\n    policies: [{name: a, confg: 1}]\n"), 3,
      "virtual_hosts[0].policies[0].confg", "did you mean 'config'?");
  EXPECT_CONFIG_ERROR(onlyError("virtual_hosts:\n  - name: v\n    policies: [{name: [a]}]\n"), 3,
                      "virtual_hosts[0].policies[0].name", "expected a string, got a list");
}

}  // namespace
}  // namespace gatehouse::config
