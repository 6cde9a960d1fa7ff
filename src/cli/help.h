#pragma once
// The command line's one description: every command with its synopsis, summary, options and
// examples, in one table (help.cc). `gatehouse --help`, `gatehouse help CMD`, the man page
// (`gatehouse help --man`, roff; the build writes it to build/<preset>/gatehouse.1) and bash
// completion (`gatehouse completion bash`) are all generated from it, so they cannot disagree.
#include <span>
#include <string>
#include <string_view>

namespace gatehouse::cli {

struct OptionHelp {
  std::string_view flags;  // "-c, --config"
  std::string_view value;  // "FILE", or empty for a switch
  std::string_view text;
};

struct CommandHelp {
  std::string_view name;
  std::string_view synopsis;  // after "gatehouse "
  std::string_view summary;   // one line
  std::string_view description;
  std::span<const OptionHelp> options;
  std::string_view examples;  // lines of shell, may be empty
};

std::span<const CommandHelp> commands();
const CommandHelp* findCommand(std::string_view name);

// `gatehouse --help`: usage lines and the command list.
std::string overview();
// `gatehouse help CMD`.
std::string commandText(const CommandHelp& c);
// The man page, gatehouse(1), in roff (man(7) macros).
std::string manPage();
// A bash completion script (`source <(gatehouse completion bash)`).
std::string bashCompletion();

}  // namespace gatehouse::cli
