#include "net/tls.h"

#include "net/tls_tickets.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>

namespace gatehouse::net {
namespace {

Error tlsError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// DNS names a certificate is valid for: SAN dNSName entries, else the subject CN.
std::vector<std::string> certificateNames(X509* x509) {
  std::vector<std::string> out;
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x509, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      if (gn->type != GEN_DNS) continue;
      const auto* s = gn->d.dNSName;
      out.push_back(lower(std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                      static_cast<size_t>(ASN1_STRING_length(s)))));
    }
    GENERAL_NAMES_free(sans);
  }
  if (out.empty()) {
    char cn[256] = {0};
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x509), NID_commonName, cn, sizeof cn) > 0) {
      out.push_back(lower(cn));
    }
  }
  return out;
}

bool readFile(const std::string& path, std::string& out) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
    out.append(buf, n);
  bool ok = std::ferror(f) == 0;
  std::fclose(f);
  return ok;
}

int versionConst(const std::string& v) {
  return v == "1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
}

}  // namespace

PeerCertificate peerCertificate(ssl_st* ssl) {
  PeerCertificate out;
  X509* cert = SSL_get0_peer_certificate(ssl);
  if (!cert || SSL_get_verify_result(ssl) != X509_V_OK) return out;
  BIO* bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);
  out.subject.assign(data, static_cast<size_t>(len));
  BIO_free(bio);
  auto* sans =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
      const char* kind = gn->type == GEN_DNS     ? "DNS:"
                         : gn->type == GEN_URI   ? "URI:"
                         : gn->type == GEN_EMAIL ? "email:"
                                                 : nullptr;
      if (!kind) continue;
      const ASN1_STRING* s = gn->d.ia5;
      std::string entry(kind);
      entry.append(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                   static_cast<size_t>(ASN1_STRING_length(s)));
      if (!out.sans.empty()) out.sans += ",";
      out.sans += entry;
      out.san_entries.push_back(std::move(entry));
    }
    GENERAL_NAMES_free(sans);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < md_len; ++i) {
      out.sha256 += kHex[md[i] >> 4];
      out.sha256 += kHex[md[i] & 0xf];
    }
  }
  // Header values must not carry control characters, whatever the certificate says.
  for (std::string* v : {&out.subject, &out.sans}) {
    for (char& c : *v) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    }
  }
  return out;
}

std::string takeSslErrors() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

