// PROXY protocol v1/v2: spec examples, every prefix of a valid header needs more bytes, every
// malformed case has its typed error, and writer output parses back to the same values.
#include "net/proxy_protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using namespace gatehouse::net;
using namespace gatehouse::net::proxy_protocol;

std::string be16(size_t v) {
  return {static_cast<char>(v >> 8), static_cast<char>(v & 0xff)};
}

std::string v2(uint8_t ver_cmd, uint8_t fam, const std::string& payload) {
  return std::string(kV2Signature) + static_cast<char>(ver_cmd) + static_cast<char>(fam) +
         be16(payload.size()) + payload;
}

// TCP4 192.0.2.1:5000 -> 198.51.100.2:443
std::string v4Block() {
  return std::string("\xc0\x00\x02\x01\xc6\x33\x64\x02\x13\x88\x01\xbb", 12);
}

ParseStatus run(const std::string& in, Header& h, ParseError& err, ParseOptions o = {}) {
  return parse(in, o, h, err);
}

ParseError errorOf(const std::string& in, ParseOptions o = {}) {
  Header h;
  ParseError err = ParseError::kNone;
  EXPECT_EQ(run(in, h, err, o), ParseStatus::kError) << in.size();
  return err;
}

SocketAddress addr(const char* ip, uint16_t port) {
  return SocketAddress::parse(ip, port).value();
}

TEST(ProxyProtocolV1, Tcp4AndTcp6) {
  Header h;
  ParseError err;
  const std::string line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
  ASSERT_EQ(run(line + "GET / HTTP/1.1\r\n", h, err), ParseStatus::kComplete) << toString(err);
  EXPECT_EQ(h.version, Version::kV1);
  EXPECT_EQ(h.size, line.size());
  EXPECT_EQ(h.family, Family::kInet);
  EXPECT_EQ(h.source.toString(), "192.168.0.1:56324");
  EXPECT_EQ(h.destination.toString(), "192.168.0.11:443");
  ASSERT_EQ(run("PROXY TCP6 2001:db8::1 ::1 1 65535\r\n", h, err), ParseStatus::kComplete);
  EXPECT_EQ(h.family, Family::kInet6);
  EXPECT_EQ(h.source.toString(), "[2001:db8::1]:1");
  EXPECT_EQ(h.destination.port(), 65535);
}

TEST(ProxyProtocolV1, UnknownUsesRealAddresses) {
  Header h;
  ParseError err;
  ASSERT_EQ(run("PROXY UNKNOWN\r\n", h, err), ParseStatus::kComplete);
  EXPECT_EQ(h.size, 15u);
  EXPECT_FALSE(h.hasAddresses());
  const std::string worst =
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
      "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
  ASSERT_EQ(worst.size(), kV1MaxLine);
  ASSERT_EQ(run(worst, h, err), ParseStatus::kComplete);
  EXPECT_FALSE(h.hasAddresses());
  // One byte more: the CRLF ends past byte 107.
  const std::string longer = worst.substr(0, 14) + "f" + worst.substr(14);
  ASSERT_EQ(longer.size(), kV1MaxLine + 1);
  EXPECT_EQ(run(longer, h, err), ParseStatus::kError);
  EXPECT_EQ(err, ParseError::kV1LineTooLong);
  EXPECT_EQ(run(longer.substr(0, kV1MaxLine - 1), h, err), ParseStatus::kError);
}

TEST(ProxyProtocolV1, EveryPrefixNeedsMore) {
  const std::string line = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 80\r\n";
  for (size_t n = 0; n < line.size(); ++n) {
    Header h;
    ParseError err;
    ASSERT_EQ(run(line.substr(0, n), h, err), ParseStatus::kNeedMore) << n;
  }
}

TEST(ProxyProtocolV1, Malformed) {
  EXPECT_EQ(errorOf("GET / HTTP/1.1\r\n"), ParseError::kNotProxyProtocol);
  EXPECT_EQ(errorOf("PRAXY"), ParseError::kNotProxyProtocol);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), ParseError::kV1BadSyntax);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX"), ParseError::kV1BadSyntax);
  EXPECT_EQ(errorOf("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), ParseError::kV1BadSyntax);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n"), ParseError::kV1BadSyntax);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), ParseError::kV1BadSyntax);
  EXPECT_EQ(errorOf("PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n"), ParseError::kV1BadSyntax);
  EXPECT_EQ(errorOf("PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n"), ParseError::kV1BadSyntax);
  EXPECT_EQ(errorOf(std::string("PROXY TCP4 1.2.3.4\0", 19)), ParseError::kV1BadSyntax);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n"), ParseError::kV1BadAddress);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"), ParseError::kV1BadAddress);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), ParseError::kV1BadAddress);
  EXPECT_EQ(errorOf("PROXY TCP4 ::1 5.6.7.8 1 2\r\n"), ParseError::kV1BadAddress);
  EXPECT_EQ(errorOf("PROXY TCP6 1.2.3.4 ::1 1 2\r\n"), ParseError::kV1BadAddress);
  EXPECT_EQ(errorOf("PROXY TCP6 ::1 ::g 1 2\r\n"), ParseError::kV1BadAddress);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), ParseError::kV1BadPort);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n"), ParseError::kV1BadPort);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n"), ParseError::kV1BadPort);
  EXPECT_EQ(errorOf("PROXY " + std::string(kV1MaxLine, 'A')), ParseError::kV1LineTooLong);
  EXPECT_EQ(errorOf("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n", ParseOptions{false, true, 4096}),
            ParseError::kVersionNotAllowed);
}

