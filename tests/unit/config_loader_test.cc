#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "config/syntax.h"
#include "config/yaml_helpers.h"
#include "config_test_util.h"

namespace gatehouse::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace test_util;  // NOLINT: test helpers

// ---------------------------------------------------------------------------------------------
// Full documents

constexpr std::string_view kFullConfig = R"yaml(workers: 2
watch: false
listeners:
  - {name: public, address: 127.0.0.1, port: 8080, virtual_hosts: [api]}
  - {name: internal, address: "::1", port: 8081}
admin: {enabled: true, address: 127.0.0.1, port: 9901}
access_log: {enabled: true, path: /var/log/gh.log, fields: [time, request_id, method, path, status]}
timeouts: {client_header: 10s, client_body: 1m, keepalive_idle: 90s, upstream_connect: 250ms,
           upstream_response: 1.5s, upstream_idle: 2m, request_total: 0, drain: 1h}
limits: {max_request_line: 8KiB, max_header_bytes: 64KiB, max_headers: 50, max_body_bytes: 10MiB}
path_normalization: {merge_slashes: false, decode_unreserved: true, reject_encoded_slash: off}
forwarded: {trusted_proxies: [10.0.0.0/8, "::1/128", 192.168.1.7], request_id: true,
            request_id_header: X-Trace-Id}
clusters:
  - name: users
    lb: round_robin
    pool_max_per_endpoint: 512
    pool_max_idle_per_endpoint: 64
    connect_timeout: 2s
    response_timeout: 10s
    idle_timeout: 30s
    endpoints:
      - {host: 127.0.0.1, port: 9001, weight: 2}
      - "127.0.0.1:9002"
      - "[::1]:9003"
      - {host: users.internal, port: 80}
  - name: orders
    endpoints: ["orders.svc:8080"]
virtual_hosts:
  - name: api
    domains: ["API.Example.com", "*.example.com", "*"]
    policies: [{name: headers, config: {request: {set: {x-a: b}}}}]
    routes:
      - name: users
        match: {path_prefix: /users, methods: [get, POST],
                headers: [{name: X-Canary, exact: "1"}, {name: x-debug, present: false},
                          {name: x-v, regex: "^v[0-9]+$"}],
                query: [{name: version, exact: "2"}]}
        cluster: users
        rewrite: {strip_prefix: /users, host: users.internal}
        timeout: 5s
        policies:
          - name: headers
            config: {request: {set: {x-a: b}}}
      - match: {path_exact: /old}
        redirect: {status: 301, location: "https://new.example.com/"}
      - match: {path_template: "/items/{id}"}
        direct_response: {status: 200, body: "hi", content_type: text/plain}
      - match: {path_regex: "^/v1/.*"}
        cluster: orders
        rewrite: {regex: "^/v1/(.*)", regex_replace: "/\\1"}
      - redirect: {scheme: https, host: secure.example.com, strip_query: true}
)yaml";

