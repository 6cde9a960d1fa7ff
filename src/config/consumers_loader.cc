#include "config/consumers_loader.h"

#include <cstdlib>
#include <map>
#include <set>
#include <string_view>

#include "config/credential_formats.h"
#include "config/syntax.h"

namespace gatehouse::config {
namespace {

constexpr std::string_view kConsumerKeys[] = {"name", "groups", "metadata", "credentials"};
constexpr std::string_view kCredentialKeys[] = {"api_keys", "basic", "hmac", "certificates"};
constexpr std::string_view kCertificateKeys[] = {"sha256", "subject", "san"};
// The subjectAltName kinds the TLS layer reports (net::peerCertificate).
constexpr std::string_view kSanKinds[] = {"DNS:", "URI:", "email:"};
constexpr std::string_view kApiKeyKeys[] = {"sha256"};
constexpr std::string_view kBasicKeys[] = {"username", "password"};
constexpr std::string_view kHmacKeys[] = {"key_id", "secret", "secret_env"};
constexpr size_t kMinHmacSecret = 16;  // bytes; shorter secrets are guessable offline

// Uniqueness across the whole registry; value = line of the first use.
struct Seen {
  std::map<std::string, int, std::less<>> names, digests, usernames, key_ids, certificates;

  bool add(Diagnostics& diag, std::map<std::string, int, std::less<>>& set, const YAML::Node& at,
           const std::string& path, const std::string& value, std::string_view what) {
    auto [it, inserted] = set.emplace(value, at.Mark().line + 1);
    if (inserted) return true;
    diag.add(
        at, path,
        "duplicate " + std::string(what) + " (first at line " + std::to_string(it->second) + ")");
    return false;
  }
};

void readApiKeys(Diagnostics& diag, const YAML::Node& node, const std::string& path, Seen& seen,
                 ConsumerSpec& c) {
  if (!expectList(diag, node, path)) return;
  size_t index = 0;
  for (const auto& item : node) {
    std::string item_path = indexPath(path, index++);
    if (item.IsScalar()) {
      diag.add(item, item_path,
               "expected {sha256: <hex digest>}; plaintext keys are not accepted (store the "
               "SHA-256 of the key)");
      continue;
    }
    MapReader m(diag, item, item_path, kApiKeyKeys);
    if (!m.isMap() || !m.require("sha256")) continue;
    std::string hex;
    m.read("sha256", hex);
    Sha256Digest d{};
    if (!parseHexDigest(hex, d) || d == Sha256Digest{}) {
      diag.add(*m.find("sha256"), m.path("sha256"),
               "expected 64 hex digits (the SHA-256 of the key)");
      continue;
    }
    std::string lower = toLowerAscii(hex);
    if (seen.add(diag, seen.digests, *m.find("sha256"), m.path("sha256"), lower, "API key")) {
      c.api_keys.push_back(std::move(lower));
    }
  }
}

void readBasic(Diagnostics& diag, const YAML::Node& node, const std::string& path, Seen& seen,
               ConsumerSpec& c) {
  forEachMap(diag, node, path, kBasicKeys, [&](const MapReader& m) {
    ConsumerSpec::Basic b;
    b.username = c.name;
    m.read("username", b.username);
    if (b.username.find(':') != std::string::npos || hasControlChars(b.username)) {
      diag.add(*m.find("username"), m.path("username"),
               "must not contain ':' or control characters (RFC 7617)");
      return;
    }
    if (!m.require("password")) return;
    m.read("password", b.password);
    auto parsed = parsePasswordHash(b.password);
    if (!parsed.ok()) {
      diag.add(*m.find("password"), m.path("password"), parsed.error().message);
      return;
    }
    const YAML::Node& at = m.has("username") ? *m.find("username") : m.node();
    if (b.username.empty()) return;
    if (seen.add(diag, seen.usernames, at, m.path("username"), b.username,
                 "basic-auth username '" + b.username + "'")) {
      c.basic.push_back(std::move(b));
    }
  });
}

void readHmac(Diagnostics& diag, const YAML::Node& node, const std::string& path, Seen& seen,
              ConsumerSpec& c) {
  forEachMap(diag, node, path, kHmacKeys, [&](const MapReader& m) {
    ConsumerSpec::Hmac h;
    if (!m.require("key_id")) return;
    m.read("key_id", h.key_id);
    if (h.key_id.empty() || h.key_id.find('"') != std::string::npos || hasControlChars(h.key_id)) {
      if (!h.key_id.empty()) {
        diag.add(*m.find("key_id"), m.path("key_id"),
                 "must not contain '\"' or control characters");
      }
      return;
    }
    if (m.has("secret") == m.has("secret_env")) {
      diag.add(m.node(), m.path(), "needs exactly one of secret, secret_env");
      return;
    }
    if (m.has("secret")) {
      m.read("secret", h.secret);
    } else {
      std::string var;
      m.read("secret_env", var);
      const char* v = var.empty() ? nullptr : std::getenv(var.c_str());
      if (!v || !*v) {
        diag.add(*m.find("secret_env"), m.path("secret_env"),
                 "environment variable '" + var + "' is not set or empty");
        return;
      }
      h.secret = v;
    }
    if (h.secret.size() < kMinHmacSecret) {
      std::string_view key = m.has("secret") ? "secret" : "secret_env";
      diag.add(*m.find(key), m.path(key),
               "the HMAC secret must be at least " + std::to_string(kMinHmacSecret) + " bytes");
      return;
    }
    if (seen.add(diag, seen.key_ids, *m.find("key_id"), m.path("key_id"), h.key_id,
                 "HMAC key id '" + h.key_id + "'")) {
      c.hmac.push_back(std::move(h));
    }
  });
}

// A certificate fingerprint as 64 hex digits, or as `openssl x509 -fingerprint -sha256` prints
// it (upper case, colon-separated); lower-case hex without colons, or empty when malformed.
std::string normalFingerprint(std::string_view text) {
  std::string hex;
  for (char ch : text) {
    if (ch == ':' && text.size() == 95) continue;
    hex.push_back(ch);
  }
  Sha256Digest d{};
  if (hex.size() != 64 || !parseHexDigest(hex, d)) return {};
  return toLowerAscii(hex);
}

void readCertificates(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                      Seen& seen, ConsumerSpec& c) {
  using Kind = ConsumerSpec::Certificate::Kind;
  forEachMap(diag, node, path, kCertificateKeys, [&](const MapReader& m) {
    int given = (m.has("sha256") ? 1 : 0) + (m.has("subject") ? 1 : 0) + (m.has("san") ? 1 : 0);
    if (given != 1) {
      diag.add(m.node(), m.path(), "needs exactly one of sha256, subject, san");
      return;
    }
    ConsumerSpec::Certificate cert;
    std::string_view key = m.has("sha256") ? "sha256" : m.has("subject") ? "subject" : "san";
    cert.kind = key == "sha256" ? Kind::kSha256 : key == "subject" ? Kind::kSubject : Kind::kSan;
    m.read(key, cert.value);
    const YAML::Node& at = *m.find(key);
    if (cert.kind == Kind::kSha256) {
      cert.value = normalFingerprint(cert.value);
      if (cert.value.empty()) {
        diag.add(at, m.path(key),
                 "expected the certificate's SHA-256 fingerprint: 64 hex digits, colons allowed");
        return;
      }
    } else if (cert.value.empty() || hasControlChars(cert.value)) {
      diag.add(at, m.path(key), "must be non-empty, without control characters");
      return;
    } else if (cert.kind == Kind::kSan) {
      bool known = false;
      for (auto kind : kSanKinds) {
        known = known || (cert.value.size() > kind.size() && cert.value.starts_with(kind));
      }
      if (!known) {
        diag.add(at, m.path(key),
                 "expected one subjectAltName entry with its type: DNS:<name>, URI:<uri> or "
                 "email:<address>");
        return;
      }
    }
    std::string unique = std::string(key) + '\n' + cert.value;
    if (seen.add(diag, seen.certificates, at, m.path(key), unique,
                 "certificate " + std::string(key) + " '" + cert.value + "'")) {
      c.certificates.push_back(std::move(cert));
    }
  });
}

void readMetadata(Diagnostics& diag, const YAML::Node& node, const std::string& path,
                  ConsumerSpec& c) {
  if (!node.IsMap()) {
    diag.add(node, path, "expected a map of string keys to string values, got " + describe(node));
    return;
  }
  std::set<std::string> keys;
  for (const auto& kv : node) {
    std::optional<std::string> key = readString(diag, kv.first, path);
    if (!key) continue;
    std::string item_path = childPath(path, *key);
    std::optional<std::string> value = readString(diag, kv.second, item_path, true);
    if (!value) continue;
    // Values may be forwarded upstream as header values.
    if (hasControlChars(*value)) {
      diag.add(kv.second, item_path, "must not contain control characters");
      continue;
    }
    if (!keys.insert(*key).second) {
      diag.add(kv.first, item_path, "duplicate metadata key '" + *key + "'");
      continue;
    }
    c.metadata.emplace_back(std::move(*key), std::move(*value));
  }
}

}  // namespace

std::vector<ConsumerSpec> readConsumers(Diagnostics& diag, const YAML::Node& node,
                                        const std::string& path) {
  std::vector<ConsumerSpec> out;
  Seen seen;
  forEachMap(diag, node, path, kConsumerKeys, [&](const MapReader& m) {
    ConsumerSpec c;
    c.line = m.node().Mark().line + 1;
    c.yaml_path = m.path();
    if (!m.require("name")) return;
    m.read("name", c.name);
    if (c.name.empty()) return;
    if (hasControlChars(c.name)) {
      diag.add(*m.find("name"), m.path("name"), "must not contain control characters");
      return;
    }
    seen.add(diag, seen.names, *m.find("name"), m.path("name"), c.name,
             "consumer name '" + c.name + "'");
    if (const YAML::Node* g = m.find("groups")) {
      std::string gpath = m.path("groups");
      if (expectList(diag, *g, gpath)) {
        size_t gi = 0;
        for (const auto& group : *g) {
          if (auto s = readString(diag, group, indexPath(gpath, gi++))) {
            c.groups.push_back(std::move(*s));
          }
        }
      }
    }
    if (const YAML::Node* md = m.find("metadata")) readMetadata(diag, *md, m.path("metadata"), c);
    if (const YAML::Node* cr = m.find("credentials")) {
      MapReader cm(diag, *cr, m.path("credentials"), kCredentialKeys);
      if (cm.isMap()) {
        if (const YAML::Node* v = cm.find("api_keys")) {
          readApiKeys(diag, *v, cm.path("api_keys"), seen, c);
        }
        if (const YAML::Node* v = cm.find("basic")) readBasic(diag, *v, cm.path("basic"), seen, c);
        if (const YAML::Node* v = cm.find("hmac")) readHmac(diag, *v, cm.path("hmac"), seen, c);
        if (const YAML::Node* v = cm.find("certificates")) {
          readCertificates(diag, *v, cm.path("certificates"), seen, c);
        }
      }
    }
    out.push_back(std::move(c));
  });
  return out;
}

}  // namespace gatehouse::config
