#include "admin/access.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gatehouse::admin {

namespace {

std::string sha256(std::string_view in) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(in.data()), in.size(), md);
  return std::string(reinterpret_cast<const char*>(md), sizeof md);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < s.size()) {
    while (pos < s.size() && (s[pos] == ' ' || s[pos] == '\t'))
      ++pos;
    size_t end = pos;
    while (end < s.size() && s[end] != ' ' && s[end] != '\t')
      ++end;
    if (end > pos) out.push_back(s.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

Error invalid(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

// The subject's CN ("CN=ops,O=Example" -> "ops"), or empty.
std::string_view commonName(std::string_view subject) {
  size_t pos = 0;
  while (pos < subject.size()) {
    size_t end = subject.find(',', pos);
    if (end == std::string_view::npos) end = subject.size();
    std::string_view rdn = trim(subject.substr(pos, end - pos));
    if (rdn.starts_with("CN=")) return rdn.substr(3);
    pos = end + 1;
  }
  return {};
}

}  // namespace

Status AccessPolicy::parseTokens(std::string_view text, std::string_view where,
                                 AccessPolicy& into) {
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find_first_of("\n;", pos);
    if (end == std::string_view::npos) end = text.size();
    ++line_no;
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = trim(line);
    if (line.empty()) continue;
    const auto w = words(line);
    const std::string at = std::string(where) + ":" + std::to_string(line_no) + ": ";
    if (w.size() != 3) return invalid(at + "expected NAME ROLE TOKEN");
    Token t;
    t.name = std::string(w[0]);
    if (w[1] == "read") {
      t.role = Role::kRead;
    } else if (w[1] == "write") {
      t.role = Role::kWrite;
    } else {
      return invalid(at + "role '" + std::string(w[1]) + "' is not read or write");
    }
    if (w[2].size() < 16) return invalid(at + "token of '" + t.name + "' is under 16 characters");
    t.sha256 = sha256(w[2]);
    into.tokens_.push_back(std::move(t));
  }
  return {};
}

Result<AccessPolicy> AccessPolicy::build(const config::AdminAccess& admin) {
  AccessPolicy p;
  p.cert_roles_ = admin.cert_roles;
  if (admin.tokens_file) {
    std::ifstream f(*admin.tokens_file);
    if (!f) return invalid("admin.tokens_file: cannot read '" + *admin.tokens_file + "'");
    std::stringstream ss;
    ss << f.rdbuf();
    std::string text = ss.str();
    if (auto st = parseTokens(text, *admin.tokens_file, p); !st.ok()) return st.error();
  }
  if (admin.tokens_env) {
    const char* v = std::getenv(admin.tokens_env->c_str());
    if (!v || !*v) {
      return invalid("admin.tokens_env: environment variable " + *admin.tokens_env + " is not set");
    }
    if (auto st = parseTokens(v, "$" + *admin.tokens_env, p); !st.ok()) return st.error();
  }
  return p;
}

AuthResult AccessPolicy::authenticate(std::string_view authorization,
                                      const net::PeerCertificate* cert,
                                      bool peer_is_loopback) const {
  AuthResult r;
  if (!configured()) {
    if (peer_is_loopback) {
      r.principal = {Role::kRead, "loopback"};
    } else {
      r.failure = AuthFailure::kNotAllowed;
    }
    return r;
  }
  authorization = trim(authorization);
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "bearer ";
    std::string_view token;
    if (authorization.size() > kBearer.size()) {
      std::string scheme(authorization.substr(0, kBearer.size()));
      for (auto& c : scheme)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (scheme == kBearer) token = trim(authorization.substr(kBearer.size()));
    }
    const std::string digest = sha256(token);
    const Token* found = nullptr;
    for (const auto& t : tokens_) {
      // Compare every entry in constant time, so timing tells nothing about which one is close.
      if (CRYPTO_memcmp(t.sha256.data(), digest.data(), digest.size()) == 0) found = &t;
    }
    if (!found || token.empty()) {
      r.failure = AuthFailure::kBadToken;
      return r;
    }
    r.principal = {found->role, "token:" + found->name};
    return r;
  }
  if (cert && !cert->subject.empty()) {
    const std::string_view cn = commonName(cert->subject);
    for (const auto& cr : cert_roles_) {
      bool match = cr.match == cert->subject || (!cn.empty() && cr.match == cn);
      for (const auto& san : cert->san_entries)
        match = match || cr.match == san;
      if (!match) continue;
      r.principal = {cr.write ? Role::kWrite : Role::kRead, "cert:" + cert->subject};
      return r;
    }
  }
  r.failure = AuthFailure::kNoCredentials;
  return r;
}

}  // namespace gatehouse::admin