Result<std::shared_ptr<const TlsServerContext>> TlsServerContext::create(
    const config::ListenerTls& cfg) {
  auto tc = std::make_shared<TlsServerContext>();
  tc->forward_client_cert_ = cfg.forward_client_cert;
  for (const auto& p : cfg.alpn) {
    tc->alpn_wire_.push_back(static_cast<char>(p.size()));
    tc->alpn_wire_ += p;
  }
  ERR_clear_error();
  for (size_t i = 0; i < cfg.certificates.size(); ++i) {
    const auto& c = cfg.certificates[i];
    std::string where = "certificates[" + std::to_string(i) + "]: ";
    SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
    if (!ctx) return tlsError(where + takeSslErrors());
    SSL_CTX_set_min_proto_version(ctx.get(), versionConst(cfg.min_version));
    SSL_CTX_set_max_proto_version(ctx.get(), versionConst(cfg.max_version));
    // No renegotiation (a DoS and complexity vector); prefer our cipher order.
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                       SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_read_ahead(ctx.get(), 1);
    if (cfg.ciphers && SSL_CTX_set_cipher_list(ctx.get(), cfg.ciphers->c_str()) != 1) {
      return tlsError("ciphers: no usable cipher in '" + *cfg.ciphers + "'");
    }
    if (cfg.ciphersuites && SSL_CTX_set_ciphersuites(ctx.get(), cfg.ciphersuites->c_str()) != 1) {
      return tlsError("ciphersuites: no usable suite in '" + *cfg.ciphersuites + "'");
    }
    if (cfg.groups && SSL_CTX_set1_groups_list(ctx.get(), cfg.groups->c_str()) != 1) {
      ERR_clear_error();
      return tlsError("groups: unknown group in '" + *cfg.groups + "'");
    }
    if (SSL_CTX_use_certificate_chain_file(ctx.get(), c.cert_file.c_str()) != 1) {
      return tlsError(where + "cannot load certificate '" + c.cert_file + "': " + takeSslErrors());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx.get(), c.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) {
        ERR_clear_error();
        return tlsError(where + "key '" + c.key_file + "' does not match certificate '" +
                        c.cert_file + "'");
      }
      return tlsError(where + "cannot load key '" + c.key_file + "': " + takeSslErrors());
    }
    if (SSL_CTX_check_private_key(ctx.get()) != 1) {
      ERR_clear_error();
      return tlsError(where + "key '" + c.key_file + "' does not match certificate '" +
                      c.cert_file + "'");
    }
    if (!cfg.session_tickets) {
      SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    } else {
      tickets::install(ctx.get());  // process-wide keys, rotated by the control thread
    }
    SSL_CTX_set_timeout(ctx.get(), static_cast<long>(cfg.session_timeout.count() / 1000));
    // Server-side session cache off: tickets carry the state (works across workers).
    SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_OFF);
    if (cfg.client_auth != "none" && cfg.client_ca_file) {
      if (SSL_CTX_load_verify_locations(ctx.get(), cfg.client_ca_file->c_str(), nullptr) != 1) {
        return tlsError("client_ca: cannot load '" + *cfg.client_ca_file + "': " + takeSslErrors());
      }
      STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_ca_file->c_str());
      if (names) SSL_CTX_set_client_CA_list(ctx.get(), names);
      int mode = SSL_VERIFY_PEER;
      if (cfg.client_auth == "require") mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
      SSL_CTX_set_verify(ctx.get(), mode, nullptr);
    }
    SSL_CTX_set_alpn_select_cb(ctx.get(), &TlsServerContext::onAlpn, tc.get());
    if (c.ocsp_file) {
      SSL_CTX_callback_ctrl(ctx.get(), SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB,
                            reinterpret_cast<void (*)()>(&TlsServerContext::onStatus));
      SSL_CTX_ctrl(ctx.get(), SSL_CTRL_SET_TLSEXT_STATUS_REQ_CB_ARG, 0, tc.get());
    }
    // The OpenSSL macros for these use C casts; call the ctrl functions directly.
    SSL_CTX_callback_ctrl(ctx.get(), SSL_CTRL_SET_TLSEXT_SERVERNAME_CB,
                          reinterpret_cast<void (*)()>(&TlsServerContext::onServerName));
    SSL_CTX_ctrl(ctx.get(), SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG, 0, tc.get());
    Cert cert;
    if (c.ocsp_file) {
      std::string der;
      if (!readFile(*c.ocsp_file, der)) {
        return tlsError(where + "cannot read ocsp '" + *c.ocsp_file + "'");
      }
      const auto* p = reinterpret_cast<const unsigned char*>(der.data());
      OCSP_RESPONSE* resp = d2i_OCSP_RESPONSE(nullptr, &p, static_cast<long>(der.size()));
      if (!resp) {
        ERR_clear_error();
        return tlsError(where + "ocsp '" + *c.ocsp_file + "' is not a DER OCSP response");
      }
      OCSP_RESPONSE_free(resp);
      cert.ocsp = std::move(der);
    }
    cert.names = certificateNames(SSL_CTX_get0_certificate(ctx.get()));
    cert.ctx = std::move(ctx);
    tc->certs_.push_back(std::move(cert));
  }
  if (tc->certs_.empty()) return tlsError("certificates: at least one certificate is needed");
  return std::shared_ptr<const TlsServerContext>(std::move(tc));
}