TEST(ConfigLoader, FullConfigRoundTrips) {
  Config c = loadOk(kFullConfig);
  EXPECT_EQ(c.source_file, "test.yaml");
  EXPECT_EQ(c.workers, 2);
  EXPECT_FALSE(c.watch);

  ASSERT_EQ(c.listeners.size(), 2u);
  EXPECT_EQ(c.listeners[0].name, "public");
  EXPECT_EQ(c.listeners[0].address, "127.0.0.1");
  EXPECT_EQ(c.listeners[0].port, 8080);
  EXPECT_THAT(c.listeners[0].virtual_hosts, ElementsAre("api"));
  EXPECT_EQ(c.listeners[1].address, "::1");
  EXPECT_TRUE(c.listeners[1].virtual_hosts.empty());

  EXPECT_TRUE(c.admin.enabled);
  EXPECT_EQ(c.admin.port, 9901);
  EXPECT_EQ(c.access_log.path, "/var/log/gh.log");
  EXPECT_THAT(c.access_log.fields, ElementsAre("time", "request_id", "method", "path", "status"));

  EXPECT_EQ(c.timeouts.client_header, Millis(10000));
  EXPECT_EQ(c.timeouts.client_body, Millis(60000));
  EXPECT_EQ(c.timeouts.keepalive_idle, Millis(90000));
  EXPECT_EQ(c.timeouts.upstream_connect, Millis(250));
  EXPECT_EQ(c.timeouts.upstream_response, Millis(1500));
  EXPECT_EQ(c.timeouts.upstream_idle, Millis(120000));
  EXPECT_EQ(c.timeouts.request_total, Millis(0));
  EXPECT_EQ(c.timeouts.drain, Millis(3600000));

  EXPECT_EQ(c.limits.max_request_line, 8192u);
  EXPECT_EQ(c.limits.max_header_bytes, 65536u);
  EXPECT_EQ(c.limits.max_headers, 50u);
  EXPECT_EQ(c.limits.max_body_bytes, 10u << 20);

  EXPECT_FALSE(c.path_normalization.merge_slashes);
  EXPECT_TRUE(c.path_normalization.decode_unreserved);
  EXPECT_FALSE(c.path_normalization.reject_encoded_slash);

  EXPECT_THAT(c.forwarded.trusted_proxies, ElementsAre("10.0.0.0/8", "::1/128", "192.168.1.7/32"));
  EXPECT_EQ(c.forwarded.request_id_header, "x-trace-id");

  ASSERT_EQ(c.clusters.size(), 2u);
  const Cluster& users = c.clusters[0];
  EXPECT_EQ(users.name, "users");
  EXPECT_EQ(users.line, 15);
  EXPECT_EQ(users.yaml_path, "clusters[0]");
  EXPECT_EQ(c.clusters[1].yaml_path, "clusters[1]");
  EXPECT_EQ(users.lb, "round_robin");
  EXPECT_EQ(users.pool_max_per_endpoint, 512u);
  EXPECT_EQ(users.pool_max_idle_per_endpoint, 64u);
  EXPECT_EQ(users.connect_timeout, Millis(2000));
  EXPECT_EQ(users.response_timeout, Millis(10000));
  EXPECT_EQ(users.idle_timeout, Millis(30000));
  ASSERT_EQ(users.endpoints.size(), 4u);
  EXPECT_EQ(users.endpoints[0].host, "127.0.0.1");
  EXPECT_EQ(users.endpoints[0].port, 9001);
  EXPECT_EQ(users.endpoints[0].weight, 2u);
  EXPECT_EQ(users.endpoints[1].port, 9002);
  EXPECT_EQ(users.endpoints[1].weight, 1u);
  EXPECT_EQ(users.endpoints[2].host, "::1");
  EXPECT_EQ(users.endpoints[2].port, 9003);
  EXPECT_EQ(users.endpoints[3].host, "users.internal");
  EXPECT_FALSE(c.clusters[1].connect_timeout.has_value());
  EXPECT_EQ(c.clusters[1].endpoints[0].host, "orders.svc");
  EXPECT_EQ(c.clusters[1].endpoints[0].port, 8080);

  ASSERT_EQ(c.virtual_hosts.size(), 1u);
  const VirtualHost& api = c.virtual_hosts[0];
  EXPECT_THAT(api.domains, ElementsAre("api.example.com", "*.example.com", "*"));
  ASSERT_EQ(api.policies.size(), 1u);
  EXPECT_EQ(api.policies[0].name, "headers");
  EXPECT_EQ(api.policies[0].yaml_path, "virtual_hosts[0].policies[0]");
  EXPECT_EQ(api.policies[0].line, 32);
  ASSERT_EQ(api.routes.size(), 5u);

  const Route& r0 = api.routes[0];
  EXPECT_EQ(r0.name, "users");
  EXPECT_EQ(r0.yaml_path, "virtual_hosts[0].routes[0]");
  EXPECT_EQ(r0.line, 34);
  EXPECT_EQ(r0.match.path_prefix, "/users");
  EXPECT_THAT(r0.match.methods, ElementsAre("GET", "POST"));
  ASSERT_EQ(r0.match.headers.size(), 3u);
  EXPECT_EQ(r0.match.headers[0].name, "x-canary");
  EXPECT_EQ(r0.match.headers[0].exact, "1");
  EXPECT_EQ(r0.match.headers[1].present, false);
  EXPECT_EQ(r0.match.headers[2].regex, "^v[0-9]+$");
  ASSERT_EQ(r0.match.query.size(), 1u);
  EXPECT_EQ(r0.match.query[0].name, "version");
  EXPECT_EQ(r0.match.query[0].exact, "2");
  EXPECT_EQ(r0.cluster, "users");
  EXPECT_EQ(r0.rewrite.strip_prefix, "/users");
  EXPECT_EQ(r0.rewrite.host, "users.internal");
  EXPECT_EQ(r0.timeout, Millis(5000));
  ASSERT_EQ(r0.policies.size(), 1u);
  const PolicySpec& p = r0.policies[0];
  EXPECT_EQ(p.name, "headers");
  EXPECT_EQ(p.file, "test.yaml");
  EXPECT_EQ(p.yaml_path, "virtual_hosts[0].routes[0].policies[0]");
  EXPECT_EQ(p.line, 43);
  ASSERT_TRUE(p.config && p.config->IsMap());
  EXPECT_EQ((*p.config)["request"]["set"]["x-a"].as<std::string>(), "b");

  const Route& r1 = api.routes[1];
  EXPECT_EQ(r1.name, "api/1");
  EXPECT_EQ(r1.match.path_exact, "/old");
  EXPECT_FALSE(r1.match.path_prefix.has_value());
  ASSERT_TRUE(r1.redirect.has_value());
  EXPECT_EQ(r1.redirect->status, 301);
  EXPECT_EQ(r1.redirect->location, "https://new.example.com/");
  EXPECT_FALSE(r1.cluster.has_value());

  const Route& r2 = api.routes[2];
  EXPECT_EQ(r2.match.path_template, "/items/{id}");
  ASSERT_TRUE(r2.direct_response.has_value());
  EXPECT_EQ(r2.direct_response->status, 200);
  EXPECT_EQ(r2.direct_response->body, "hi");
  EXPECT_EQ(r2.direct_response->content_type, "text/plain");

  const Route& r3 = api.routes[3];
  EXPECT_EQ(r3.match.path_regex, "^/v1/.*");
  EXPECT_EQ(r3.rewrite.regex, "^/v1/(.*)");
  EXPECT_EQ(r3.rewrite.regex_replace, "/\\1");

  const Route& r4 = api.routes[4];
  EXPECT_EQ(r4.match.path_prefix, "/");  // no path matcher = every path
  ASSERT_TRUE(r4.redirect.has_value());
  EXPECT_EQ(r4.redirect->status, 302);
  EXPECT_EQ(r4.redirect->scheme, "https");
  EXPECT_EQ(r4.redirect->host, "secure.example.com");
  EXPECT_TRUE(r4.redirect->strip_query);
}

