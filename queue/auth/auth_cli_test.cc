// The drover CLI's identity and secrets commands (signin, whoami, clients,
// roles, secrets), run in-process (cli::RunCli) against a real server with
// real authentication (AuthTestEnv).
#include <sys/stat.h>

#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "cli/app.h"
#include "cli/commands/auth.h"
#include "cli/commands/secrets.h"
#include "client/environment.h"
#include "common/clock.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "queue/auth/testing/auth_test_env.h"

namespace drover::queue::auth {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const Result& r) {
  return os << "exit " << r.code << "\n--- stdout\n"
            << r.out << "--- stderr\n"
            << r.err;
}

class AuthCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = testing::AuthTestEnv::Create();
    if (!env.ok() && env.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << "cannot run here: " << env.status();
    }
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(env).value();
    root_file_ = env_->auth().root_credentials_file();
  }

  // Runs `drover args...` with exactly `vars` as its environment (plus
  // DROVER_URL).
  Result Run(const std::vector<std::string>& args,
             std::map<std::string, std::string> vars,
             const std::string& stdin_text = "") {
    vars["DROVER_URL"] = env_->target();
    std::istringstream in(stdin_text);
    std::ostringstream out, err;
    Result r;
    r.code = cli::RunCli(args, cli::Streams{in, out, err},
                         client::FixedEnvironment(vars), clock_, "test-host");
    r.out = out.str();
    r.err = err.str();
    return r;
  }

  Result AsRoot(const std::vector<std::string>& args,
                const std::string& stdin_text = "") {
    return Run(args, {{"DROVER_CREDENTIALS_FILE", root_file_}}, stdin_text);
  }

  SystemClock clock_;
  std::unique_ptr<testing::AuthTestEnv> env_;
  std::string root_file_;
};

std::string Field(const std::string& text, const std::string& name) {
  std::smatch m;
  if (std::regex_search(text, m, std::regex(name + ":\\s+(\\S+)"))) {
    return m[1];
  }
  return "";
}