Result<std::shared_ptr<const TlsClientContext>> TlsClientContext::create(
    const config::UpstreamTls& cfg, Alpn alpn) {
  auto tc = std::make_shared<TlsClientContext>();
  ERR_clear_error();
  tc->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  if (!tc->ctx_) return tlsError(takeSslErrors());
  SSL_CTX* ctx = tc->ctx_.get();
  SSL_CTX_set_min_proto_version(ctx, versionConst(cfg.min_version));
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx, 1);
  if (cfg.ca_file) {
    if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file->c_str(), nullptr) != 1) {
      return tlsError("ca: cannot load '" + *cfg.ca_file + "': " + takeSslErrors());
    }
  } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
    return tlsError("cannot load the system trust store: " + takeSslErrors());
  }
  if (cfg.cert_file && cfg.key_file) {
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg.cert_file->c_str()) != 1) {
      return tlsError("cert: cannot load '" + *cfg.cert_file + "': " + takeSslErrors());
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg.key_file->c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
      return tlsError("key: cannot load '" + *cfg.key_file +
                      "' or it does not match the cert: " + takeSslErrors());
    }
  }
  SSL_CTX_set_verify(ctx, cfg.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  static constexpr unsigned char kAlpnH1[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  static constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};
  static constexpr unsigned char kAlpnBoth[] = {2,   'h', '2', 8,   'h', 't',
                                                't', 'p', '/', '1', '.', '1'};
  if (alpn == Alpn::kH2) {
    SSL_CTX_set_alpn_protos(ctx, kAlpnH2, sizeof kAlpnH2);
  } else if (alpn == Alpn::kBoth) {
    SSL_CTX_set_alpn_protos(ctx, kAlpnBoth, sizeof kAlpnBoth);
  } else {
    SSL_CTX_set_alpn_protos(ctx, kAlpnH1, sizeof kAlpnH1);
  }
  tc->sni_ = cfg.sni;
  tc->verify_ = cfg.verify;
  return std::shared_ptr<const TlsClientContext>(std::move(tc));
}

SslPtr TlsClientContext::newSsl(const std::string& host) const {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) return ssl;
  SSL_set_connect_state(ssl.get());
  in6_addr probe{};
  bool is_ip = inet_pton(AF_INET, host.c_str(), &probe) == 1 ||
               inet_pton(AF_INET6, host.c_str(), &probe) == 1;
  std::string name = sni_.value_or(is_ip ? std::string() : host);
  if (!name.empty()) {
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));  // the macro form uses a C cast
    if (verify_) SSL_set1_host(ssl.get(), name.c_str());
  } else if (verify_ && is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
  }
  return ssl;
}

SslPtr TlsServerContext::newSsl() const {
  SslPtr ssl(SSL_new(certs_.front().ctx.get()));
  if (ssl) SSL_set_accept_state(ssl.get());
  return ssl;
}

size_t TlsServerContext::selectCertificate(std::string_view server_name) const {
  std::string name = lower(std::string(server_name));
  for (size_t i = 0; i < certs_.size(); ++i) {
    for (const auto& n : certs_[i].names) {
      if (n == name) return i;
    }
  }
  // "*.example.com" covers exactly one label: "a.example.com", not "a.b.example.com".
  auto dot = name.find('.');
  if (dot != std::string::npos) {
    std::string wildcard = "*" + name.substr(dot);
    for (size_t i = 0; i < certs_.size(); ++i) {
      for (const auto& n : certs_[i].names) {
        if (n == wildcard) return i;
      }
    }
  }
  return 0;
}

int TlsServerContext::onServerName(SSL* ssl, int* /*alert*/, void* arg) {
  const auto* self = static_cast<const TlsServerContext*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  if (!name) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
  size_t i = self->selectCertificate(name);
  if (i != 0) SSL_set_SSL_CTX(ssl, self->certs_[i].ctx.get());
  return SSL_TLSEXT_ERR_OK;
}

int TlsServerContext::onStatus(SSL* ssl, void* arg) {
  const auto* self = static_cast<const TlsServerContext*>(arg);
  SSL_CTX* current = SSL_get_SSL_CTX(ssl);
  for (const auto& c : self->certs_) {
    if (c.ctx.get() != current || c.ocsp.empty()) continue;
    // OpenSSL takes ownership of the buffer.
    auto* copy = static_cast<unsigned char*>(OPENSSL_malloc(c.ocsp.size()));
    if (!copy) return SSL_TLSEXT_ERR_NOACK;
    std::memcpy(copy, c.ocsp.data(), c.ocsp.size());
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_STATUS_REQ_OCSP_RESP, static_cast<long>(c.ocsp.size()), copy);
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

int TlsServerContext::onAlpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                             const unsigned char* in, unsigned int inlen, void* arg) {
  const auto* self = static_cast<const TlsServerContext*>(arg);
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen,
                            reinterpret_cast<const unsigned char*>(self->alpn_wire_.data()),
                            static_cast<unsigned int>(self->alpn_wire_.size()), in,
                            inlen) != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no common protocol: carry on without ALPN (HTTP/1.1)
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace gatehouse::net