TEST(ConfigLoader, EmptyDocumentGivesDefaults) {
  for (std::string_view yaml : {"", "# only a comment\n", "{}"}) {
    Config c = loadOk(yaml);
    ASSERT_EQ(c.listeners.size(), 1u) << yaml;
    EXPECT_EQ(c.listeners[0].name, "default");
    EXPECT_EQ(c.listeners[0].address, "0.0.0.0");
    EXPECT_EQ(c.listeners[0].port, 8080);
    EXPECT_EQ(c.workers, 0);
    EXPECT_TRUE(c.watch);
    EXPECT_EQ(c.timeouts.client_header, Millis(10000));
    EXPECT_TRUE(c.admin.enabled);
  }
  Config c = loadOk("{}");
  EXPECT_EQ(c.access_log.fields.size(), kDefaultAccessLogFields.size());
}

TEST(ConfigLoader, PathNormalizationDefaultsRefuseDoubleEncodingAndParameters) {
  const Config defaults = loadOk("{}");
  EXPECT_TRUE(defaults.path_normalization.reject_double_encoding);
  EXPECT_EQ(defaults.path_normalization.path_parameters, PathParameters::kReject);
  const Config strip =
      loadOk("path_normalization: {reject_double_encoding: false, path_parameters: strip}");
  EXPECT_FALSE(strip.path_normalization.reject_double_encoding);
  EXPECT_EQ(strip.path_normalization.path_parameters, PathParameters::kStrip);
  EXPECT_EQ(
      loadOk("path_normalization: {path_parameters: keep}").path_normalization.path_parameters,
      PathParameters::kKeep);
  EXPECT_CONFIG_ERROR(onlyError("path_normalization: {path_parameters: drop}"), 1,
                      "path_normalization.path_parameters",
                      "must be one of reject, strip, keep, got 'drop'");
}

