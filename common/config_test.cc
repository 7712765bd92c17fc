#include "common/config.h"

#include <cstdlib>
#include <fstream>

#include "gtest/gtest.h"

namespace drover {
namespace {

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/drover_config_test.json";
  }
  void Write(const std::string& text) {
    std::ofstream(path_) << text;
  }
  std::string path_;
};

TEST_F(ConfigTest, FlagsBeatFileBeatsEnvBeatsDefault) {
  Write(R"({"database_url": "from-file", "port": 7000})");
  setenv("DROVER_PORT", "9000", 1);
  setenv("DROVER_LOG_LEVEL", "debug", 1);
  CLI::App app;
  AddJsonConfigOption(app);
  std::string url = "default", level = "info";
  int port = 1;
  app.add_option("--database-url", url)->envname(EnvName("database-url"));
  app.add_option("--port", port)->envname(EnvName("port"));
  app.add_option("--log-level", level)->envname(EnvName("log-level"));
  std::string config_flag = "--config=" + path_;
  const char* argv[] = {"prog", config_flag.c_str(), "--database-url=flag"};
  app.parse(3, const_cast<char**>(argv));
  EXPECT_EQ(url, "flag");
  EXPECT_EQ(port, 7000);
  EXPECT_EQ(level, "debug");
  unsetenv("DROVER_PORT");
  unsetenv("DROVER_LOG_LEVEL");
}

TEST_F(ConfigTest, RejectsNonObject) {
  Write("[1,2]");
  CLI::App app;
  AddJsonConfigOption(app);
  std::string config_flag = "--config=" + path_;
  const char* argv[] = {"prog", config_flag.c_str()};
  EXPECT_THROW(app.parse(2, const_cast<char**>(argv)), CLI::ParseError);
}

TEST(EnvNameTest, Uppercases) {
  EXPECT_EQ(EnvName("database-url"), "DROVER_DATABASE_URL");
}

}  // namespace
}  // namespace drover