TEST_F(AuthCliTest, CreateClientSigninWhoamiAndSecrets) {
  Result whoami = AsRoot({"whoami"});
  ASSERT_EQ(whoami.code, 0) << whoami;
  EXPECT_EQ(Field(whoami.out, "clientId"), "root");

  Result role = AsRoot({"roles", "create", "project:demo", "--scope",
                        "secrets:get:demo/*", "--scope", "secrets:set:demo/*",
                        "--description", "demo project"});
  ASSERT_EQ(role.code, 0) << role;
  Result created =
      AsRoot({"clients", "create", "user/alice", "--scope",
              "assume:project:demo", "--description", "Alice"});
  ASSERT_EQ(created.code, 0) << created;
  const std::string token = Field(created.out, "accessToken");
  ASSERT_EQ(token.size(), 43u) << created;
  EXPECT_NE(created.out.find("secrets:get:demo/*"), std::string::npos)
      << "expanded scopes are shown: " << created;

  const std::map<std::string, std::string> alice = {
      {"DROVER_CLIENT_ID", "user/alice"}, {"DROVER_ACCESS_TOKEN", token}};
  Result alice_whoami = Run({"whoami"}, alice);
  ASSERT_EQ(alice_whoami.code, 0) << alice_whoami;
  EXPECT_NE(alice_whoami.out.find("permanent"), std::string::npos);

  // signin: shell exports with a narrowed, short-lived certificate.
  Result signin = Run({"signin", "--scope", "secrets:get:demo/*", "--expires",
                       "2h"},
                      alice);
  ASSERT_EQ(signin.code, 0) << signin;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      signin.out, m, std::regex("export DROVER_CERTIFICATE='([^']+)'")))
      << signin;
  const std::string certificate = m[1];
  EXPECT_NE(signin.out.find("unset DROVER_ACCESS_TOKEN"), std::string::npos);
  const std::map<std::string, std::string> temp = {
      {"DROVER_CLIENT_ID", "user/alice"}, {"DROVER_CERTIFICATE", certificate}};
  Result temp_whoami = Run({"whoami"}, temp);
  ASSERT_EQ(temp_whoami.code, 0) << temp_whoami;
  EXPECT_NE(temp_whoami.out.find("temporary, issued by user/alice"),
            std::string::npos)
      << temp_whoami;
  EXPECT_NE(temp_whoami.out.find("secrets:get:demo/*"), std::string::npos);
  EXPECT_EQ(temp_whoami.out.find("secrets:set:demo/*"), std::string::npos);
  // Temporary credentials cannot sign in again.
  EXPECT_EQ(Run({"signin"}, temp).code, 2);

  // signin -o: a private credentials file the CLI reads.
  const std::string file = env_->data_dir() + "/alice-temp.json";
  Result written = Run({"signin", "-o", file, "--expires", "1h"}, alice);
  ASSERT_EQ(written.code, 0) << written;
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  Result from_file = Run({"whoami"}, {{"DROVER_CREDENTIALS_FILE", file}});
  ASSERT_EQ(from_file.code, 0) << from_file;
  EXPECT_NE(from_file.out.find("temporary"), std::string::npos);

  // Secrets: set from stdin, get, list, remove; scopes apply.
  Result set = Run({"secrets", "set", "demo/db", "-"}, alice,
                   R"({"password":"pw"})"
                   "\n");
  ASSERT_EQ(set.code, 0) << set;
  Result set_string =
      Run({"secrets", "set", "demo/note", "--string", "hello world"}, alice);
  ASSERT_EQ(set_string.code, 0) << set_string;
  Result get = Run({"secrets", "get", "demo/db"}, temp);
  ASSERT_EQ(get.code, 0) << get;
  EXPECT_EQ(get.out, "{\"password\":\"pw\"}\n");
  EXPECT_EQ(Run({"secrets", "get", "demo/note"}, temp).out,
            "\"hello world\"\n");
  Result denied = Run({"secrets", "set", "demo/x", "1"}, temp);
  EXPECT_EQ(denied.code, 1) << denied;
  EXPECT_NE(denied.err.find("InsufficientScopes"), std::string::npos)
      << denied;
  Result not_json = Run({"secrets", "set", "demo/x", "not json"}, alice);
  EXPECT_EQ(not_json.code, 2) << not_json;
  Result list = AsRoot({"secrets", "list", "--prefix", "demo/"});
  ASSERT_EQ(list.code, 0) << list;
  EXPECT_EQ(list.out, "demo/db\ndemo/note\n");
  EXPECT_EQ(Run({"secrets", "remove", "demo/note"}, alice).code, 0);
  EXPECT_EQ(Run({"secrets", "get", "demo/note"}, alice).code, 1);

  // Client administration.
  Result listed = AsRoot({"clients", "list", "--prefix", "user/"});
  ASSERT_EQ(listed.code, 0) << listed;
  EXPECT_NE(listed.out.find("user/alice"), std::string::npos);
  Result update = AsRoot({"clients", "update", "user/alice", "--add-scope",
                          "queue:get-task:*", "--description", "Alice 2"});
  ASSERT_EQ(update.code, 0) << update;
  EXPECT_NE(update.out.find("queue:get-task:*"), std::string::npos);
  EXPECT_NE(update.out.find("assume:project:demo"), std::string::npos);
  ASSERT_EQ(AsRoot({"clients", "disable", "user/alice"}).code, 0);
  Result refused = Run({"whoami"}, alice);
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("AuthenticationFailed"), std::string::npos)
      << refused;
  ASSERT_EQ(AsRoot({"clients", "enable", "user/alice"}).code, 0);
  Result reset = AsRoot({"clients", "reset-token", "user/alice"});
  ASSERT_EQ(reset.code, 0) << reset;
  const std::string new_token = Field(reset.out, "accessToken");
  EXPECT_EQ(Run({"whoami"}, alice).code, 1);
  EXPECT_EQ(Run({"whoami"}, {{"DROVER_CLIENT_ID", "user/alice"},
                            {"DROVER_ACCESS_TOKEN", new_token}})
                .code,
            0);

  Result expand = AsRoot({"roles", "expand", "assume:project:demo"});
  ASSERT_EQ(expand.code, 0) << expand;
  EXPECT_NE(expand.out.find("secrets:set:demo/*"), std::string::npos);
  Result role_update = AsRoot(
      {"roles", "update", "project:demo", "--remove-scope", "secrets:set:demo/*"});
  ASSERT_EQ(role_update.code, 0) << role_update;
  EXPECT_EQ(role_update.out.find("secrets:set:demo/*"), std::string::npos);
  ASSERT_EQ(AsRoot({"roles", "delete", "project:demo"}).code, 0);
  EXPECT_EQ(AsRoot({"roles", "get", "project:demo"}).code, 1);
  ASSERT_EQ(AsRoot({"clients", "delete", "user/alice"}).code, 0);
  EXPECT_EQ(AsRoot({"clients", "get", "user/alice"}).code, 1);
}

TEST(AuthCliFormatTest, EditScopesKeepsOrderAndDropsDuplicates) {
  EXPECT_EQ(cli::commands::EditScopes({"a", "b"}, {}, {"c", "a"}, {"b"}),
            (std::vector<std::string>{"a", "c"}));
  EXPECT_EQ(cli::commands::EditScopes({"a", "b"}, {"x"}, {"y"}, {}),
            (std::vector<std::string>{"x", "y"}));
}

TEST(AuthCliFormatTest, SecretValuesMustBeJsonUnlessStrings) {
  EXPECT_EQ(cli::commands::SecretValue(R"({"a":1})", false).value_or(""),
            R"({"a":1})");
  EXPECT_EQ(cli::commands::SecretValue("it's \"x\"", true).value_or(""),
            R"("it's \"x\"")");
  auto bad = cli::commands::SecretValue("hunter2", false);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(std::string(bad.status().message()).find("hunter2"),
            std::string::npos);
}

}  // namespace
}  // namespace drover::queue::auth
