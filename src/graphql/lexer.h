#pragma once
// The GraphQL lexer (GraphQL spec, October 2021, section 2.1): turns source text into tokens,
// skipping ignored tokens (whitespace, line terminators, commas, comments, a byte order mark).
// String and block string values are decoded here (escapes, \u{...} and surrogate pairs, the
// block string indentation rules). Never throws; a bad token is a kError token with a message.
// Used by graphql::parse on one worker; one lexer per document.
#include <cstddef>
#include <string>
#include <string_view>

namespace gatehouse::graphql {

enum class TokenKind : unsigned char {
  kEof,
  kPunctuator,  // one of ! $ & ( ) : = @ [ ] { | } (in `text`), or "..."
  kName,
  kInt,
  kFloat,
  kString,       // "..." (decoded into `value`)
  kBlockString,  // """...""" (decoded into `value`)
  kError,        // `value` holds the message
};

struct Token {
  TokenKind kind = TokenKind::kEof;
  std::string_view text;  // the token's source text
  std::string value;      // decoded string, or the error message
  size_t offset = 0;
  bool is(std::string_view punct) const { return kind == TokenKind::kPunctuator && text == punct; }
};

class Lexer {
 public:
  explicit Lexer(std::string_view source) : src_(source) {}
  // Reads the next token into `t` (kEof at the end, kError on bad input).
  void next(Token& t);
  // Line and column (1-based) of a byte offset, for error messages.
  void position(size_t offset, size_t& line, size_t& column) const;

 private:
  void skipIgnored();
  void readNumber(Token& t);
  void readString(Token& t);
  void readBlockString(Token& t);
  bool readEscape(Token& t);
  void fail(Token& t, size_t at, std::string message);

  std::string_view src_;
  size_t pos_ = 0;
};

// The block string value of raw block string text (spec 2.9.4, BlockString()): common
// indentation removed, leading and trailing blank lines dropped, lines joined with \n.
std::string blockStringValue(std::string_view raw);

}  // namespace gatehouse::graphql
