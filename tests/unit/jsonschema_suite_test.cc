// The official JSON Schema test suite (Debian package json-schema-test-suite, installed by
// scripts/bootstrap) run against jsonschema/, plus the project's own 2020-12 cases in the same
// format (tests/jsonschema/draft2020-12/: Debian 12's suite predates 2020-12). Each draft prints
// its pass count; a failure fails the test only when tests/jsonschema/known_failures.txt does
// not list it, so known gaps stay documented and a regression is caught. `optional/` is
// reported, never failed. GATEHOUSE_JSON_SCHEMA_SUITE overrides the suite's folder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "jsonschema/schema.h"

namespace gatehouse::jsonschema {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

fs::path sourceDir() {
  const char* env = std::getenv("GATEHOUSE_SOURCE_DIR");
  return env ? fs::path(env) : fs::path(__FILE__).parent_path().parent_path().parent_path();
}

fs::path suiteDir() {
  const char* env = std::getenv("GATEHOUSE_JSON_SCHEMA_SUITE");
  return env ? fs::path(env) : fs::path("/usr/share/json-schema-test-suite");
}

Json readJson(const fs::path& p) {
  std::ifstream in(p);
  return Json::parse(in, nullptr, /*allow_exceptions=*/false);
}

std::set<std::string> knownFailures() {
  std::set<std::string> out;
  std::ifstream in(sourceDir() / "tests/jsonschema/known_failures.txt");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] != '#') out.insert(line);
  }
  return out;
}

// The documents a suite's $refs may reach: its remotes (served at localhost:1234 by the
// suite's own runner) and the draft metaschemas (python3-jsonschema, a dependency of the
// Debian package, ships them).
void addRemotes(Builder& b) {
  const fs::path remotes = suiteDir() / "remotes";
  if (fs::exists(remotes)) {
    for (const auto& e : fs::recursive_directory_iterator(remotes)) {
      if (e.path().extension() != ".json") continue;
      std::string rel = fs::relative(e.path(), remotes).generic_string();
      (void)b.addDocument("http://localhost:1234/" + rel, readJson(e.path()));
    }
  }
  const fs::path metas = "/usr/lib/python3/dist-packages/jsonschema/schemas";
  const std::pair<const char*, const char*> kMetas[] = {
      {"draft4.json", "http://json-schema.org/draft-04/schema"},
      {"draft7.json", "http://json-schema.org/draft-07/schema"},
  };
  for (const auto& [file, uri] : kMetas) {
    if (fs::exists(metas / file)) (void)b.addDocument(uri, readJson(metas / file));
  }
}

struct Tally {
  int passed = 0, failed = 0, known = 0;
  std::vector<std::string> regressions, fixed;
};

void runFile(const fs::path& file, const std::string& label, Dialect dialect, bool formats,
             const std::set<std::string>& known, Tally& t) {
  Json groups = readJson(file);
  ASSERT_TRUE(groups.is_array()) << file;
  for (const auto& group : groups) {
    Options options{dialect, formats ? FormatMode::kAssert : FormatMode::kAnnotate};
    Builder b(options);
    addRemotes(b);
    const std::string uri = "urn:suite:" + label;
    (void)b.addDocument(uri, group["schema"]);
    auto id = b.compile(uri);
    auto validator = id.ok() ? b.finish() : Result<std::shared_ptr<const Validator>>(id.error());
    for (const auto& test : group["tests"]) {
      std::string name = label + ": " + group["description"].get<std::string>() + " / " +
                         test["description"].get<std::string>();
      bool ok =
          validator.ok() && (*validator)->validate(*id, test["data"]) == test["valid"].get<bool>();
      if (ok && validator.ok()) {
        // The error-collecting path must agree with the fast one.
        std::vector<ValidationError> errors;
        bool valid = (*validator)->validate(*id, test["data"], &errors, 8);
        ok = valid == test["valid"].get<bool>() && valid == errors.empty();
      }
      bool listed = known.count(name) > 0;
      if (ok) {
        ++t.passed;
        if (listed) t.fixed.push_back(name);
      } else if (listed) {
        ++t.known;
      } else {
        ++t.failed;
        t.regressions.push_back(
            name + (validator.ok() ? "" : " (compile: " + validator.error().message + ")"));
      }
    }
  }
}

Tally runDir(const fs::path& dir, const std::string& draft, Dialect dialect, bool formats) {
  Tally t;
  const auto known = knownFailures();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    runFile(f, draft + "/" + f.filename().string(), dialect, formats, known, t);
  }
  int total = t.passed + t.failed + t.known;
  std::cout << "json-schema-suite " << draft << ": " << t.passed << "/" << total << " passed ("
            << t.known << " known failures)\n";
  for (const auto& f : t.fixed)
    std::cout << "  now passes (drop from known_failures): " << f << "\n";
  return t;
}

void expectNoRegressions(const Tally& t) {
  for (const auto& r : t.regressions)
    ADD_FAILURE() << "unexpected failure: " << r;
}

bool haveSuite() {
  return fs::exists(suiteDir() / "tests/draft4");
}

TEST(JsonSchemaSuite, Draft4) {
  ASSERT_TRUE(haveSuite()) << "install json-schema-test-suite (scripts/bootstrap)";
  expectNoRegressions(runDir(suiteDir() / "tests/draft4", "draft4", Dialect::kDraft4, false));
}

TEST(JsonSchemaSuite, OpenApi30DialectOnDraft4Tests) {
  // The OpenAPI 3.0 schema object is draft-04 plus `nullable`: the draft-04 cases must hold.
  ASSERT_TRUE(haveSuite()) << "install json-schema-test-suite (scripts/bootstrap)";
  expectNoRegressions(runDir(suiteDir() / "tests/draft4", "openapi30", Dialect::kOpenApi30, false));
}

TEST(JsonSchemaSuite, Draft7) {
  ASSERT_TRUE(haveSuite()) << "install json-schema-test-suite (scripts/bootstrap)";
  expectNoRegressions(runDir(suiteDir() / "tests/draft7", "draft7", Dialect::kDraft7, false));
}

TEST(JsonSchemaSuite, Draft2020_12) {
  // The official 2020-12 folder when the installed suite has one, and ours always.
  if (fs::exists(suiteDir() / "tests/draft2020-12")) {
    expectNoRegressions(
        runDir(suiteDir() / "tests/draft2020-12", "draft2020-12", Dialect::kDraft2020_12, false));
  }
  expectNoRegressions(runDir(sourceDir() / "tests/jsonschema/draft2020-12", "own-2020-12",
                             Dialect::kDraft2020_12, false));
}

TEST(JsonSchemaSuite, OptionalReportedOnly) {
  if (!haveSuite()) GTEST_SKIP() << "no suite";
  for (const auto& [dir, draft, dialect] :
       {std::tuple{"tests/draft4/optional", "draft4-optional", Dialect::kDraft4},
        std::tuple{"tests/draft7/optional", "draft7-optional", Dialect::kDraft7},
        std::tuple{"tests/draft7/optional/format", "draft7-format", Dialect::kDraft7}}) {
    if (fs::exists(suiteDir() / dir)) runDir(suiteDir() / dir, draft, dialect, true);
  }
}

}  // namespace
}  // namespace gatehouse::jsonschema
