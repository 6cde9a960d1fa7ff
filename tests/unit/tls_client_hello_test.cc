// ClientHello inspection: real hellos from OpenSSL (whole, split at every byte, re-framed into
// many records), each malformed field built by hand, the size bound, and the SNI router.
#include "net/tls_client_hello.h"

#include <gtest/gtest.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>

namespace {

using namespace gatehouse::net::tls_hello;

// The bytes an OpenSSL client sends first.
std::string opensslHello(const char* sni, const std::string& alpn_wire) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
  BIO* rbio = BIO_new(BIO_s_mem());
  BIO* wbio = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), rbio, wbio);
  if (sni) {
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(sni));
  }
  if (!alpn_wire.empty()) {
    SSL_set_alpn_protos(ssl.get(), reinterpret_cast<const unsigned char*>(alpn_wire.data()),
                        static_cast<unsigned>(alpn_wire.size()));
  }
  SSL_set_connect_state(ssl.get());
  (void)SSL_do_handshake(ssl.get());
  char* data = nullptr;
  const long n = BIO_get_mem_data(wbio, &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string be16(size_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}
std::string be24(size_t v) {
  return static_cast<char>(v >> 16) + be16(v & 0xffff);
}

// One handshake record around a ClientHello body.
std::string wrap(const std::string& body) {
  const std::string hs = "\x01" + be24(body.size()) + body;
  return std::string("\x16\x03\x01", 3) + be16(hs.size()) + hs;
}

std::string extension(uint16_t type, const std::string& data) {
  return be16(type) + be16(data.size()) + data;
}

std::string sniExtension(const std::string& name) {
  const std::string entry = std::string(1, '\0') + be16(name.size()) + name;
  return extension(0, be16(entry.size()) + entry);
}

// legacy_version, random, empty session id, one suite, null compression, then `extensions`.
std::string body(const std::string& extensions, bool with_ext_block = true) {
  std::string b = "\x03\x03" + std::string(32, 'r') + std::string(1, '\0') + be16(2) + "\x13\x01" +
                  std::string("\x01\x00", 2);
  if (with_ext_block) b += be16(extensions.size()) + extensions;
  return b;
}

HelloStatus run(const std::string& in, ClientHello& out, HelloError& err, size_t limit = 16384) {
  err = HelloError::kNone;
  return inspect(in, Limits{limit}, out, err);
}

HelloError errorOf(const std::string& in) {
  ClientHello h;
  HelloError err = HelloError::kNone;
  EXPECT_EQ(run(in, h, err), HelloStatus::kError) << toString(err);
  return err;
}

TEST(TlsClientHello, OpensslHelloWithSniAndAlpn) {
  const std::string alpn("\x02h2\x08http/1.1", 12);
  const std::string in = opensslHello("API.Example.com", alpn);
  ClientHello h;
  HelloError err;
  ASSERT_EQ(run(in, h, err), HelloStatus::kComplete) << toString(err);
  EXPECT_EQ(h.server_name, "api.example.com");
  ASSERT_EQ(h.alpn.size(), 2u);
  EXPECT_EQ(h.alpn[0], "h2");
  EXPECT_EQ(h.alpn[1], "http/1.1");
  EXPECT_EQ(h.legacy_version, 0x0303);
  EXPECT_FALSE(h.supported_versions.empty());
  EXPECT_EQ(h.record_bytes, in.size());
}

TEST(TlsClientHello, EveryPrefixNeedsMoreThenCompletes) {
  const std::string in = opensslHello("db.internal", std::string("\x02h2", 3));
  for (size_t n = 0; n < in.size(); ++n) {
    ClientHello h;
    HelloError err;
    ASSERT_EQ(run(in.substr(0, n), h, err), HelloStatus::kNeedMore) << "prefix " << n;
  }
  ClientHello h;
  HelloError err;
  ASSERT_EQ(run(in + "trailing", h, err), HelloStatus::kComplete);
  EXPECT_EQ(h.server_name, "db.internal");
  EXPECT_EQ(h.record_bytes, in.size());
}

TEST(TlsClientHello, HelloSplitOverManyRecords) {
  const std::string one = opensslHello("split.example.com", "");
  const std::string hs = one.substr(5);
  for (size_t piece : {1u, 3u, 7u, 100u}) {
    std::string records;
    for (size_t at = 0; at < hs.size(); at += piece) {
      const std::string frag = hs.substr(at, piece);
      records += std::string("\x16\x03\x01", 3) + be16(frag.size()) + frag;
    }
    for (size_t n = 0; n < records.size(); ++n) {
      ClientHello h;
      HelloError err;
      ASSERT_EQ(run(records.substr(0, n), h, err, 1 << 20), HelloStatus::kNeedMore)
          << piece << "/" << n;
    }
    ClientHello h;
    HelloError err;
    ASSERT_EQ(run(records, h, err, 1 << 20), HelloStatus::kComplete) << toString(err);
    EXPECT_EQ(h.server_name, "split.example.com");
    EXPECT_EQ(h.record_bytes, records.size());
  }
}

TEST(TlsClientHello, NotTls) {
  ClientHello h;
  HelloError err;
  EXPECT_EQ(run("GET / HTTP/1.1\r\n", h, err), HelloStatus::kNotTls);
  EXPECT_EQ(run("G", h, err), HelloStatus::kNotTls);
  EXPECT_EQ(run("\x16\x01", h, err), HelloStatus::kNotTls);
  EXPECT_EQ(run(std::string("\x80\x2e\x01\x03\x01", 5), h, err), HelloStatus::kNotTls);  // SSLv2
  EXPECT_EQ(run("", h, err), HelloStatus::kNeedMore);
  EXPECT_EQ(run("\x16", h, err), HelloStatus::kNeedMore);
}

TEST(TlsClientHello, MinimalHelloWithoutExtensions) {
  ClientHello h;
  HelloError err;
  ASSERT_EQ(run(wrap(body("", false)), h, err), HelloStatus::kComplete);
  EXPECT_TRUE(h.server_name.empty());
  EXPECT_TRUE(h.alpn.empty());
}

TEST(TlsClientHello, MalformedRecordsAndHandshake) {
  EXPECT_EQ(errorOf(std::string("\x16\x03\x01\x00\x00", 5)), HelloError::kBadRecord);
  EXPECT_EQ(errorOf(std::string("\x16\x03\x01\x40\x01", 5)), HelloError::kBadRecord);
  EXPECT_EQ(errorOf(std::string("\x16\x03\x01\x00\x04\x02\x00\x00\x00", 9)),
            HelloError::kNotClientHello);
  // A second record that is not a handshake record.
  const std::string hs = "\x01" + be24(body("").size()) + body("");
  const std::string split = std::string("\x16\x03\x01", 3) + be16(3) + hs.substr(0, 3) +
                            std::string("\x17\x03\x03", 3) + be16(hs.size() - 3) + hs.substr(3);
  EXPECT_EQ(errorOf(split), HelloError::kBadRecord);
  // Handshake length larger than its contents allow is fine to wait for; leftover is not.
  EXPECT_EQ(errorOf(wrap(body("") + "x")), HelloError::kBadLength);
}

TEST(TlsClientHello, MalformedBodyFields) {
  std::string b = body("");
  b[34] = 33;  // session id length
  EXPECT_EQ(errorOf(wrap(b)), HelloError::kBadSessionId);
  b = body("");
  b[36] = 3;  // odd cipher_suites length
  EXPECT_EQ(errorOf(wrap(b)), HelloError::kBadCipherSuites);
  b = body("");
  b[35] = b[36] = 0;  // empty cipher_suites
  EXPECT_EQ(errorOf(wrap(b)), HelloError::kBadCipherSuites);
  b = body("", false);
  b[39] = 0;  // empty compression_methods
  EXPECT_EQ(errorOf(wrap(b.substr(0, 40))), HelloError::kBadCompression);
  EXPECT_EQ(errorOf(wrap(body("").substr(0, 20))), HelloError::kBadLength);
  // Extensions block length disagreeing with what is left.
  b = body(sniExtension("a.b"));
  b += "z";
  EXPECT_EQ(errorOf(wrap(b)), HelloError::kBadLength);
  // An extension running past the block.
  EXPECT_EQ(errorOf(wrap(body(be16(0) + be16(50) + "abc"))), HelloError::kBadLength);
}

TEST(TlsClientHello, MalformedExtensions) {
  EXPECT_EQ(errorOf(wrap(body(sniExtension("a.com") + sniExtension("b.com")))),
            HelloError::kDuplicateExtension);
  EXPECT_EQ(errorOf(wrap(body(sniExtension("bad..name")))), HelloError::kBadServerName);
  EXPECT_EQ(errorOf(wrap(body(sniExtension("-a.com")))), HelloError::kBadServerName);
  EXPECT_EQ(errorOf(wrap(body(sniExtension("a.com.")))), HelloError::kBadServerName);
  EXPECT_EQ(errorOf(wrap(body(sniExtension(std::string("a\0b", 3))))), HelloError::kBadServerName);
  EXPECT_EQ(errorOf(wrap(body(sniExtension(std::string(64, 'a') + ".com")))),
            HelloError::kBadServerName);
  EXPECT_EQ(errorOf(wrap(body(extension(0, be16(0))))), HelloError::kBadServerName);
  // server_name_list length larger than the extension.
  EXPECT_EQ(errorOf(wrap(body(extension(0, be16(9) + std::string(1, '\0') + be16(1) + "a")))),
            HelloError::kBadServerName);
  // Two host_names in one list.
  const std::string two =
      std::string(1, '\0') + be16(1) + "a" + std::string(1, '\0') + be16(1) + "b";
  EXPECT_EQ(errorOf(wrap(body(extension(0, be16(two.size()) + two)))), HelloError::kBadServerName);
  EXPECT_EQ(errorOf(wrap(body(extension(16, be16(0))))), HelloError::kBadAlpn);
  EXPECT_EQ(errorOf(wrap(body(extension(16, be16(1) + std::string(1, '\0'))))),
            HelloError::kBadAlpn);
  EXPECT_EQ(errorOf(wrap(body(extension(16, be16(3) + "\x05h2")))), HelloError::kBadAlpn);
  EXPECT_EQ(errorOf(wrap(body(extension(43, "\x03\x03\x04\x03")))),
            HelloError::kBadSupportedVersions);
  EXPECT_EQ(errorOf(wrap(body(extension(43, std::string(1, '\0'))))),
            HelloError::kBadSupportedVersions);
}

TEST(TlsClientHello, OtherNameTypesAreSkipped) {
  const std::string entries =
      std::string("\x07", 1) + be16(2) + "zz" + std::string(1, '\0') + be16(5) + "a.org";
  ClientHello h;
  HelloError err;
  ASSERT_EQ(run(wrap(body(extension(0, be16(entries.size()) + entries))), h, err),
            HelloStatus::kComplete)
      << toString(err);
  EXPECT_EQ(h.server_name, "a.org");
}

TEST(TlsClientHello, SizeLimit) {
  const std::string big = wrap(body(extension(0xfe00, std::string(3000, 'p'))));
  ClientHello h;
  HelloError err;
  EXPECT_EQ(run(big, h, err, 1024), HelloStatus::kError);
  EXPECT_EQ(err, HelloError::kTooLarge);
  // Known too large from the handshake header alone, before the bytes arrive.
  EXPECT_EQ(run(big.substr(0, 9), h, err, 1024), HelloStatus::kError);
  EXPECT_EQ(err, HelloError::kTooLarge);
  ASSERT_EQ(run(big, h, err, 4096), HelloStatus::kComplete);
  // Records so small that their headers push the total over the limit.
  const std::string hs = big.substr(5);
  std::string records;
  for (size_t at = 0; at < hs.size(); at += 2) {
    records += std::string("\x16\x03\x01", 3) + be16(std::min<size_t>(2, hs.size() - at)) +
               hs.substr(at, 2);
  }
  EXPECT_EQ(run(records, h, err, 4096), HelloStatus::kError);
  EXPECT_EQ(err, HelloError::kTooLarge);
}

TEST(TlsClientHello, HostNames) {
  EXPECT_TRUE(isValidHostName("a"));
  EXPECT_TRUE(isValidHostName("x-1.example_corp.com"));
  EXPECT_FALSE(isValidHostName(""));
  EXPECT_FALSE(isValidHostName("a-.b"));
  EXPECT_FALSE(isValidHostName(".a"));
  EXPECT_FALSE(isValidHostName("a b"));
  EXPECT_FALSE(isValidHostName(std::string(254, 'a')));
}

TEST(SniRouter, MostSpecificFirst) {
  SniRouter r;
  ASSERT_TRUE(r.add("api.example.com", 1).ok());
  ASSERT_TRUE(r.add("*.example.com", 2).ok());
  ASSERT_TRUE(r.add("*.EU.example.com", 3).ok());
  EXPECT_EQ(r.match("api.example.com"), 1u);
  EXPECT_EQ(r.match("API.Example.COM"), 1u);
  EXPECT_EQ(r.match("web.example.com"), 2u);
  EXPECT_EQ(r.match("db.eu.example.com"), 3u);
  EXPECT_FALSE(r.match("a.b.example.com").has_value());  // one label only
  EXPECT_FALSE(r.match("example.com").has_value());
  EXPECT_FALSE(r.match("").has_value());
  r.setDefault(9);
  EXPECT_EQ(r.match("example.com"), 9u);
  EXPECT_EQ(r.match(""), 9u);
  EXPECT_EQ(r.match(".example.com"), 9u);
}

TEST(SniRouter, RejectsBadAndDuplicatePatterns) {
  SniRouter r;
  EXPECT_FALSE(r.add("", 0).ok());
  EXPECT_FALSE(r.add("*", 0).ok());
  EXPECT_FALSE(r.add("a.*.com", 0).ok());
  EXPECT_FALSE(r.add("*.*.com", 0).ok());
  EXPECT_FALSE(r.add("bad..com", 0).ok());
  ASSERT_TRUE(r.add("a.com", 0).ok());
  EXPECT_FALSE(r.add("A.COM", 1).ok());
}

}  // namespace