TEST(ConfigLoader, TopLevelRoutesFormDefaultVirtualHost) {
  Config c = loadOk(R"(clusters: [{name: b, endpoints: ["127.0.0.1:1"]}]
routes:
  - match: {path_prefix: /api}
    cluster: b
  - name: fallback
    direct_response: {status: 404}
)");
  ASSERT_EQ(c.virtual_hosts.size(), 1u);
  const VirtualHost& vh = c.virtual_hosts[0];
  EXPECT_EQ(vh.name, "default");
  EXPECT_THAT(vh.domains, ElementsAre("*"));
  ASSERT_EQ(vh.routes.size(), 2u);
  EXPECT_EQ(vh.routes[0].name, "default/0");
  EXPECT_EQ(vh.routes[0].yaml_path, "routes[0]");
  EXPECT_EQ(vh.routes[0].line, 3);
  EXPECT_EQ(vh.routes[1].name, "fallback");
  EXPECT_EQ(vh.routes[1].match.path_prefix, "/");
}

TEST(ConfigLoader, TopLevelRoutesClashWithVirtualHostNamedDefault) {
  LoadResult r = load(R"(virtual_hosts: [{name: default, domains: [a.com], routes: []}]
routes: []
)");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_CONFIG_ERROR(r.errors[0], 2, "routes", "duplicate virtual host name 'default'");
}

TEST(ConfigLoader, VirtualHostWithoutDomainsServesEverything) {
  Config c = loadOk("virtual_hosts: [{name: a}]");
  EXPECT_THAT(c.virtual_hosts[0].domains, ElementsAre("*"));
}

// ---------------------------------------------------------------------------------------------
// Error reporting

TEST(ConfigErrors, FormatNamesFileLinePath) {
  ConfigError e{"gatehouse.yaml", 14, 9, "routes[3].cluster", "unknown cluster 'payments'"};
  EXPECT_EQ(e.format(), "gatehouse.yaml:14:9: routes[3].cluster: unknown cluster 'payments'");
  ConfigError no_pos{"g.yaml", 0, 0, "", "cannot open file"};
  EXPECT_EQ(no_pos.format(), "g.yaml: cannot open file");
}

TEST(ConfigErrors, UnknownClusterHasLineColumnAndPath) {
  LoadResult r = load(R"(clusters:
  - name: users
    endpoints: ["127.0.0.1:9001"]
routes:
  - cluster: users
  - cluster: payments
)");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_EQ(r.errors[0].format(), "test.yaml:6:14: routes[1].cluster: unknown cluster 'payments'");
}

TEST(ConfigErrors, SyntaxErrorHasLine) {
  ConfigError e = onlyError("workers: 2\nlisteners:\n  - {name: a, port: 80\nadmin: {}\n");
  EXPECT_GE(e.line, 3);
  EXPECT_THAT(e.message, HasSubstr("YAML syntax error"));
  ConfigError tab = onlyError("a:\n\t- b\n");
  EXPECT_EQ(tab.line, 2);
}

