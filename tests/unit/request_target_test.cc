#include "http/request_target.h"

#include <gtest/gtest.h>

#include <cctype>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace gatehouse::http {
namespace {

using config::PathNormalization;

// Normalised path, or "ERR<status>" so expectations read as one table.
std::string norm(std::string_view path, const PathNormalization& n = {}) {
  std::string out;
  TargetError err;
  if (!normalizePath(path, n, out, err)) return "ERR" + std::to_string(err.status);
  return out;
}

struct Parsed {
  bool ok = false;
  Target target;
  TargetError err;
};

Parsed parse(std::string_view raw, std::string_view method = "GET",
             const PathNormalization& n = {}) {
  Parsed p;
  p.ok = parseTarget(raw, method, n, p.target, p.err);
  return p;
}

TEST(RequestTarget, OriginFormSplitsPathAndQuery) {
  Parsed p = parse("/api/v1/users?x=1&y=%2e%2e/..");
  ASSERT_TRUE(p.ok) << p.err.reason;
  EXPECT_EQ(p.target.form, TargetForm::kOrigin);
  EXPECT_EQ(p.target.path, "/api/v1/users");
  EXPECT_TRUE(p.target.has_query);
  EXPECT_EQ(p.target.query, "x=1&y=%2e%2e/..");  // the query is not normalised
  EXPECT_TRUE(p.target.authority.empty());
}

TEST(RequestTarget, QueryPresenceIsDistinguished) {
  Parsed none = parse("/p");
  ASSERT_TRUE(none.ok);
  EXPECT_FALSE(none.target.has_query);
  Parsed empty = parse("/p?");
  ASSERT_TRUE(empty.ok);
  EXPECT_TRUE(empty.target.has_query);
  EXPECT_EQ(empty.target.query, "");
}

TEST(RequestTarget, FastPathCopiesPlainPaths) {
  for (const char* p : {"/", "/a", "/api/v1/users/42", "/static/app.min.js", "/a/b/", "/a.b/c.",
                        "/~user/x-y_z", "/a,b=c/d:e@f", "/a..b", "/a/b.."}) {
    EXPECT_EQ(norm(p), p) << p;
  }
  PathNormalization keep;
  keep.path_parameters = config::PathParameters::kKeep;
  EXPECT_EQ(norm("/a;b=c/d:e@f", keep), "/a;b=c/d:e@f");
}

TEST(RequestTarget, RemovesDotSegments) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/a/./b", "/a/b"},
      {"/a/b/../c", "/a/c"},
      {"/a/b/..", "/a/"},
      {"/a/.", "/a/"},
      {"/a/..", "/"},
      {"/.", "/"},
      {"/./", "/"},
      {"/a/b/./../c/", "/a/c/"},
      {"/a/./././b", "/a/b"},
      {"/a/b/c/../../d", "/a/d"},
      {"/.a/..b/...", "/.a/..b/..."},
  };
  for (const auto& [in, want] : cases)
    EXPECT_EQ(norm(in), want) << in;
}

TEST(RequestTarget, DotDotAboveRootIsRejectedNotClamped) {
  for (const char* p : {"/..", "/../a", "/a/../..", "/a/../../b", "/%2e%2e", "/%2E%2e/x",
                        "/a/../%2E./b", "/./.."}) {
    EXPECT_EQ(norm(p), "ERR400") << p;
  }
}

TEST(RequestTarget, BypassAttemptsCannotHideAdmin) {
  // Each of these reaches /admin upstream, so it must look like /admin to the router too.
  for (const char* p : {"/public/../admin", "/public/%2e%2e/admin", "/public/.%2E/admin",
                        "/public/%2E./admin", "/public/%2E%2e/admin", "//admin", "/./admin",
                        "/%61dmin", "/public/./../admin", "/public//../admin"}) {
    EXPECT_EQ(norm(p), "/admin") << p;
  }
  // And these are ambiguous, so they are refused.
  for (const char* p :
       {"/admin%2f", "/admin%2F..", "/public/%2e%2e%2fadmin", "/admin%5c", "/admin%00",
        "/admin\\..\\x", "/public\\..\\admin", "/public/..;/admin", "/public/.;/admin",
        "/public/..;x=1/admin", "/%2e%2e;/admin", "/public//../../admin"}) {
    EXPECT_EQ(norm(p), "ERR400") << p;
  }
}

PathNormalization withParameters(config::PathParameters mode) {
  PathNormalization n;
  n.path_parameters = mode;
  return n;
}

