#include "policies/waf/rules.h"

#include <modsecurity/rules_set.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <mutex>
#include <system_error>
#include <utility>

namespace gatehouse::policies::waf {
namespace {

Error loadError(std::string msg) {
  return Error::make(ErrorCode::kInvalidArgument, ErrorSource::kConfig, std::move(msg));
}

// ModSecurity's rule parser is not reentrant (globals in the generated lexer): one load at a
// time in the whole process. It also guards the cache.
std::mutex& loadMutex() {
  static std::mutex mu;
  return mu;
}

// Loaded rule sets by what they were loaded from; an entry lives as long as a snapshot uses it.
std::map<std::string, std::weak_ptr<const RuleSet>>& cache() {
  static std::map<std::string, std::weak_ptr<const RuleSet>> c;
  return c;
}

void appendStamp(std::string& key, const std::filesystem::path& p) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(p, ec);
  const auto mtime = std::filesystem::last_write_time(p, ec);
  key.append(p.string()).append("|").append(std::to_string(ec ? 0 : size)).append("|");
  key.append(std::to_string(ec ? 0 : mtime.time_since_epoch().count())).append("\n");
}

// The settings plus the size and time of every file the rules read: an edited rule or data
// file makes a new key, so a reload picks it up.
std::string cacheKey(const RulesSpec& spec, const std::string& settings) {
  std::string key = settings;
  if (!spec.crs_dir.empty()) {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(spec.crs_dir, ec)) {
      if (e.is_regular_file(ec)) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
      appendStamp(key, f);
  }
  for (const auto& f : spec.rule_files)
    appendStamp(key, f);
  return key;
}

// One SecLang load; on failure the parser's message, pointing at the file and line.
Status loadText(modsecurity::RulesSet& rules, const std::string& text, const char* ref,
                std::string_view file) {
  if (rules.load(text.c_str(), ref) >= 0) return {};
  std::string err = formatParserError(rules.getParserError());
  while (!err.empty() && (err.back() == '\n' || err.back() == ' '))
    err.pop_back();
  if (err.find(':') == std::string::npos || err.rfind("Rule id", 0) == 0) {
    err = std::string(file) + ": " + err;  // a duplicate id names no file
  }
  return loadError(std::move(err));
}

// SecLang's Include takes the path as one bare word: no quotes, no blanks.
bool includable(const std::string& path) {
  return path.find_first_of(" \t\r\n\"'") == std::string::npos;
}

}  // namespace

RuleSet::RuleSet(std::unique_ptr<modsecurity::RulesSet> rules) : rules_(std::move(rules)) {}
RuleSet::~RuleSet() = default;

std::string settingsText(const RulesSpec& spec) {
  const std::string body_limit = std::to_string(spec.max_body_size);
  const std::string response_limit = std::to_string(spec.max_response_body_size);
  std::string s;
  s += spec.block ? "SecRuleEngine On\n" : "SecRuleEngine DetectionOnly\n";
  s += "SecRequestBodyAccess On\n";
  s += "SecRequestBodyLimit " + body_limit + "\n";
  s += "SecRequestBodyNoFilesLimit " + body_limit + "\n";
  s += "SecRequestBodyLimitAction ProcessPartial\n";
  s += spec.inspect_response ? "SecResponseBodyAccess On\n" : "SecResponseBodyAccess Off\n";
  s += "SecResponseBodyMimeType text/plain text/html text/xml application/json application/xml\n";
  s += "SecResponseBodyLimit " + response_limit + "\n";
  s += "SecResponseBodyLimitAction ProcessPartial\n";
  s += "SecAuditEngine Off\n";
  s += "SecDefaultAction \"phase:1,log,auditlog,pass\"\n";
  s += "SecDefaultAction \"phase:2,log,auditlog,pass\"\n";
  // JSON bodies (application/json and any +json type) are parsed into ARGS, as
  // modsecurity.conf-recommended does; a body that fails to parse is refused rather than let
  // through uninspected.
  s += "SecRule REQUEST_HEADERS:Content-Type \"@rx ^application/(?:[a-z0-9.+-]+\\+)?json\" "
       "\"id:200001,phase:1,t:none,t:lowercase,pass,nolog,ctl:requestBodyProcessor=JSON\"\n";
  s += "SecRule REQBODY_ERROR \"!@eq 0\" \"id:200002,phase:2,t:none,log,deny,status:400,"
       "msg:'Failed to parse request body',logdata:'%{reqbody_error_msg}',severity:2\"\n";
  s += "SecRule MULTIPART_STRICT_ERROR \"!@eq 0\" \"id:200003,phase:2,t:none,log,deny,"
       "status:400,msg:'Multipart request body failed strict validation'\"\n";
  // crs-setup.conf's settings.
  s += "SecAction \"id:900000,phase:1,nolog,pass,t:none,setvar:tx.paranoia_level=" +
       std::to_string(spec.paranoia_level) + "\"\n";
  s +=
      "SecAction \"id:900110,phase:1,nolog,pass,t:none,setvar:tx.inbound_anomaly_score_threshold=" +
      std::to_string(spec.inbound_threshold) +
      ",setvar:tx.outbound_anomaly_score_threshold=" + std::to_string(spec.outbound_threshold) +
      "\"\n";
  s += "SecAction \"id:900200,phase:1,nolog,pass,t:none,setvar:'tx.allowed_methods=" +
       spec.allowed_methods + "'\"\n";
  std::string types;  // CRS's format: each type between bars, "|a| |b|"
  for (size_t i = 0; i < spec.allowed_content_types.size();) {
    size_t end = spec.allowed_content_types.find(' ', i);
    if (end == std::string::npos) end = spec.allowed_content_types.size();
    if (end > i) {
      types += (types.empty() ? "|" : " |") + spec.allowed_content_types.substr(i, end - i) + "|";
    }
    i = end + 1;
  }
  s += "SecAction \"id:900220,phase:1,nolog,pass,t:none,setvar:'tx.allowed_request_content_type=" +
       types + "'\"\n";
  s += "SecAction \"id:900990,phase:1,nolog,pass,t:none,setvar:tx.crs_setup_version=334\"\n";
  return s;
}

