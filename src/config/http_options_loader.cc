#include "config/http_options_loader.h"

namespace gatehouse::config {

namespace {
constexpr std::string_view kHttp2Keys[] = {"enabled",
                                           "max_concurrent_streams",
                                           "initial_stream_window",
                                           "connection_window",
                                           "max_frame_size",
                                           "max_header_list_bytes",
                                           "max_resets_per_second",
                                           "control_frame_budget",
                                           "control_frame_refill_per_second",
                                           "enable_connect_protocol"};
constexpr std::string_view kHttpsRedirectKeys[] = {"port", "status"};
constexpr int64_t kMaxPort = 65535;
}  // namespace

void readHttp2(Diagnostics& diag, const YAML::Node& node, Http2Options& h) {
  MapReader m(diag, node, "http2", kHttp2Keys);
  m.read("enabled", h.enabled);
  m.read("enable_connect_protocol", h.enable_connect_protocol);
  auto u32 = [&](std::string_view key, uint64_t lo, uint64_t hi, uint32_t& out) {
    uint64_t v = out;
    m.readSize(key, lo, hi, v);
    out = static_cast<uint32_t>(v);
  };
  u32("max_concurrent_streams", 1, 100000, h.max_concurrent_streams);
  u32("initial_stream_window", 65535, (uint64_t{1} << 31) - 1, h.initial_stream_window);
  u32("connection_window", 65535, (uint64_t{1} << 31) - 1, h.connection_window);
  u32("max_frame_size", 16384, 16777215, h.max_frame_size);
  u32("max_header_list_bytes", 1024, uint64_t{16} << 20, h.max_header_list_bytes);
  u32("max_resets_per_second", 1, 1000000, h.max_resets_per_second);
  u32("control_frame_budget", 10, 1000000, h.control_frame_budget);
  u32("control_frame_refill_per_second", 1, 1000000, h.control_frame_refill_per_second);
}

// `https_redirect: true` or `{port, status}`.
void readHttpsRedirect(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                       Listener& l) {
  HttpsRedirect r;
  if (node.IsScalar()) {
    std::optional<bool> on = readBool(diag, node, path);
    if (on && *on) l.https_redirect = r;
    if (on && *on && l.tls) {
      diag.add(node, path, "a TLS listener cannot redirect to HTTPS (it already is)");
    }
    return;
  }
  MapReader m(diag, node, path, kHttpsRedirectKeys);
  if (!m.isMap()) return;
  m.readInt("port", 1, kMaxPort, r.port);
  m.readInt("status", 301, 308, r.status);
  if (r.status == 304 || r.status == 305 || r.status == 306) {
    diag.add(*m.find("status"), m.path("status"), "expected 301, 302, 303, 307 or 308");
  }
  if (l.tls) {
    diag.add(node, path, "a TLS listener cannot redirect to HTTPS (it already is)");
  }
  l.https_redirect = r;
}

}  // namespace gatehouse::config
