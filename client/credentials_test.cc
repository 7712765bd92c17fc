#include "client/credentials.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

namespace drover::client {
namespace {

namespace fs = std::filesystem;

// A private directory per test, removed afterwards.
class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = drover::testing::MakeTempDir("drover-cred-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
    return path.string();
  }

  fs::path dir_;
};

ErrorInfo InfoOf(const absl::Status& status) { return GetErrorInfo(status); }

TEST_F(CredentialsTest, ParsesPermanentAndTemporaryCredentials) {
  auto permanent = ParseCredentialsJson(
      R"({"clientId": "user/alice", "accessToken": "tok",
          "authorizedScopes": ["queue:get-task:*"]})",
      "file.json");
  ASSERT_TRUE(permanent.ok()) << permanent.status();
  EXPECT_EQ(permanent->client_id, "user/alice");
  EXPECT_EQ(permanent->access_token, "tok");
  EXPECT_EQ(permanent->authorized_scopes,
            std::vector<std::string>{"queue:get-task:*"});
  EXPECT_EQ(permanent->source, "file.json");
  EXPECT_FALSE(permanent->Anonymous());

  auto temporary = ParseCredentialsJson(
      R"({"clientId": "user/alice", "certificate": "abc_-",
          "expires": "2030-01-01T00:00:00Z"})",
      "f");
  ASSERT_TRUE(temporary.ok()) << temporary.status();
  EXPECT_EQ(temporary->certificate, "abc_-");
  ASSERT_TRUE(temporary->expires.has_value());
  EXPECT_EQ(absl::ToUnixSeconds(*temporary->expires), 1893456000);

  auto cert_only = ParseCredentialsJson(R"({"certificate": "c"})", "f");
  ASSERT_TRUE(cert_only.ok()) << cert_only.status();
}

TEST_F(CredentialsTest, RejectsBadFilesNamingTheKey) {
  struct Case {
    const char* text;
    const char* field;
    const char* message_part;
  };
  const Case cases[] = {
      {"not json", "credentials", "not valid JSON"},
      {"[1]", "credentials", "JSON object"},
      {R"({"clientID": "x"})", "clientID", "unknown key"},
      {R"({"clientId": 5, "accessToken": "t"})", "clientId", "string"},
      {R"({"clientId": "a", "accessToken": "t", "authorizedScopes": "s"})",
       "authorizedScopes", "JSON array"},
      {R"({"clientId": "a", "accessToken": "t", "authorizedScopes": ["a", 3]})",
       "authorizedScopes[1]", "must be a string"},
      {R"({"clientId": "a", "accessToken": "t", "expires": "tomorrow"})",
       "expires", "RFC 3339"},
      {R"({"accessToken": "t"})", "clientId", "needs its client id"},
      {R"({"clientId": "a"})", "accessToken", "access token or a certificate"},
      {R"({"clientId": "a", "accessToken": "t", "certificate": "c"})",
       "certificate", "not both"},
      {R"({"authorizedScopes": ["a"]})", "authorizedScopes", "none are set"},
  };
  for (const auto& c : cases) {
    auto got = ParseCredentialsJson(c.text, "creds.json");
    ASSERT_FALSE(got.ok()) << c.text;
    ErrorInfo info = InfoOf(got.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError) << c.text;
    EXPECT_EQ(info.details["field"], c.field) << c.text << ": " << info.message;
    EXPECT_NE(info.message.find(c.message_part), std::string::npos)
        << c.text << ": " << info.message;
  }
}

TEST_F(CredentialsTest, ErrorsNeverEchoSecrets) {
  auto got = ParseCredentialsJson(
      R"({"clientId": "a", "accessToken": "s3cret", "certificate": "c3rt"})",
      "f");
  ASSERT_FALSE(got.ok());
  ErrorInfo info = InfoOf(got.status());
  for (const auto& [key, value] : info.details) {
    EXPECT_EQ(value.find("s3cret"), std::string::npos) << key;
    EXPECT_EQ(value.find("c3rt"), std::string::npos) << key;
  }
  EXPECT_EQ(info.message.find("s3cret"), std::string::npos);
}

TEST_F(CredentialsTest, ReadsTheEnvironment) {
  auto none = CredentialsFromEnvironment(FixedEnvironment({}));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());

  auto env = FixedEnvironment({{"DROVER_CLIENT_ID", "ci/builder"},
                               {"DROVER_ACCESS_TOKEN", "tok"},
                               {"DROVER_AUTHORIZED_SCOPES", R"(["a","b"])"}});
  auto got = CredentialsFromEnvironment(env);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->client_id, "ci/builder");
  EXPECT_EQ((*got)->access_token, "tok");
  EXPECT_EQ((*got)->authorized_scopes, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*got)->source, "environment");
}

