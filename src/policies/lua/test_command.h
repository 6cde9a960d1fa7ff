#pragma once
// `gatehouse lua-test SCRIPT --request DESCRIPTION [--policy OPTIONS] [--json]`: runs a `lua`
// policy script's hooks against a described request, without a gateway, and prints what they
// did (request and response changes, a short-circuit reply, variables, sub-requests, log
// lines, metrics). Sub-requests are answered from the description's `calls` fixtures, never
// sent. Runs on the calling (main) thread; docs/lua.md#testing-scripts-gatehouse-lua-test.
#include <string>
#include <vector>

namespace gatehouse::policies::lua {

// The arguments after `lua-test`. Returns the exit code: 0 when every hook ran, 1 when a hook
// failed (or the script does not load), 2 for bad arguments or a bad description.
int runLuaTest(const std::vector<std::string>& args);

}  // namespace gatehouse::policies::lua
