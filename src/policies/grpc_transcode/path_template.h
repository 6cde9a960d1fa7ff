#pragma once
// google.api.http path templates (google/api/http.proto):
//   Template = "/" Segments [ Verb ] ;  Segments = Segment { "/" Segment } ;
//   Segment  = "*" | "**" | LITERAL | Variable ;  Variable = "{" FieldPath [ "=" Segments ] "}" ;
//   Verb     = ":" LITERAL ;
// Parsed once when the config is built; matched per request on the worker (no allocation but
// the captured values).
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"

namespace gatehouse::policies::grpc_transcode {

struct PathTemplate {
  enum class Kind { kLiteral, kSingle /* * */, kMulti /* ** (last segment only) */ };
  struct Segment {
    Kind kind = Kind::kLiteral;
    std::string literal;
  };
  struct Variable {
    std::string field_path;  // "shelf" or "book.name"
    size_t begin = 0;        // the segments it captures: [begin, end)
    size_t end = 0;
  };
  std::vector<Segment> segments;
  std::vector<Variable> variables;
  std::string verb;  // without ':'; empty when none

  // Orders templates so that the most specific is tried first: a verb, then literal segments
  // before wildcards, then more segments.
  bool moreSpecificThan(const PathTemplate& other) const;
};

// Errors say what is wrong and where ("'**' must be the last segment").
Result<PathTemplate> parsePathTemplate(std::string_view text);

struct Capture {
  const PathTemplate::Variable* variable = nullptr;
  std::string value;  // percent-decoded ("%2F" kept encoded in multi-segment captures)
};

// Matches a request path (no query string). On a match `out` holds one capture per variable.
bool matchPath(const PathTemplate& tmpl, std::string_view path, std::vector<Capture>& out);

// Percent-decoding for path and query values; false on a malformed escape. `plus_is_space`
// for query strings; `keep_slash` leaves "%2F" encoded.
bool percentDecode(std::string_view in, std::string& out, bool plus_is_space, bool keep_slash);

}  // namespace gatehouse::policies::grpc_transcode