TEST(ProxyProtocolV2, Tcp4WithTlvs) {
  const std::string tlvs = std::string("\x01", 1) + be16(2) + "h2" + std::string("\x02", 1) +
                           be16(11) + "example.com" + std::string("\x05", 1) + be16(3) + "id1" +
                           std::string("\x04", 1) + be16(2) + "pp" + std::string("\xe0", 1) +
                           be16(1) + "x";
  const std::string in = v2(0x21, 0x11, v4Block() + tlvs);
  Header h;
  ParseError err;
  ASSERT_EQ(run(in + "payload", h, err), ParseStatus::kComplete) << toString(err);
  EXPECT_EQ(h.version, Version::kV2);
  EXPECT_EQ(h.command, Command::kProxy);
  EXPECT_EQ(h.transport, Transport::kStream);
  EXPECT_EQ(h.size, in.size());
  EXPECT_EQ(h.source.toString(), "192.0.2.1:5000");
  EXPECT_EQ(h.destination.toString(), "198.51.100.2:443");
  EXPECT_EQ(h.alpn, "h2");
  EXPECT_EQ(h.authority, "example.com");
  EXPECT_EQ(h.unique_id, "id1");
  ASSERT_EQ(h.other_tlvs.size(), 1u);  // NOOP dropped, custom kept raw
  EXPECT_EQ(h.other_tlvs[0].type, 0xe0);
  EXPECT_EQ(h.other_tlvs[0].value, "x");
  for (size_t n = 0; n < in.size(); ++n) {
    ASSERT_EQ(run(in.substr(0, n), h, err), ParseStatus::kNeedMore) << n;
  }
}

TEST(ProxyProtocolV2, LocalAndUnspecIgnoreTheBlock) {
  Header h;
  ParseError err;
  ASSERT_EQ(run(v2(0x20, 0x00, ""), h, err), ParseStatus::kComplete);
  EXPECT_EQ(h.command, Command::kLocal);
  EXPECT_FALSE(h.hasAddresses());
  // LOCAL with an address block: skipped, not used.
  ASSERT_EQ(run(v2(0x20, 0x11, v4Block()), h, err), ParseStatus::kComplete);
  EXPECT_FALSE(h.hasAddresses());
  EXPECT_EQ(h.size, 28u);
  ASSERT_EQ(run(v2(0x21, 0x00, "junk"), h, err), ParseStatus::kComplete);
  EXPECT_FALSE(h.hasAddresses());
  ASSERT_EQ(run(v2(0x21, 0x31, std::string(216, 'u')), h, err), ParseStatus::kComplete);
  EXPECT_EQ(h.family, Family::kUnix);
  EXPECT_FALSE(h.hasAddresses());
}

TEST(ProxyProtocolV2, Crc32c) {
  // The checksum TLV computed over the header with its value zeroed (RFC 4960 CRC32c).
  std::string in =
      v2(0x21, 0x11, v4Block() + std::string("\x03", 1) + be16(4) + std::string(4, '\0'));
  Header h;
  ParseError err;
  EXPECT_EQ(run(in, h, err), ParseStatus::kError);
  EXPECT_EQ(err, ParseError::kV2BadTlv);
  uint32_t crc = 0xffffffffu;
  for (unsigned char byte : in) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k)
      crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
  }
  crc = ~crc;
  for (int i = 0; i < 4; ++i)
    in[in.size() - 4 + static_cast<size_t>(i)] = static_cast<char>(crc >> (24 - 8 * i));
  EXPECT_EQ(run(in, h, err), ParseStatus::kComplete) << toString(err);
}