TEST(ConfigErrors, UnknownKeySuggestsNearMiss) {
  LoadResult r = load(R"(clusters: [{name: b, endpoints: ["127.0.0.1:1"]}]
routes:
  - cluster: b
    tiemout: 5s
)");
  ASSERT_EQ(r.errors.size(), 1u) << dump(r);
  EXPECT_CONFIG_ERROR(r.errors[0], 4, "routes[0].tiemout",
                      "unknown option 'tiemout'; expected one of: name, match, cluster");
  EXPECT_THAT(r.errors[0].message, HasSubstr("(did you mean 'timeout'?)"));
  EXPECT_EQ(r.errors[0].column, 5);

  ConfigError top = onlyError("wrokers: 2\n");
  EXPECT_CONFIG_ERROR(top, 1, "wrokers", "did you mean 'workers'?");
  ConfigError far = onlyError("frobnicate: 2\n");
  EXPECT_THAT(far.message, ::testing::Not(HasSubstr("did you mean")));
}

TEST(ConfigLoader, TopLevelExtensionKeysHoldAnchors) {
  Config c = loadOk(R"(x-endpoints: &eps ["127.0.0.1:1", "127.0.0.1:2"]
clusters:
  - {name: a, endpoints: *eps}
)");
  EXPECT_EQ(c.clusters[0].endpoints.size(), 2u);
  // Only at the top level.
  EXPECT_CONFIG_ERROR(onlyError("admin: {x-note: hi}"), 1, "admin.x-note", "unknown option");
}

TEST(ConfigErrors, DuplicateYamlKey) {
  ConfigError e = onlyError("workers: 1\nworkers: 2\n");
  EXPECT_CONFIG_ERROR(e, 2, "workers", "duplicate key 'workers' (first at line 1)");
}

TEST(ConfigErrors, WrongTypes) {
  EXPECT_CONFIG_ERROR(onlyError("timeouts: {client_header: fast}"), 1, "timeouts.client_header",
                      "expected a duration like 250ms, 10s, 1m, got 'fast'");
  EXPECT_CONFIG_ERROR(onlyError("limits:\n  max_body_bytes: lots"), 2, "limits.max_body_bytes",
                      "expected a size like 512, 8KiB, 10MiB, got 'lots'");
  EXPECT_CONFIG_ERROR(onlyError("watch: maybe"), 1, "watch", "expected true or false, got 'maybe'");
  EXPECT_CONFIG_ERROR(onlyError("workers: [1]"), 1, "workers", "expected an integer, got a list");
  EXPECT_CONFIG_ERROR(onlyError("clusters: {name: a}"), 1, "clusters",
                      "expected a list, got a map");
  EXPECT_CONFIG_ERROR(onlyError("admin: [1]"), 1, "admin", "expected a map, got a list");
  EXPECT_CONFIG_ERROR(onlyError("access_log: {path: }"), 1, "access_log.path",
                      "expected a string, got an empty value");
  EXPECT_CONFIG_ERROR(onlyError("- a\n- b\n"), 1, "", "expected a map, got a list");
}

