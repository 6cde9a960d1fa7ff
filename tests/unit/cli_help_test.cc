// cli/help: the one table behind --help, help CMD, the man page and bash completion.
#include <gtest/gtest.h>

#include <string>

#include "cli/help.h"

namespace gatehouse::cli {
namespace {

TEST(CliHelp, EveryCommandIsInEveryOutput) {
  const std::string overview_text = overview();
  const std::string man = manPage();
  const std::string completion = bashCompletion();
  ASSERT_GE(commands().size(), 8u);
  for (const auto& c : commands()) {
    const std::string name(c.name);
    std::string roff_name;  // the man page escapes '-'
    for (char ch : name)
      roff_name += ch == '-' ? std::string("\\-") : std::string(1, ch);
    EXPECT_NE(overview_text.find("  " + name + " "), std::string::npos) << name;
    EXPECT_NE(man.find(".SS \"" + roff_name), std::string::npos) << name;
    EXPECT_NE(completion.find("    " + name + ") "), std::string::npos) << name;
    EXPECT_NE(commandText(c).find("usage: gatehouse " + std::string(c.synopsis)),
              std::string::npos);
  }
}

TEST(CliHelp, OptionsReachHelpManAndCompletion) {
  const CommandHelp* explain = findCommand("explain");
  ASSERT_NE(explain, nullptr);
  const std::string text = commandText(*explain);
  EXPECT_NE(text.find("--client-ip IP"), std::string::npos) << text;
  EXPECT_NE(manPage().find(".B \\-\\-client\\-ip"), std::string::npos);
  EXPECT_NE(bashCompletion().find("--client-ip"), std::string::npos);
  EXPECT_EQ(findCommand("nope"), nullptr);
}

TEST(CliHelp, ManPageIsRoff) {
  const std::string man = manPage();
  EXPECT_TRUE(man.starts_with(".TH GATEHOUSE 1"));
  // No text line may start with a '.' or '\'' that roff would take for a request.
  size_t pos = 0;
  while ((pos = man.find('\n', pos)) != std::string::npos) {
    ++pos;
    if (pos < man.size() && man[pos] == '.') {
      const std::string req = man.substr(pos + 1, 2);
      EXPECT_TRUE(req == "TH" || req == "SH" || req == "SS" || req == "TP" || req == "B " ||
                  req == "br" || req == "PP" || req == "nf" || req == "fi" || req == "RS" ||
                  req == "RE" || req == "I ")
          << man.substr(pos, 40);
    }
  }
}

}  // namespace
}  // namespace gatehouse::cli
