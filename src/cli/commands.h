#pragma once
// Commands of the command line that are more than a call into server/: `explain` and
// `validate`. main.cc parses the command name and hands the rest of the words here. Each
// returns the process exit status (0 ok, 1 failed, 2 usage) and prints to stdout/stderr.
// Main thread, before any gateway runs.
#include <span>
#include <string>

namespace gatehouse::cli {

// gatehouse explain -c FILE [flags | -- curl ...] [--json]
int runExplain(std::span<const std::string> args);

// gatehouse validate FILE [--diff-with URL] [--token TOKEN]
int runValidate(std::span<const std::string> args);

}  // namespace gatehouse::cli
