#pragma once
// Internal to jsonschema/: the `format` names the validator knows, their checks (used when
// formats are asserted), and the one way patterns become regexes (RE2: linear time, so a
// hostile pattern or instance cannot stall a worker; look-around and backreferences, which RE2
// lacks, fail at compile time). Pure functions, any thread.
#include <re2/re2.h>

#include <memory>
#include <string_view>

#include "core/result.h"
#include "jsonschema/node.h"

namespace gatehouse::jsonschema {

Format formatByName(std::string_view name);
std::string_view formatName(Format format);
bool checkFormat(Format format, std::string_view value);
Result<std::unique_ptr<RE2>> compilePattern(std::string_view pattern);

}  // namespace gatehouse::jsonschema
