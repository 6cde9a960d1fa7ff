#pragma once
// TLS termination contexts (OpenSSL 3). A TlsServerContext is built from a listener's config on
// the control thread when a snapshot is built (so a reload picks up new certificate files, and a
// bad file rejects the reload), then shared read-only by every worker. Each certificate gets its
// own SSL_CTX; the SNI callback moves a handshake to the certificate whose names match.
#include <openssl/ssl.h>

#include <memory>
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
    std::vector<std::string> names;  // lower-case DNS names from SAN (or CN), may be "*.x.y"
  };
  static int onServerName(SSL* ssl, int* alert, void* arg);
  static int onAlpn(SSL* ssl, const unsigned char** out, unsigned char* outlen,
                    const unsigned char* in, unsigned int inlen, void* arg);
  std::vector<Cert> certs_;
  std::string alpn_wire_;  // server preference list in ALPN wire format
};

// The last OpenSSL error queue entries as text (and clears the queue).
std::string takeSslErrors();

}  // namespace gatehouse::net