TEST(ProxyProtocolV2, Malformed) {
  EXPECT_EQ(errorOf(std::string("\r\n\r\n\0\r\nQUIX", 12)), ParseError::kNotProxyProtocol);
  EXPECT_EQ(errorOf(v2(0x11, 0x11, v4Block())), ParseError::kV2BadVersion);
  EXPECT_EQ(errorOf(v2(0x22, 0x11, v4Block())), ParseError::kV2BadCommand);
  EXPECT_EQ(errorOf(v2(0x21, 0x41, v4Block())), ParseError::kV2BadFamily);
  EXPECT_EQ(errorOf(v2(0x21, 0x13, v4Block())), ParseError::kV2BadFamily);
  EXPECT_EQ(errorOf(v2(0x21, 0x11, v4Block().substr(0, 11))), ParseError::kV2AddressTooShort);
  EXPECT_EQ(errorOf(v2(0x21, 0x21, std::string(35, 'a'))), ParseError::kV2AddressTooShort);
  EXPECT_EQ(errorOf(v2(0x21, 0x11, v4Block() + "\x01\x00")), ParseError::kV2BadTlv);
  EXPECT_EQ(errorOf(v2(0x21, 0x11, v4Block() + std::string("\x01\x00\x05h2", 5))),
            ParseError::kV2BadTlv);
  const std::string alpn = std::string("\x01", 1) + be16(2) + "h2";
  EXPECT_EQ(errorOf(v2(0x21, 0x11, v4Block() + alpn + alpn)), ParseError::kV2BadTlv);
  EXPECT_EQ(errorOf(v2(0x21, 0x11,
                       v4Block() + std::string("\x05", 1) + be16(129) + std::string(129, 'i'))),
            ParseError::kV2BadTlv);
  EXPECT_EQ(errorOf(v2(0x21, 0x11, v4Block() + std::string("\x03", 1) + be16(3) + "abc")),
            ParseError::kV2BadTlv);
  // Too large is known from the fixed part, before the bytes arrive.
  const std::string big = v2(0x21, 0x11, v4Block() + std::string(5000, '\0'));
  EXPECT_EQ(errorOf(big.substr(0, 16)), ParseError::kV2TooLarge);
  EXPECT_EQ(errorOf(v2(0x21, 0x11, v4Block()), ParseOptions{true, false, 4096}),
            ParseError::kVersionNotAllowed);
}

TEST(ProxyProtocol, Detect) {
  EXPECT_EQ(detect(""), Detection::kUndecided);
  EXPECT_EQ(detect("PRO"), Detection::kUndecided);
  EXPECT_EQ(detect("PROXY"), Detection::kV1);
  EXPECT_EQ(detect("POST /"), Detection::kNeither);
  EXPECT_EQ(detect("\r\n\r\n"), Detection::kUndecided);
  EXPECT_EQ(detect("\r\n\r\nGET"), Detection::kNeither);
  EXPECT_EQ(detect(kV2Signature), Detection::kV2);
  EXPECT_EQ(detect("\x16\x03\x01"), Detection::kNeither);
}

TEST(ProxyProtocol, WriteV1RoundTrip) {
  WriteParams p;
  p.source = addr("10.1.2.3", 40000);
  p.destination = addr("10.0.0.1", 8443);
  const std::string v4 = writeV1(p);
  EXPECT_EQ(v4, "PROXY TCP4 10.1.2.3 10.0.0.1 40000 8443\r\n");
  p.source = addr("2001:db8::7", 1);
  p.destination = addr("::1", 2);
  Header h;
  ParseError err;
  ASSERT_EQ(run(writeV1(p), h, err), ParseStatus::kComplete) << toString(err);
  EXPECT_EQ(h.source.toString(), "[2001:db8::7]:1");
  EXPECT_EQ(h.destination.toString(), "[::1]:2");
  p.destination = addr("10.0.0.1", 2);  // mixed families
  EXPECT_EQ(writeV1(p), "PROXY UNKNOWN\r\n");
}

TEST(ProxyProtocol, WriteV2RoundTrip) {
  for (const char* ip : {"10.1.2.3", "2001:db8::7"}) {
    WriteParams p;
    p.source = addr(ip, 40000);
    p.destination = addr(ip, 443);
    p.alpn = "http/1.1";
    p.authority = "api.example.com";
    p.unique_id = "req-1";
    auto wire = writeV2(p);
    ASSERT_TRUE(wire.ok());
    Header h;
    ParseError err;
    ASSERT_EQ(run(*wire, h, err), ParseStatus::kComplete) << toString(err);
    EXPECT_EQ(h.size, wire->size());
    EXPECT_EQ(h.source.toString(), p.source.toString());
    EXPECT_EQ(h.destination.toString(), p.destination.toString());
    EXPECT_EQ(h.alpn, "http/1.1");
    EXPECT_EQ(h.authority, "api.example.com");
    EXPECT_EQ(h.unique_id, "req-1");
  }
  WriteParams local;
  local.command = Command::kLocal;
  auto wire = writeV2(local);
  ASSERT_TRUE(wire.ok());
  EXPECT_EQ(wire->size(), kV2FixedSize);
  std::string too_long(129, 'u');
  local.unique_id = too_long;
  EXPECT_FALSE(writeV2(local).ok());
}

}  // namespace