TEST(RequestTarget, PathParametersAreRejectedByDefault) {
  // A back-end that strips ";x" sees "/admin/x" in each of these.
  for (const char* p : {"/;x/admin/x", "/admin;x", "/admin;/x", "/a;b/c;d=1", "/;", "/a%3bb",
                        "/a%3B", "/%3Bx/admin", "/public/..;/admin"}) {
    EXPECT_EQ(norm(p), "ERR400") << p;
  }
  Parsed p = parse("/;x/admin/x?q=1");
  ASSERT_FALSE(p.ok);
  EXPECT_EQ(p.err.reason, "';' parameter in path");
  // The query is not a path: ';' there is data.
  EXPECT_TRUE(parse("/a?x=1;y=2").ok);
}

TEST(RequestTarget, PathParametersStrippedBeforeDotRemoval) {
  const PathNormalization strip = withParameters(config::PathParameters::kStrip);
  EXPECT_EQ(norm("/;x/admin/x", strip), "/admin/x");
  EXPECT_EQ(norm("/admin;x=1/y;z", strip), "/admin/y");
  EXPECT_EQ(norm("/a;jsessionid=AB12", strip), "/a");
  EXPECT_EQ(norm("/public/..;/admin", strip), "/admin");
  EXPECT_EQ(norm("/public/.;x/admin", strip), "/public/admin");
  EXPECT_EQ(norm("/public/%2e%2e;x/admin", strip), "/admin");
  EXPECT_EQ(norm("/;/", strip), "/");
  EXPECT_EQ(norm("/a;b/", strip), "/a/");
  EXPECT_EQ(norm("/a/..;/..;/b", strip), "ERR400");
  // An encoded ';' is data or a parameter depending on the back-end: refused.
  EXPECT_EQ(norm("/a%3bb", strip), "ERR400");
  PathNormalization keep_slashes = strip;
  keep_slashes.merge_slashes = false;
  EXPECT_EQ(norm("/;x/admin", keep_slashes), "//admin");
}

TEST(RequestTarget, PathParametersKeptWhenAsked) {
  const PathNormalization keep = withParameters(config::PathParameters::kKeep);
  EXPECT_EQ(norm("/a;b/c;d=1", keep), "/a;b/c;d=1");
  EXPECT_EQ(norm("/...;x", keep), "/...;x");
  EXPECT_EQ(norm("/a%3bb", keep), "/a%3Bb");
  for (const char* p : {"/public/..;/admin", "/public/.;/admin", "/%2e%2e;/admin"}) {
    EXPECT_EQ(norm(p, keep), "ERR400") << p;
  }
}

TEST(RequestTarget, DoubleEncodingIsRejectedByDefault) {
  // Each of these is "/admin" or "/.." to a back-end that decodes twice.
  for (const char* p : {"/%2561dmin", "/%252e%252e/admin", "/%252E", "/%25%32%65", "/%25%36%31",
                        "/%252f", "/%25252e", "/%25aB", "/x%2541/y"}) {
    EXPECT_EQ(norm(p), "ERR400") << p;
  }
  Parsed p = parse("/%2561dmin");
  ASSERT_FALSE(p.ok);
  EXPECT_EQ(p.err.reason, "double percent-encoding in path");
  // A literal '%' that does not start a second escape stays escaped.
  EXPECT_EQ(norm("/100%25"), "/100%25");
  EXPECT_EQ(norm("/100%25.txt"), "/100%25.txt");
  EXPECT_EQ(norm("/%25zz"), "/%25zz");
  EXPECT_EQ(norm("/%25a/b"), "/%25a/b");
  EXPECT_EQ(norm("/%25%7e"), "/%25~");
  EXPECT_EQ(norm("/%25%25"), "/%25%25");
  PathNormalization allow;
  allow.reject_double_encoding = false;
  EXPECT_EQ(norm("/%2561dmin", allow), "/%2561dmin");
  EXPECT_EQ(norm("/%252e%252E", allow), "/%252e%252E");
}

TEST(RequestTarget, DecodesUnreservedAndUppercasesOtherEscapes) {
  EXPECT_EQ(norm("/%41%62%63"), "/Abc");
  EXPECT_EQ(norm("/%7e%5F%2D%2e"), "/~_-.");
  EXPECT_EQ(norm("/caf%c3%a9"), "/caf%C3%A9");
  EXPECT_EQ(norm("/a%20b%3F%23"), "/a%20b%3F%23");
  EXPECT_EQ(norm("/100%25"), "/100%25");
}