TEST_F(CredentialsTest, EnvironmentErrorsNameTheVariable) {
  auto missing_token =
      CredentialsFromEnvironment(FixedEnvironment({{"DROVER_CLIENT_ID", "x"}}));
  ASSERT_FALSE(missing_token.ok());
  EXPECT_EQ(InfoOf(missing_token.status()).details["field"],
            "DROVER_ACCESS_TOKEN");

  auto bad_scopes = CredentialsFromEnvironment(FixedEnvironment(
      {{"DROVER_CERTIFICATE", "c"}, {"DROVER_AUTHORIZED_SCOPES", "queue:*"}}));
  ASSERT_FALSE(bad_scopes.ok());
  ErrorInfo info = InfoOf(bad_scopes.status());
  EXPECT_EQ(info.details["field"], "DROVER_AUTHORIZED_SCOPES");
  EXPECT_EQ(info.details["value"], "queue:*");
}

TEST_F(CredentialsTest, DefaultPathFollowsXdg) {
  EXPECT_EQ(DefaultCredentialsPath(FixedEnvironment(
                {{"XDG_CONFIG_HOME", "/x"}, {"HOME", "/home/a"}})),
            "/x/drover/credentials.json");
  EXPECT_EQ(DefaultCredentialsPath(FixedEnvironment({{"HOME", "/home/a"}})),
            "/home/a/.config/drover/credentials.json");
  EXPECT_EQ(DefaultCredentialsPath(FixedEnvironment({})), "");
}

TEST_F(CredentialsTest, LoadFollowsPrecedence) {
  std::string flag_file =
      Write("flag.json", R"({"clientId": "from-flag", "accessToken": "t"})");
  std::string named_file =
      Write("named.json", R"({"clientId": "from-named", "accessToken": "t"})");
  Write("xdg/drover/credentials.json",
        R"({"clientId": "from-default", "accessToken": "t"})");
  std::string xdg = (dir_ / "xdg").string();

  std::map<std::string, std::string> vars = {
      {"DROVER_CLIENT_ID", "from-env"},
      {"DROVER_ACCESS_TOKEN", "t"},
      {"DROVER_CREDENTIALS_FILE", named_file},
      {"XDG_CONFIG_HOME", xdg}};
  EXPECT_EQ(LoadCredentials(FixedEnvironment(vars), flag_file)->client_id,
            "from-flag");
  EXPECT_EQ(LoadCredentials(FixedEnvironment(vars), "")->client_id, "from-env");
  vars.erase("DROVER_CLIENT_ID");
  vars.erase("DROVER_ACCESS_TOKEN");
  EXPECT_EQ(LoadCredentials(FixedEnvironment(vars), "")->client_id,
            "from-named");
  vars.erase("DROVER_CREDENTIALS_FILE");
  auto from_default = LoadCredentials(FixedEnvironment(vars), "");
  ASSERT_TRUE(from_default.ok()) << from_default.status();
  EXPECT_EQ(from_default->client_id, "from-default");
  EXPECT_EQ(from_default->source, xdg + "/drover/credentials.json");

  // No default file: anonymous, not an error.
  vars["XDG_CONFIG_HOME"] = (dir_ / "empty").string();
  auto anonymous = LoadCredentials(FixedEnvironment(vars), "");
  ASSERT_TRUE(anonymous.ok()) << anonymous.status();
  EXPECT_TRUE(anonymous->Anonymous());
}

TEST_F(CredentialsTest, MissingNamedFileIsAnError) {
  std::string missing = (dir_ / "nope.json").string();
  auto from_flag = LoadCredentials(FixedEnvironment({}), missing);
  ASSERT_FALSE(from_flag.ok());
  ErrorInfo info = InfoOf(from_flag.status());
  EXPECT_EQ(info.details["field"], "credentials");
  EXPECT_EQ(info.details["value"], missing);

  auto from_env = LoadCredentials(
      FixedEnvironment({{"DROVER_CREDENTIALS_FILE", missing}}), "");
  ASSERT_FALSE(from_env.ok());
  EXPECT_EQ(InfoOf(from_env.status()).details["value"], missing);
}

}  // namespace
}  // namespace drover::client
