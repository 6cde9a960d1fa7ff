#pragma once
// The parsed, validated configuration as plain data. The loader (config/loader.*) produces it
// from YAML; the snapshot builder compiles it into routers, clusters and filter chains.
// Durations are milliseconds. Every field has the default documented in docs/config.md.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace YAML {
class Node;
}

namespace gatehouse::config {

using Millis = std::chrono::milliseconds;

struct Timeouts {
  Millis client_header{10000};   // whole request head must arrive within this
  Millis client_body{60000};     // max gap between body reads from the client
  Millis keepalive_idle{60000};  // idle keep-alive downstream connection
  Millis upstream_connect{5000};
  Millis upstream_response{30000};  // from request sent to response head received
  Millis upstream_idle{60000};      // max gap between upstream body reads; pooled idle time
  Millis request_total{0};          // 0 = unlimited; a unary HTTP exchange (never a stream)
  Millis drain{15000};              // graceful shutdown deadline
  // Per protocol (docs/config.md, "Timeouts per protocol"). 0 = unlimited.
  Millis grpc_unary{0};              // whole gRPC call, unless the route streams
  Millis grpc_stream_idle{300000};   // max gap between response messages of a gRPC call
  Millis websocket_idle{600000};     // no bytes either way on an upgraded tunnel
  Millis websocket_max_lifetime{0};  // an upgraded tunnel's whole life
  Millis sse_idle{300000};           // max gap between events of a text/event-stream
  Millis sse_max_lifetime{0};        // an event stream's whole life
};

// Per-route overrides of the protocol timeouts (unset = the global `timeouts:` value).
struct RouteTimeouts {
  std::optional<Millis> request_total;
  std::optional<Millis> grpc_unary;
  std::optional<Millis> grpc_stream_idle;
  std::optional<Millis> sse_idle;
  std::optional<Millis> sse_max_lifetime;
};

// Per-route WebSocket (HTTP/1.1 Upgrade tunnel) limits.
struct WebSocketOptions {
  std::optional<Millis> idle_timeout;  // default timeouts.websocket_idle
  std::optional<Millis> max_lifetime;  // default timeouts.websocket_max_lifetime
  uint32_t max_connections = 0;        // concurrent tunnels on the route, all workers; 0 = no cap
};

// Long-lived streams (tunnels, SSE, gRPC streams) across reloads.
// Where this process runs (a fleet member): the default local zone of zone-aware clusters.
struct NodeOptions {
  std::string zone;  // empty = unknown
};

// Zone-aware balancing of a cluster (lb/locality.h, docs/config.md "locality").
struct Locality {
  std::string local_zone;  // empty: node.zone
  // The local zone takes all the traffic while at least this percent of its hosts (in the
  // serving priority group) is available; below, it takes a proportional share.
  uint32_t min_healthy_percent = 70;
};

struct StreamOptions {
  // A stream whose route was deleted by a reload is closed this long after that reload.
  Millis max_drain_age{600000};  // 0 = never
};

struct HttpLimits {
  size_t max_request_line = 8192;
  size_t max_header_bytes = 65536;
  size_t max_headers = 100;
  uint64_t max_body_bytes = 0;  // 0 = unlimited
};

// Downstream HTTP/2 (h2 over TLS via ALPN, h2c with prior knowledge).
struct Http2Options {
  bool enabled = true;
  uint32_t max_concurrent_streams = 128;
  uint32_t initial_stream_window = 256 * 1024;  // per-stream receive window (bytes)
  uint32_t connection_window = 1024 * 1024;     // connection receive window (bytes)
  uint32_t max_frame_size = 16384;
  uint32_t max_header_list_bytes = 65536;  // decoded size (RFC 9113 §6.5.2)
  uint32_t max_resets_per_second = 100;    // client RST_STREAMs before GOAWAY (rapid reset)
  // Frames that do no useful work (empty DATA, tiny WINDOW_UPDATEs, PRIORITY, RST_STREAM on
  // closed streams, SETTINGS, PING): a burst per connection, refilled per second and by the
  // gateway's response frames. Spending it is a flood: GOAWAY(ENHANCE_YOUR_CALM).
  uint32_t control_frame_budget = 1000;
  uint32_t control_frame_refill_per_second = 100;
  // RFC 8441: WebSocket over HTTP/2 (extended CONNECT), tunnelled to an HTTP/1.1 Upgrade.
  bool enable_connect_protocol = false;
};

// What to do with ";params" in a path segment ("/a;jsessionid=1/b"). Servlet containers and
// some frameworks strip them before routing, so "/;x/admin" or "/admin;x" is "/admin" there
// while a prefix match here sees something else.
enum class PathParameters : uint8_t {
  kReject,  // 400 for a ';' (raw or %3B) anywhere in the path; default
  kStrip,   // remove ";..." up to the end of each segment; route and forward the result
  kKeep,    // ';' is an ordinary character (only "..;x" and ".;x" segments are refused)
};

struct PathNormalization {
  bool merge_slashes = true;
  bool decode_unreserved = true;
  bool reject_encoded_slash = true;    // %2F, %5C
  bool reject_double_encoding = true;  // %25 followed by two hex digits (%252e, %2561)
  PathParameters path_parameters = PathParameters::kReject;
};

struct ForwardedHeaders {
  // CIDRs whose X-Forwarded-* headers are trusted and extended; others are replaced.
  std::vector<std::string> trusted_proxies;
  bool request_id = true;
  std::string request_id_header = "x-request-id";
};

struct Endpoint {
  std::string host;  // IP literal or name (resolved at load time)
  uint16_t port = 0;
  uint32_t weight = 1;
  uint32_t priority = 0;  // 0 = primary; higher groups take traffic only when lower ones fail
  std::string zone = {};  // locality (lb/locality.h); empty = no zone
};

// What ring_hash and maglev hash to choose a host.
struct HashKey {
  // kSourceAddress: "ip:port" of the client (TCP listeners; HTTP requests hash the IP).
  // kSni: the ClientHello's server name (TCP listeners with tls_passthrough).
  enum class Source { kSourceIp, kSourceAddress, kHeader, kCookie, kQuery, kPath, kSni };
  Source source = Source::kSourceIp;
  std::string name;  // header (lower case), cookie or query parameter name; empty otherwise
};

// What a hashing balancer does with a request that has no hash key.
enum class LbFallback { kRoundRobin, kRandom };

// Tuning for the load-balancing algorithms. Each option applies to some algorithms only, and
// the loader rejects one given to an algorithm that would ignore it (docs/config.md).
struct LbOptions {
  HashKey hash_key;                               // ring_hash, maglev
  LbFallback fallback = LbFallback::kRoundRobin;  // ring_hash, maglev, ip_hash
  uint32_t ring_replicas = 160;                   // ring points per unit of weight
  uint32_t maglev_table_size = 65537;             // a prime
  double bounded_load = 0;                        // 0 = off; else >= 1 (cap / average load)
  Millis ewma_decay{10000};                       // least_time: latency average time constant
  std::optional<uint32_t> choice_count;           // unset = algorithm default; 0 = all hosts
};

// Active health checking of every endpoint of a cluster, from the control thread.
struct HealthCheck {
  enum class Kind { kHttp, kTcp, kGrpc };
  Kind kind = Kind::kHttp;
  Millis interval{5000};
  Millis timeout{2000};
  Millis jitter{0};                  // each wait is interval + uniform [0, jitter)
  uint32_t healthy_threshold = 2;    // consecutive passes to mark an unhealthy host healthy
  uint32_t unhealthy_threshold = 3;  // consecutive failures to mark a healthy host unhealthy
  // HTTP only.
  std::string path = "/healthz";
  std::string method = "GET";
  std::string host;  // Host header; empty = the endpoint's host:port
  std::vector<std::pair<int, int>> expected_statuses{{200, 299}};  // inclusive ranges
  std::optional<std::string> body_contains;
  // gRPC only (grpc.health.v1.Health/Check): the service name; empty = the whole server.
  std::string grpc_service;
  // TCP only: bytes sent once connected, and bytes the reply must contain (e.g. Redis
  // "PING\r\n" / "+PONG"). Empty: connecting is the whole check.
  std::string send;
  std::string expect;
};

// Success-rate outlier detection (Envoy style): every `interval`, hosts that served at least
// `request_volume` requests are compared; one whose success rate is below
// mean - stdev_factor x stdev is ejected, when at least `minimum_hosts` hosts qualified.
struct SuccessRateOutlier {
  Millis interval{10000};
  uint32_t minimum_hosts = 5;
  uint32_t request_volume = 100;
  double stdev_factor = 1.9;
};

// Passive health: eject a host after consecutive failed requests (5xx or gateway errors), or
// when its success rate falls too far below its peers'.
struct OutlierDetection {
  uint32_t consecutive_failures = 5;  // 0 = off (allowed only with success_rate)
  std::optional<SuccessRateOutlier> success_rate;
  Millis base_ejection_time{30000};
  Millis max_ejection_time{300000};
  uint32_t max_ejection_percent = 10;
};

struct SlowStart {
  Millis window{0};
  uint32_t min_weight_percent = 10;
};

// TLS from the gateway to a cluster's endpoints (works with the connection pool).
struct UpstreamTls {
  std::optional<std::string> sni;        // default: the endpoint's host when it is a name
  bool verify = true;                    // verify the chain and the name (sni, else the host)
  std::optional<std::string> ca_file;    // default: the system trust store
  std::optional<std::string> cert_file;  // client certificate for mTLS to the upstream
  std::optional<std::string> key_file;
  std::string min_version = "1.2";
  int line = 0;
  std::string yaml_path;
};

// Session persistence with a gateway-issued cookie naming the chosen host, sealed with
// AES-256-GCM so that clients can neither read nor forge it.
struct StickySession {
  std::string cookie = "gh_sticky";
  Millis ttl{0};  // 0 = a session cookie; else Max-Age, and the seal expires with it
  std::string path = "/";
  bool secure = false;
  bool http_only = true;
  std::string same_site = "lax";  // lax | strict | none
  std::string key;                // secret; empty = random per process (does not survive restarts)
};

// Endpoints discovered through DNS (c-ares, on the control thread) instead of listed; the host
// set follows the answers, re-resolved every `refresh`.
struct DnsDiscovery {
  enum class Type { kA, kAAAA, kSrv };
  std::string name;
  Type type = Type::kA;
  uint16_t port = 0;  // required for A/AAAA; SRV answers carry their own
  Millis refresh{30000};
  std::vector<std::string> resolvers;  // "ip:port"; empty = the system's (/etc/resolv.conf)
  uint32_t weight = 1;                 // A/AAAA; SRV answers carry their own
};

// Upstream retries (docs/config.md, "Retries"). These defaults are the policy of a route and
// cluster without a `retry:` block: one immediate retry on another host when no connection could
// be made. A written block starts from the defaults documented there instead.
struct RetryPolicy {
  uint32_t attempts = 2;           // tries in all, the first one included; 1 = never retry
  bool on_connect_failure = true;  // also HTTP/2 REFUSED_STREAM and streams past GOAWAY
  bool on_reset = false;           // the connection failed before a response head
  bool on_timeout = false;         // the per-try (or response) timeout expired before a head
  std::vector<std::pair<int, int>> statuses;  // response statuses to retry (inclusive ranges)
  Millis per_try_timeout{0};                  // 0 = the route's response timeout
  Millis backoff_base{0};
  Millis backoff_max{0};
  uint32_t budget_percent = 20;         // active retries <= this % of active requests, or
  uint32_t budget_min_concurrency = 3;  // this many, whichever is larger (per worker)
};

// `circuit_breakers:` (Envoy semantics): caps on one cluster across all workers. Options left
// out of the block take Envoy's defaults; without the block nothing is counted or capped.
struct CircuitBreakers {
  uint64_t max_connections = 1024;       // open upstream connections
  uint64_t max_pending_requests = 1024;  // requests waiting for a connection
  uint64_t max_requests = 1024;          // requests in flight
  uint64_t max_retries = 3;              // retries in flight
};

// What a cluster writes in front of each new upstream HTTP/1.1 connection.
enum class ProxyProtocolSend : uint8_t { kOff, kV1, kV2 };

struct Cluster {
  std::string name;
  std::vector<Endpoint> endpoints;  // empty when `dns` is set
  std::optional<DnsDiscovery> dns;
  std::string lb = "round_robin";
  LbOptions lb_options;
  size_t pool_max_per_endpoint = 1024;  // per worker
  size_t pool_max_idle_per_endpoint = 256;
  std::optional<Millis> connect_timeout;
  std::optional<Millis> response_timeout;
  std::optional<Millis> idle_timeout;
  std::optional<HealthCheck> health_check;
  std::optional<OutlierDetection> outlier_detection;
  std::optional<SlowStart> slow_start;
  std::optional<CircuitBreakers> circuit_breakers;
  uint32_t panic_threshold = 50;  // percent of hosts available; below it, use every host
  // Percent of a priority group that must be available for it to take the traffic.
  uint32_t priority_failover_threshold = 70;
  std::optional<UpstreamTls> tls;
  std::optional<StickySession> sticky;
  std::optional<Locality> locality;
  // Upstream protocol: http1, h2 (TLS with ALPN h2; needs `tls`), auto (ALPN) or h2c (cleartext,
  // prior knowledge).
  std::string protocol = "http1";
  // A PROXY header on each new upstream connection, which then serves only the client it names.
  ProxyProtocolSend proxy_protocol = ProxyProtocolSend::kOff;
  std::optional<RetryPolicy> retry;  // the default for its routes
  int line = 0;
  std::string yaml_path;  // e.g. clusters[1]
};

// A policy entry as written: the name selects the registered factory; `config` is the raw
// YAML node the factory validates and compiles (never null once loaded; a YAML null when the
// entry has no `config:`). Opaque here, so that the model carries no YAML types to the layers
// that include it (net, http, lb).
struct PolicySpec {
  std::string name;
  std::shared_ptr<const YAML::Node> config;
  std::string yaml_path;  // e.g. routes[2].policies[0]
  std::string file;
  int line = 0;
};

struct HeaderMatch {
  std::string name;
  std::optional<std::string> exact;
  std::optional<std::string> regex;
  std::optional<bool> present;  // true: must exist; false: must be absent
};

struct QueryMatch {
  std::string name;
  std::optional<std::string> exact;
  std::optional<std::string> regex;
  std::optional<bool> present;
};

// The loader sets at most one path matcher, and sets path_prefix "/" when none is written.
struct RouteMatch {
  std::optional<std::string> path_exact;
  std::optional<std::string> path_prefix;
  std::optional<std::string> path_regex;
  std::optional<std::string> path_template;  // /users/{id}/orders/{order}
  std::vector<std::string> methods;          // empty = any
  std::vector<HeaderMatch> headers;
  std::vector<QueryMatch> query;
};

struct Rewrite {
  std::optional<std::string> strip_prefix;
  std::optional<std::string> regex;  // with regex_replace
  std::optional<std::string> regex_replace;
  std::optional<std::string> host;  // Host sent upstream
};

struct DirectResponse {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain";
};

struct Redirect {
  int status = 302;
  std::optional<std::string> location;  // full URL; or built from the parts below
  std::optional<std::string> scheme;
  std::optional<std::string> host;
  std::optional<std::string> path;
  std::optional<uint16_t> port;  // replaces the port of the request's host (443/80: dropped)
  bool strip_query = false;
};

// Traffic splitting (docs/config.md, "Traffic splitting").
struct WeightedCluster {
  std::string name;
  uint32_t weight = 1;
};

// Sends a request to `cluster` when its header (or cookie) is present, or equals `value`.
struct CanaryRule {
  std::string header;  // lower case; exactly one of header and cookie
  std::string cookie;
  std::optional<std::string> value;
  std::string cluster;
};

// Shadows a share of the route's requests to another cluster, fire-and-forget.
struct Mirror {
  std::string cluster;
  double percent = 100;
  uint64_t max_body_bytes = 65536;  // larger bodies are not mirrored; 0 = bodyless requests only
};

struct Route {
  std::string name;  // defaults to "<vhost>/<index>"
  RouteMatch match;
  // Exactly one action (`cluster` or `clusters` forward):
  std::optional<std::string> cluster;
  std::vector<WeightedCluster> clusters;  // weighted split
  std::vector<CanaryRule> canary;         // checked in order before the split
  std::optional<Mirror> mirror;
  std::optional<DirectResponse> direct_response;
  std::optional<Redirect> redirect;
  Rewrite rewrite;
  std::vector<PolicySpec> policies;
  std::optional<Millis> timeout;     // overrides upstream_response for this route
  std::optional<RetryPolicy> retry;  // overrides the cluster's
  RouteTimeouts timeouts;
  std::optional<WebSocketOptions> websocket;
  bool tracing = true;  // `tracing: false`: no spans for this route's requests
  std::string yaml_path;
  int line = 0;
};

struct VirtualHost {
  std::string name;
  std::vector<std::string> domains;  // "example.com", "*.example.com", "*"
  std::vector<Route> routes;
  std::vector<PolicySpec> policies;  // run before route policies
};

struct TlsCertificate {
  std::string cert_file;                 // PEM chain, leaf first
  std::string key_file;                  // PEM private key
  std::optional<std::string> ocsp_file;  // DER OCSP response to staple (refreshed on reload)
};

// TLS termination on a listener (OpenSSL 3). The certificate is chosen by SNI among the
// names in each certificate (exact, then wildcard); the first certificate is the default.
struct ListenerTls {
  std::vector<TlsCertificate> certificates;
  std::string min_version = "1.2";  // "1.2" or "1.3"
  std::string max_version = "1.3";
  std::optional<std::string> ciphers;       // TLS 1.2 cipher list (OpenSSL syntax)
  std::optional<std::string> ciphersuites;  // TLS 1.3 suites
  std::optional<std::string> groups;        // key-exchange groups, e.g. "X25519:P-256"
  std::vector<std::string> alpn = {"h2", "http/1.1"};
  std::string client_auth = "none";  // none | optional | require
  std::optional<std::string> client_ca_file;
  bool session_tickets = true;
  Millis session_timeout{7200000};
  // Send the verified client certificate's subject, SANs and SHA-256 fingerprint upstream as
  // x-client-cert-subject / -san / -sha256 (incoming headers of those names are always removed).
  bool forward_client_cert = false;
  int line = 0;
  std::string yaml_path;
};

// A plain listener that answers every request with a redirect to the same URL over HTTPS.
struct HttpsRedirect {
  uint16_t port = 443;  // the HTTPS port in the Location (omitted when 443)
  int status = 308;     // 301, 302, 303, 307 or 308
};

// Request header names with '_': a CGI, WSGI or PHP back-end maps '_' and '-' to the same
// variable, so `Content_Length` can become its Content-Length.
enum class UnderscoreHeaders : uint8_t {
  kRejectFraming,  // 400 for a framing header spelled with '_' (content_length, ...); default
  kDrop,           // remove every header whose name has '_' (NGINX's default)
  kReject,         // 400 for any header whose name has '_'
};

// What a plain (cleartext) listener speaks.
enum class ListenerProtocol : uint8_t {
  kAuto,   // HTTP/1.1, and HTTP/2 for a client that starts with its preface (h2c); default
  kHttp1,  // HTTP/1.1 only
  kH2c,    // HTTP/2 only (prior knowledge): any other first bytes are an invalid preface
};

// A PROXY protocol header (v1 and/or v2) in front of every connection from a trusted source
// (docs/config.md, "PROXY protocol"). From any other source a header is refused.
struct ListenerProxyProtocol {
  std::vector<std::string> trusted;  // canonical CIDRs; never empty
  bool accept_v1 = true;
  bool accept_v2 = true;
};

// What a listener speaks: HTTP (the default), raw TCP or UDP datagrams forwarded to one cluster.
enum class ListenerMode : uint8_t { kHttp, kTcp, kUdp };

// IP rules of a TCP listener: the shape of the `ip_restriction` policy (deny wins; with an
// allow list, the client must be on it). CIDRs normalized by the loader.
struct IpRules {
  std::vector<std::string> allow;
  std::vector<std::string> deny;
};

// How a TCP listener moves bytes: splice() through a pipe (zero-copy) or read()/write().
enum class TcpRelay : uint8_t { kSplice, kCopy };

// One route of `tcp.tls_passthrough`: a ClientHello whose SNI matches `sni` (a host name or
// "*." + one, lowercased; empty: any) and that offers one of `alpn` (empty: any) goes to
// `cluster`.
struct TlsPassthroughRoute {
  std::string sni;
  std::vector<std::string> alpn;
  std::string cluster;
};

// `tcp.tls_passthrough`: route on the ClientHello without terminating TLS (docs/config.md).
struct TlsPassthrough {
  std::vector<TlsPassthroughRoute> routes;
};

// A listener's `tcp:` block (mode: tcp): every accepted connection goes to a host of `cluster`
// (with tls_passthrough: of the route's cluster; `cluster`, optional there, is the default).
struct TcpProxy {
  std::string cluster;
  std::optional<TlsPassthrough> tls_passthrough;
  std::optional<Millis> connect_timeout;  // unset: the cluster's, else timeouts.upstream_connect
  uint32_t connect_retries = 1;           // other hosts tried within the same connect budget
  std::optional<Millis> idle_timeout;     // unset: the cluster's idle_timeout if set, else 1h
  Millis max_lifetime{0};                 // 0 = unlimited
  uint32_t max_connections = 0;           // per listener, all workers together; 0 = unlimited
  TcpRelay relay = TcpRelay::kSplice;
  size_t buffer_size = 65536;  // per direction: the pipe (splice) or the buffer (copy)
  std::optional<IpRules> ip_restriction;
};

inline constexpr Millis kDefaultTcpIdleTimeout{3600000};

// A listener's `udp:` block (mode: udp): each client address (ip:port) is a session with its
// own connected socket to one host of `cluster`; replies go back to that client.
struct UdpProxy {
  std::string cluster;
  Millis idle_timeout{60000};     // a session with no datagram either way for this long ends
  uint32_t max_sessions = 65536;  // per listener, all workers together; 0 = unlimited
  // Replies expected per client datagram: the session ends once the upstream has sent this
  // many for each datagram forwarded (1: DNS-style). 0 (`streaming`): unlimited.
  uint32_t responses = 0;
  size_t buffer_size = 65535;  // the largest datagram forwarded; longer ones are dropped
  std::optional<IpRules> ip_restriction;
};

struct Listener {
  std::string name;
  ListenerMode mode = ListenerMode::kHttp;
  // Set for mode kTcp; on kHttp (with `tls` and tcp.tls_passthrough) it makes a mixed port.
  std::optional<TcpProxy> tcp;
  std::optional<UdpProxy> udp;  // set if and only if mode is kUdp
  std::string address = "0.0.0.0";
  uint16_t port = 8080;
  std::vector<std::string> virtual_hosts;  // names; empty = all
  std::optional<ListenerTls> tls;
  std::optional<HttpsRedirect> https_redirect;
  UnderscoreHeaders underscores_in_headers = UnderscoreHeaders::kRejectFraming;
  ListenerProtocol protocol = ListenerProtocol::kAuto;
  std::optional<ListenerProxyProtocol> proxy_protocol;
};

struct AccessLog {
  bool enabled = true;
  std::string path = "stdout";      // "stdout", "off" or a file path
  std::vector<std::string> fields;  // empty = default field list
};

// One entry of the top-level `consumers:` registry. The loader checks every credential's
// format; the snapshot compiles the list into a policies::ConsumerRegistry.
struct ConsumerSpec {
  struct Basic {
    std::string username;  // defaults to the consumer's name
    std::string password;  // a hash: "$2b$..." or "sha256:<salt>:<hex>"
  };
  struct Hmac {
    std::string key_id;
    std::string secret;  // from `secret` or the environment variable named by `secret_env`
  };
  // A TLS client certificate (policy cert_auth): exactly one of its fingerprint, its subject
  // or one of its subjectAltName entries.
  struct Certificate {
    enum class Kind { kSha256, kSubject, kSan };
    Kind kind = Kind::kSha256;
    std::string value;  // lower-case hex; RFC 2253 subject; "DNS:...", "URI:..." or "email:..."
  };
  std::string name;
  std::vector<std::string> groups;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::vector<std::string> api_keys;  // SHA-256 hex digests
  std::vector<Basic> basic;
  std::vector<Hmac> hmac;
  std::vector<Certificate> certificates;
  int line = 0;
  std::string yaml_path;  // consumers[2]
};

// Top-level `tracing:` (OpenTelemetry). Absent or enabled: false: no tracing at all.
struct Tracing {
  bool enabled = false;
  std::string endpoint;  // OTLP/HTTP traces URL, http://host:port/v1/traces
  std::string service_name = "gatehouse";
  enum class Propagation : uint8_t { kW3c, kB3, kB3Multi };
  Propagation propagation = Propagation::kW3c;
  double sample_ratio = 1.0;          // for new traces (and all, without parent_based)
  bool parent_based = true;           // honour the caller's sampled flag
  bool always_sample_errors = false;  // also export unsampled requests that end 5xx
  uint32_t max_batch_spans = 512;     // spans per export request
  uint32_t max_queued_spans = 8192;   // per worker, waiting for the exporter
  Millis export_timeout{2000};        // one export request, connect included
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  int line = 0;
};

struct Admin {
  bool enabled = true;
  std::string address = "127.0.0.1";
  uint16_t port = 9901;
};

struct Config {
  std::string source_file;
  int workers = 0;  // 0 = one per core
  std::vector<Listener> listeners;
  std::vector<VirtualHost> virtual_hosts;
  std::vector<Cluster> clusters;
  std::vector<ConsumerSpec> consumers;
  Timeouts timeouts;
  StreamOptions streams;
  HttpLimits limits;
  Http2Options http2;
  PathNormalization path_normalization;
  ForwardedHeaders forwarded;
  AccessLog access_log;
  Tracing tracing;
  Admin admin;
  NodeOptions node;
  bool watch = true;  // reload when the file changes
};

}  // namespace gatehouse::config