TEST(RequestTarget, DecodeUnreservedOffStillDecodesDots) {
  PathNormalization n;
  n.decode_unreserved = false;
  EXPECT_EQ(norm("/%41%7e", n), "/%41%7E");
  EXPECT_EQ(norm("/a/%2e%2e/b", n), "/b");
  EXPECT_EQ(norm("/a%2eb", n), "/a.b");
}

TEST(RequestTarget, InvalidEscapesAreRejected) {
  for (const char* p : {"/%G1", "/%4", "/%", "/a%zz", "/%4g", "/%%41", "/%u002e"}) {
    EXPECT_EQ(norm(p), "ERR400") << p;
  }
}

TEST(RequestTarget, EncodedNulIsAlwaysRejected) {
  PathNormalization lax;
  lax.reject_encoded_slash = false;
  lax.decode_unreserved = false;
  EXPECT_EQ(norm("/a%00b", lax), "ERR400");
  EXPECT_EQ(norm("/%00", {}), "ERR400");
}

TEST(RequestTarget, EncodedSlashKeptEscapedWhenAllowed) {
  PathNormalization n;
  n.reject_encoded_slash = false;
  EXPECT_EQ(norm("/a%2fb", n), "/a%2Fb");
  EXPECT_EQ(norm("/a%5cb", n), "/a%5Cb");
  // Not a dot segment for us; the reason reject_encoded_slash defaults to true.
  EXPECT_EQ(norm("/a/%2e%2e%2fb", n), "/a/..%2Fb");
}

TEST(RequestTarget, RejectsRawBadBytes) {
  for (std::string p :
       {"/a b", "/a\tb", "/a\x7f", "/caf\xc3\xa9", "/\xff", "/a\x01", "/a\\b", "/a#frag"}) {
    EXPECT_EQ(norm(p), "ERR400") << p;
  }
  EXPECT_EQ(norm(std::string("/a\0b", 4)), "ERR400");
}

TEST(RequestTarget, EscapesCharactersRfc3986DoesNotAllowRaw) {
  EXPECT_EQ(norm("/a|b"), "/a%7Cb");
  EXPECT_EQ(norm("/{x}/[y]"), "/%7Bx%7D/%5By%5D");
  EXPECT_EQ(norm("/a%7cb"), "/a%7Cb");  // the same resource, the same string
  EXPECT_EQ(norm("/\"<>^`"), "/%22%3C%3E%5E%60");
}

TEST(RequestTarget, MergeSlashes) {
  EXPECT_EQ(norm("//a///b//"), "/a/b/");
  EXPECT_EQ(norm("/a//../b"), "/b");
  EXPECT_EQ(norm("//"), "/");
  PathNormalization keep;
  keep.merge_slashes = false;
  EXPECT_EQ(norm("//a//b", keep), "//a//b");
  EXPECT_EQ(norm("/a//../b", keep), "/a/b");  // ".." pops the empty segment (RFC 3986)
  EXPECT_EQ(norm("/a//.", keep), "/a//");
}

TEST(RequestTarget, NormalizePathNeedsAnAbsolutePathWithoutQuery) {
  EXPECT_EQ(norm(""), "ERR400");
  EXPECT_EQ(norm("a/b"), "ERR400");
  EXPECT_EQ(norm("/a?b"), "ERR400");
}

TEST(RequestTarget, QueryIsValidated) {
  EXPECT_FALSE(parse("/p?a b").ok);
  EXPECT_FALSE(parse("/p?a\x01").ok);
  EXPECT_FALSE(parse("/p?a\x7f").ok);
  Parsed frag = parse("/p?a#b");
  EXPECT_FALSE(frag.ok);
  EXPECT_EQ(frag.err.status, 400);
  Parsed utf8 = parse("/p?q=caf\xc3\xa9");
  EXPECT_TRUE(utf8.ok);
  Parsed odd = parse("/p?a=%zz&b=/../&c=?");  // left as is
  ASSERT_TRUE(odd.ok);
  EXPECT_EQ(odd.target.query, "a=%zz&b=/../&c=?");
}

TEST(RequestTarget, FragmentIsRejected) {
  for (const char* t : {"/a#b", "/#", "http://h#x", "http://h/p#x"}) {
    Parsed p = parse(t);
    EXPECT_FALSE(p.ok) << t;
    EXPECT_EQ(p.err.status, 400) << t;
  }
}