TEST(ConfigErrors, OutOfRange) {
  EXPECT_CONFIG_ERROR(onlyError("workers: -1"), 1, "workers", "must be between 0 and 1024, got -1");
  EXPECT_CONFIG_ERROR(onlyError("timeouts: {client_header: 0}"), 1, "timeouts.client_header",
                      "must be between 1ms and 168h, got 0");
  EXPECT_CONFIG_ERROR(onlyError("timeouts: {drain: 200h}"), 1, "timeouts.drain",
                      "must be at most 168h, got 200h");
  EXPECT_CONFIG_ERROR(onlyError("limits: {max_header_bytes: 1GiB}"), 1, "limits.max_header_bytes",
                      "must be between 1KiB and 16MiB, got 1GiB");
  EXPECT_CONFIG_ERROR(onlyError("limits: {max_headers: 0}"), 1, "limits.max_headers",
                      "must be between 1 and 10000");
  EXPECT_CONFIG_ERROR(onlyError("admin: {port: 0}"), 1, "admin.port",
                      "must be between 1 and 65535, got 0");
  EXPECT_CONFIG_ERROR(onlyError("listeners: [{port: 70000}]"), 1, "listeners[0].port",
                      "must be between 1 and 65535, got 70000");
  EXPECT_CONFIG_ERROR(onlyError("workers: 99999999999999999999999"), 1, "workers",
                      "must be between 0 and 1024");
}

TEST(ConfigErrors, AllErrorsAreReportedInOrder) {
  LoadResult r = load(R"(workers: many
listeners:
  - {address: localhost, port: 80}
clusters:
  - name: a
    lb: fastest
    endpoints: []
routes:
  - cluster: nope
    timeout: forever
  - match: {path_prefix: nope}
)");
  EXPECT_FALSE(r.ok());
  ASSERT_EQ(r.errors.size(), 8u) << dump(r);
  EXPECT_EQ(r.errors[0].path, "workers");
  EXPECT_EQ(r.errors[1].path, "listeners[0].address");
  EXPECT_EQ(r.errors[2].path, "clusters[0].lb");
  EXPECT_EQ(r.errors[3].path, "clusters[0].endpoints");
  EXPECT_EQ(r.errors[4].path, "routes[0].cluster");
  EXPECT_EQ(r.errors[5].path, "routes[0].timeout");
  EXPECT_EQ(r.errors[6].path, "routes[1]");
  EXPECT_EQ(r.errors[7].path, "routes[1].match.path_prefix");
  for (size_t i = 1; i < r.errors.size(); ++i) {
    EXPECT_LE(r.errors[i - 1].line, r.errors[i].line);
  }
}

TEST(ConfigErrors, TooManyErrorsAreCapped) {
  std::string yaml = "routes:\n";
  for (size_t i = 0; i < kMaxReportedErrors + 10; ++i)
    yaml += "  - {}\n";
  LoadResult r = load(yaml);
  ASSERT_EQ(r.errors.size(), kMaxReportedErrors + 1);
  EXPECT_EQ(r.errors.back().message, "10 more errors not shown");
}

TEST(ConfigErrors, MultipleDocumentsAreRejected) {
  EXPECT_CONFIG_ERROR(onlyError("workers: 1\n---\nworkers: 2\n"), 2, "",
                      "more than one YAML document");
}

TEST(ConfigErrors, StrayTokensDoNotHangYamlCpp) {
  // yaml-cpp 0.7's LoadAll() loops forever on these (jbeder/yaml-cpp#1040).
  EXPECT_CONFIG_ERROR(onlyError(","), 1, "", "YAML syntax error: unexpected character ','");
  EXPECT_CONFIG_ERROR(onlyError("workers: 1\n,\n"), 2, "", "YAML syntax error");
  EXPECT_CONFIG_ERROR(onlyError("\"a\", "), 1, "", "unexpected character ','");
  // Empty documents around a real one are still more than one document.
  EXPECT_THAT(onlyError("---\n---\n").message, HasSubstr("more than one YAML document"));
  loadOk("---\nworkers: 1\n...\n");
}

TEST(ConfigErrors, MissingFile) {
  LoadResult r = loadConfigFile("/nonexistent/gatehouse.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].format(),
            "/nonexistent/gatehouse.yaml: cannot open file: No such file or directory");
}

TEST(ConfigErrors, DirectoryIsNotAFile) {
  LoadResult r = loadConfigFile(std::filesystem::temp_directory_path().string());
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].message, HasSubstr("it is a directory"));
}