std::string formatParserError(const std::string& text) {
  const size_t file = text.find("File: ");
  const size_t line = text.find(". Line: ", file == std::string::npos ? 0 : file);
  if (file == std::string::npos || line == std::string::npos) return text;
  const size_t col = text.find(". Column: ", line);
  const size_t msg = col == std::string::npos ? std::string::npos : text.find(". ", col + 10);
  if (msg == std::string::npos) return text;
  std::string out = text.substr(file + 6, line - file - 6);
  out += ":" + text.substr(line + 8, col - line - 8);
  out += ":" + text.substr(col + 10, msg - col - 10);
  out += ": " + text.substr(msg + 2);
  return out;
}

Result<std::shared_ptr<const RuleSet>> RuleSet::load(const RulesSpec& spec) {
  if (!spec.crs_dir.empty() && !std::filesystem::is_directory(spec.crs_dir)) {
    return loadError("crs_dir: " + spec.crs_dir +
                     " is not a directory (install Debian's modsecurity-crs, or set crs_dir)");
  }
  if (!includable(spec.crs_dir)) {
    return loadError("crs_dir: " + spec.crs_dir +
                     ": a path with blanks or quotes cannot be loaded");
  }
  std::vector<std::string> files;
  for (const auto& f : spec.rule_files) {
    if (!includable(f)) {
      return loadError("rule_files: " + f + ": a path with blanks or quotes cannot be loaded");
    }
    std::error_code ec;
    if (!std::filesystem::is_regular_file(f, ec)) {
      return loadError("rule_files: cannot read " + f);
    }
    files.push_back(std::filesystem::absolute(f, ec).string());
  }
  const std::string settings = settingsText(spec);
  const std::string key = cacheKey(spec, settings);
  std::lock_guard lock(loadMutex());
  auto& c = cache();
  if (auto it = c.find(key); it != c.end()) {
    if (auto hit = it->second.lock()) return hit;
  }
  auto rules = std::make_unique<modsecurity::RulesSet>();
  if (auto st = loadText(*rules, settings, "<waf settings>", "<waf settings>"); !st.ok()) {
    return st.error();
  }
  if (!spec.crs_dir.empty()) {
    const std::string inc = "Include " + spec.crs_dir + "/*.conf\n";
    if (auto st = loadText(*rules, inc, "<waf crs>", spec.crs_dir); !st.ok()) return st.error();
  }
  for (const auto& f : files) {
    if (auto st = loadText(*rules, "Include " + f + "\n", "<waf rule_files>", f); !st.ok()) {
      return st.error();
    }
  }
  std::shared_ptr<const RuleSet> loaded = std::make_shared<RuleSet>(std::move(rules));
  for (auto it = c.begin(); it != c.end();) {
    it = it->second.expired() ? c.erase(it) : std::next(it);
  }
  c[key] = loaded;
  return loaded;
}

}  // namespace gatehouse::policies::waf