TEST(RequestTarget, AsteriskFormOnlyForOptions) {
  Parsed ok = parse("*", "OPTIONS");
  ASSERT_TRUE(ok.ok);
  EXPECT_EQ(ok.target.form, TargetForm::kAsterisk);
  EXPECT_EQ(ok.target.path, "*");
  Parsed bad = parse("*", "GET");
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.err.status, 400);
  EXPECT_FALSE(parse("*x", "OPTIONS").ok);
}

TEST(RequestTarget, ConnectIs405) {
  Parsed p = parse("example.com:443", "CONNECT");
  EXPECT_FALSE(p.ok);
  EXPECT_EQ(p.err.status, 405);
  EXPECT_EQ(parse("/x", "CONNECT").err.status, 405);
}

TEST(RequestTarget, AuthorityFormWithoutConnectIs400) {
  for (const char* t : {"example.com:443", "example.com", "a", "http:/x", "http:x"}) {
    Parsed p = parse(t);
    EXPECT_FALSE(p.ok) << t;
    EXPECT_EQ(p.err.status, 400) << t;
  }
  EXPECT_EQ(parse("").err.status, 400);
}

TEST(RequestTarget, AbsoluteForm) {
  Parsed p = parse("http://Example.com:8080/p/../q%41?x=1");
  ASSERT_TRUE(p.ok) << p.err.reason;
  EXPECT_EQ(p.target.form, TargetForm::kAbsolute);
  EXPECT_EQ(p.target.scheme, "http");
  EXPECT_EQ(p.target.authority, "Example.com:8080");
  EXPECT_EQ(p.target.path, "/qA");
  EXPECT_EQ(p.target.query, "x=1");

  Parsed bare = parse("HTTPS://h");
  ASSERT_TRUE(bare.ok);
  EXPECT_EQ(bare.target.path, "/");
  EXPECT_EQ(bare.target.authority, "h");
  EXPECT_FALSE(bare.target.has_query);

  Parsed q = parse("http://[::1]:8080?x");
  ASSERT_TRUE(q.ok);
  EXPECT_EQ(q.target.authority, "[::1]:8080");
  EXPECT_EQ(q.target.path, "/");
  EXPECT_EQ(q.target.query, "x");

  EXPECT_FALSE(parse("http://h/../x").ok);  // above the root, as in origin-form
}

TEST(RequestTarget, AbsoluteFormRejects) {
  for (const char* t : {"http://user@h/", "http://u:p@h/x", "ftp://h/", "http:///p", "http://",
                        "http://h h/", "http://h\\x/", "http://h/%00", "mailto:x@y"}) {
    Parsed p = parse(t);
    EXPECT_FALSE(p.ok) << t;
    EXPECT_EQ(p.err.status, 400) << t;
  }
}

TEST(RequestTarget, ReusedTargetIsReset) {
  Target t;
  TargetError err;
  ASSERT_TRUE(parseTarget("http://h/a/b/c?x", "GET", {}, t, err));
  ASSERT_TRUE(parseTarget("/d", "GET", {}, t, err));
  EXPECT_EQ(t.form, TargetForm::kOrigin);
  EXPECT_EQ(t.path, "/d");
  EXPECT_FALSE(t.has_query);
  EXPECT_TRUE(t.query.empty());
  EXPECT_TRUE(t.authority.empty());
  EXPECT_TRUE(t.scheme.empty());
}

std::vector<PathNormalization> allModes() {
  std::vector<PathNormalization> modes;
  for (int bits = 0; bits < 16; ++bits) {
    for (auto params : {config::PathParameters::kReject, config::PathParameters::kStrip,
                        config::PathParameters::kKeep}) {
      PathNormalization n;
      n.merge_slashes = (bits & 1) != 0;
      n.decode_unreserved = (bits & 2) != 0;
      n.reject_encoded_slash = (bits & 4) != 0;
      n.reject_double_encoding = (bits & 8) != 0;
      n.path_parameters = params;
      modes.push_back(n);
    }
  }
  return modes;
}

TEST(RequestTarget, IdempotentOnKnownCases) {
  for (const auto& mode : allModes()) {
    for (const char* p : {"/a/./b/../c", "/%2e%2E/x", "/a//b//", "/%41%2f%2e", "/a%7cb|c",
                          "/x/%2E%2e%2F..", "//..//a", "/a/b/.%2e/", "/%7e%7E~"}) {
      std::string once = norm(p, mode);
      if (once.rfind("ERR", 0) == 0) continue;
      EXPECT_EQ(norm(once, mode), once) << p;
    }
  }
}