TEST(ConfigErrors, FileIsLoadedAndNamed) {
  std::filesystem::path path = std::filesystem::temp_directory_path() / "gh_config_test.yaml";
  {
    std::ofstream out(path);
    out << "workers: 3\nwatch: nope\n";
  }
  LoadResult r = loadConfigFile(path.string());
  std::filesystem::remove(path);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].file, path.string());
  EXPECT_EQ(r.errors[0].line, 2);
}

// ---------------------------------------------------------------------------------------------
// Hostile documents

TEST(ConfigGuards, DeepNestingIsRejected) {
  std::string deep = "virtual_hosts: [{name: a, policies: [{name: p, config: ";
  for (int i = 0; i < 100; ++i)
    deep += "[";
  for (int i = 0; i < 100; ++i)
    deep += "]";
  deep += "}]}]";
  EXPECT_THAT(onlyError(deep).message, HasSubstr("nesting is deeper than 64 levels"));

  // Deeper than yaml-cpp's own guard: its exception is turned into the same message.
  std::string very_deep(100000, '[');
  EXPECT_THAT(onlyError(very_deep).message, HasSubstr("nesting is deeper than 64 levels"));
  std::string block;
  for (int i = 0; i < 3000; ++i)
    block += "- ";
  EXPECT_THAT(onlyError(block + "x").message, HasSubstr("nesting is deeper than 64 levels"));
}

TEST(ConfigGuards, SelfReferencingAnchorIsRejected) {
  LoadResult r = load("virtual_hosts: [{name: a, policies: [{name: p, config: &x [*x]}]}]");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(dump(r), HasSubstr("anchor refers to itself"));
}

TEST(ConfigGuards, AliasBombIsRejected) {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 10; ++j)
      yaml += (j ? ", " : "") + prev;
    yaml += "]\n";
  }
  LoadResult r = load(yaml);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(dump(r), HasSubstr("nodes once aliases are expanded"));
}

TEST(ConfigGuards, ModestAliasesAreFine) {
  Config c = loadOk(R"(clusters:
  - name: a
    endpoints: &eps ["127.0.0.1:1", "127.0.0.1:2"]
  - name: b
    endpoints: *eps
)");
  EXPECT_EQ(c.clusters[1].endpoints.size(), 2u);
}

TEST(ConfigGuards, OversizedInputIsRefused) {
  std::string big(kMaxConfigBytes + 1, '#');
  EXPECT_THAT(onlyError(big).message, HasSubstr("larger than 16MiB"));
}

// ---------------------------------------------------------------------------------------------
// Scalar syntax

TEST(ConfigSyntax, Durations) {
  EXPECT_EQ(parseDuration("250"), Millis(250));
  EXPECT_EQ(parseDuration("250ms"), Millis(250));
  EXPECT_EQ(parseDuration("10s"), Millis(10000));
  EXPECT_EQ(parseDuration("1.5s"), Millis(1500));
  EXPECT_EQ(parseDuration("0.25m"), Millis(15000));
  EXPECT_EQ(parseDuration("2m"), Millis(120000));
  EXPECT_EQ(parseDuration("1h"), Millis(3600000));
  EXPECT_EQ(parseDuration("0"), Millis(0));
  for (std::string_view bad : {"", "s", "1.5", "1.5ms", "0.0001s", "-1s", "10 s", "1d", "1S", "1.s",
                               ".5s", "1m30s", "ten"}) {
    EXPECT_FALSE(parseDuration(bad).has_value()) << bad;
  }
  EXPECT_GT(*parseDuration("99999999999999999999h"), kMaxDuration);  // saturates, no overflow
  EXPECT_EQ(formatDuration(Millis(1500)), "1500ms");
  EXPECT_EQ(formatDuration(Millis(7LL * 24 * 3600 * 1000)), "168h");
}

