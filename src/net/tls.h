#pragma once
// TLS termination contexts (OpenSSL 3). A TlsServerContext is built from a listener's config on
// the control thread when a snapshot is built (so a reload picks up new certificate files, and a
// bad file rejects the reload), then shared read-only by every worker. Each certificate gets its
// own SSL_CTX; the SNI callback moves a handshake to the certificate whose names match.
#include <openssl/ssl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/model.h"
#include "core/result.h"

namespace gatehouse::net {

struct SslCtxDeleter {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

class TlsServerContext {
 public:
  static Result<std::shared_ptr<const TlsServerContext>> create(const config::ListenerTls& cfg);
  bool forwardClientCert() const { return forward_client_cert_; }

  // A new server-side SSL for an accepted connection (worker thread), or null on failure.
  SslPtr newSsl() const;
  // The certificate index chosen for `server_name` (exact match, then the longest wildcard,
  // then the default, 0). Exposed for tests.
  size_t selectCertificate(std::string_view server_name) const;
  const std::vector<std::string>& names(size_t cert) const { return certs_[cert].names; }
  size_t certificateCount() const { return certs_.size(); }

 private:
  struct Cert {
    SslCtxPtr ctx;
    std::string ocsp;                // DER response to staple; empty = none
    std::vector<std::string> names;  // lower-case DNS names from SAN (or CN), may be "*.x.y"
  };
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onStatus(SSL* ssl, void* arg);
  static int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                    const unsigned char* in, unsigned int inlen, void* arg);
  std::vector<Cert> certs_;
  std::string alpn_wire_;  // server preference list in ALPN wire format
  bool forward_client_cert_ = false;
};

// TLS to upstreams: one SSL_CTX per cluster, built with the snapshot, shared by workers.
class TlsClientContext {
 public:
  // What to offer by ALPN: http/1.1, h2 only (HTTP/2 upstreams), or both (protocol auto).
  enum class Alpn { kHttp1, kH2, kBoth };
  static Result<std::shared_ptr<const TlsClientContext>> create(const config::UpstreamTls& cfg,
                                                                Alpn alpn = Alpn::kHttp1);
  // A client-side SSL for a connection to `host` (an IP literal or a name): SNI and name
  // verification use the configured sni, else the host when it is a name.
  SslPtr newSsl(const std::string& host) const;

 private:
  SslCtxPtr ctx_;
  std::optional<std::string> sni_;
  bool verify_ = true;
};

// The verified client certificate of a finished handshake (empty subject: none was sent).
struct PeerCertificate {
  std::string subject;  // RFC 2253 form, e.g. "CN=client.test,O=Example"
  std::string sans;     // comma-separated "DNS:a,URI:spiffe://x,IP:1.2.3.4"
  // The same entries one by one, unaltered: a value may itself hold a comma (a URI), so only
  // this list tells where one entry ends (identity matching must not split `sans`).
  std::vector<std::string> san_entries;
  std::string sha256;  // lower-case hex of the DER
};
PeerCertificate peerCertificate(ssl_st* ssl);

// The last OpenSSL error queue entries as text (and clears the queue).
std::string takeSslErrors();

}  // namespace gatehouse::net