// An independent, slow model of the rules: split on '/', cut or refuse parameters, decode each
// segment once, then a stack.
std::optional<std::string> referenceNormalize(std::string_view path, const PathNormalization& n) {
  std::vector<std::string> segs;
  size_t start = 1;
  while (true) {
    size_t slash = path.find('/', start);
    segs.emplace_back(path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  std::vector<std::string> stack;
  for (size_t k = 0; k < segs.size(); ++k) {
    const bool last = k + 1 == segs.size();
    std::string raw = segs[k];
    const size_t semi = raw.find(';');
    if (semi != std::string::npos && n.path_parameters == config::PathParameters::kReject) {
      return std::nullopt;
    }
    if (semi != std::string::npos && n.path_parameters == config::PathParameters::kStrip) {
      raw.resize(semi);
    }
    // Decoded once, with whether each byte came from an escape.
    std::vector<std::pair<char, bool>> once;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '%') {
        once.emplace_back(raw[i], false);
        continue;
      }
      once.emplace_back(static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16)), true);
      i += 2;
    }
    std::string s;
    for (size_t i = 0; i < once.size(); ++i) {
      const auto [c, escaped] = once[i];
      if (!escaped) {
        s += c;
      } else if (c == '.' || (n.decode_unreserved && c == 'A')) {
        s += c;
      } else if (c == '/') {
        if (n.reject_encoded_slash) return std::nullopt;
        s += "%2F";
      } else if (c == ';') {
        if (n.path_parameters != config::PathParameters::kKeep) return std::nullopt;
        s += "%3B";
      } else if (c == '%') {
        if (n.reject_double_encoding && i + 2 < once.size() &&
            std::isxdigit(static_cast<unsigned char>(once[i + 1].first)) &&
            std::isxdigit(static_cast<unsigned char>(once[i + 2].first))) {
          return std::nullopt;
        }
        s += "%25";
      } else if (c == 'A') {
        s += "%41";
      } else {
        ADD_FAILURE() << "unexpected escape in generated path";
      }
    }
    if (s == ".") {
      if (last) stack.emplace_back();
    } else if (s == "..") {
      if (stack.empty()) return std::nullopt;
      stack.pop_back();
      if (last) stack.emplace_back();
    } else if (s.empty() && n.merge_slashes && !last) {
      // merged
    } else if (s.starts_with(".;") || s.starts_with("..;")) {
      return std::nullopt;
    } else {
      stack.push_back(s);
    }
  }
  std::string out;
  for (const auto& s : stack)
    out += "/" + s;
  return out.empty() ? "/" : out;
}

TEST(RequestTarget, GeneratedPathsAreIdempotentAndMatchTheModel) {
  const std::vector<std::string> alphabet = {"/",  ".",  "%2e", "%2E", "a",   "%41",   "%2f",
                                             "//", "..", ";x",  "%3b", "%25", "%252e", "2"};
  std::mt19937 rng(20261129);
  std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
  std::uniform_int_distribution<int> len(1, 12);
  size_t accepted = 0;
  size_t rejected = 0;
  for (const auto& mode : allModes()) {
    for (int iter = 0; iter < 2000; ++iter) {
      std::string path = "/";
      for (int k = len(rng); k > 0; --k)
        path += alphabet[pick(rng)];
      std::string once;
      TargetError err;
      const bool ok = normalizePath(path, mode, once, err);
      const std::optional<std::string> want = referenceNormalize(path, mode);
      ASSERT_EQ(ok, want.has_value()) << path << " -> " << (ok ? once : err.reason);
      if (!ok) {
        ++rejected;
        continue;
      }
      ++accepted;
      ASSERT_EQ(once, *want) << path;
      std::string twice;
      ASSERT_TRUE(normalizePath(once, mode, twice, err)) << once << ": " << err.reason;
      ASSERT_EQ(twice, once) << path;
      // No dot segment or escaped dot survives, and "//" only when asked to keep it.
      ASSERT_EQ(once.find("/./"), std::string::npos) << path;
      ASSERT_EQ(once.find("/../"), std::string::npos) << path;
      ASSERT_EQ(once.find("%2E"), std::string::npos) << path;
      ASSERT_EQ(once.find("%2e"), std::string::npos) << path;
      if (mode.merge_slashes) {
        ASSERT_EQ(once.find("//"), std::string::npos) << path;
      }
    }
  }
  // Both outcomes must be well exercised for the test to mean anything.
  EXPECT_GT(accepted, 10000u);
  EXPECT_GT(rejected, 5000u);
}

}  // namespace
}  // namespace gatehouse::http