TEST(ConfigSyntax, Sizes) {
  EXPECT_EQ(parseSize("512"), 512u);
  EXPECT_EQ(parseSize("512B"), 512u);
  EXPECT_EQ(parseSize("8KiB"), 8192u);
  EXPECT_EQ(parseSize("10MiB"), 10u << 20);
  EXPECT_EQ(parseSize("1GiB"), 1u << 30);
  EXPECT_EQ(parseSize("8KB"), 8000u);
  EXPECT_EQ(parseSize("10MB"), 10'000'000u);
  EXPECT_EQ(parseSize("2GB"), 2'000'000'000u);
  for (std::string_view bad : {"", "KiB", "1.5MiB", "10 MB", "10kb", "-1", "1TiB", "1K"}) {
    EXPECT_FALSE(parseSize(bad).has_value()) << bad;
  }
  EXPECT_EQ(parseSize("99999999999999999999GiB"), std::numeric_limits<uint64_t>::max());
  EXPECT_CONFIG_ERROR(onlyError("limits: {max_request_line: 8kib}"), 1, "limits.max_request_line",
                      "expected a size like 512, 8KiB, 10MiB");
}

TEST(ConfigSyntax, Booleans) {
  for (std::string_view t : {"true", "True", "yes", "on", "ON"})
    EXPECT_EQ(parseBool(t), true);
  for (std::string_view f : {"false", "no", "Off"})
    EXPECT_EQ(parseBool(f), false);
  for (std::string_view bad : {"", "1", "0", "y", "truee"})
    EXPECT_FALSE(parseBool(bad)) << bad;
}

TEST(ConfigSyntax, AddressesAndNames) {
  EXPECT_TRUE(isIpLiteral("127.0.0.1"));
  EXPECT_TRUE(isIpLiteral("::"));
  EXPECT_TRUE(isIpLiteral("fe80::1"));
  EXPECT_FALSE(isIpLiteral("[::1]"));
  EXPECT_FALSE(isIpLiteral("256.0.0.1"));
  EXPECT_FALSE(isIpLiteral("localhost"));
  EXPECT_TRUE(isDnsName("localhost"));
  EXPECT_TRUE(isDnsName("users.internal."));
  EXPECT_TRUE(isDnsName("my_service"));
  EXPECT_FALSE(isDnsName("-a.com"));
  EXPECT_FALSE(isDnsName("a..com"));
  EXPECT_FALSE(isDnsName("1.2.3.4"));
  EXPECT_FALSE(isDnsName(std::string(64, 'a') + ".com"));
  EXPECT_TRUE(isHttpToken("GET"));
  EXPECT_FALSE(isHttpToken("GE T"));
  EXPECT_TRUE(isHostHeaderValue("a.com:8080"));
  EXPECT_TRUE(isHostHeaderValue("[::1]:80"));
  EXPECT_FALSE(isHostHeaderValue("a.com:0"));
  EXPECT_FALSE(isHostHeaderValue("[::1"));
}

// ---------------------------------------------------------------------------------------------
// Every shipped example must load.

TEST(ConfigExamples, AllExamplesLoad) {
  const char* env = std::getenv("GATEHOUSE_SOURCE_DIR");
  std::filesystem::path root = env ? env : ".";
  if (!std::filesystem::exists(root / "examples")) root = "../..";  // from build/<preset>
  ASSERT_TRUE(std::filesystem::exists(root / "examples")) << "set GATEHOUSE_SOURCE_DIR";
  // The examples name files relative to the repository root (an OpenAPI document), as
  // `gatehouse validate examples/...` run from there would.
  const std::filesystem::path was = std::filesystem::current_path();
  std::filesystem::current_path(root);
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator("examples")) {
    if (entry.path().extension() != ".yaml") continue;
    LoadResult r = loadConfigFile(entry.path().string());
    EXPECT_TRUE(r.ok()) << entry.path() << "\n" << dump(r);
    ++loaded;
  }
  std::filesystem::current_path(was);
  EXPECT_GE(loaded, 2);
}

}  // namespace
}  // namespace gatehouse::config
