// Docker engine pieces that need no dockerd: flags -> options, the
// X-Registry-Auth header, and payload validation.
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/status.h"
#include "engines/docker/docker_client.h"
#include "engines/docker/docker_engine.h"
#include "gtest/gtest.h"

namespace drover::engines::docker {
namespace {

absl::StatusOr<DockerEngineOptions> Parse(std::vector<std::string> args) {
  CLI::App app;
  DockerEngineFlags flags;
  AddDockerEngineFlags(app, &flags);
  args.insert(args.begin(), "worker");
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), argv.data());
  return DockerEngineOptionsFromFlags(flags, "group-a", "worker-1");
}

TEST(DockerEngineOptionsTest, DefaultsAreUsable) {
  auto o = Parse({});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->worker_group, "group-a");
  EXPECT_EQ(o->worker_id, "worker-1");
  EXPECT_EQ(o->working_dir, "/task");
  EXPECT_EQ(o->network_mode, "bridge");
  EXPECT_FALSE(o->allow_privileged);
  EXPECT_EQ(o->pull_timeout, absl::Minutes(10));
  EXPECT_TRUE(o->registry_credentials.empty());
}

TEST(DockerEngineOptionsTest, FlagsAreApplied) {
  auto o =
      Parse({"--docker-max-memory-mb", "2048", "--docker-max-cpus", "1.5",
             "--docker-default-memory-mb", "512", "--docker-network-mode",
             "none", "--docker-allow-privileged", "--docker-privileged-scope",
             "docker-worker:privileged:p/q", "--docker-pull-timeout-seconds",
             "30", "--docker-registry-auth", "127.0.0.1:5001=me:pa:ss",
             "--docker-registry-auth", "docker.io=hub:secret"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_memory_mb, 2048);
  EXPECT_EQ(o->default_memory_mb, 512);
  EXPECT_DOUBLE_EQ(o->max_cpus, 1.5);
  EXPECT_EQ(o->network_mode, "none");
  EXPECT_TRUE(o->allow_privileged);
  EXPECT_EQ(o->privileged_scope, "docker-worker:privileged:p/q");
  EXPECT_EQ(o->pull_timeout, absl::Seconds(30));
  ASSERT_EQ(o->registry_credentials.size(), 2u);
  EXPECT_EQ(o->registry_credentials["127.0.0.1:5001"].username, "me");
  EXPECT_EQ(o->registry_credentials["127.0.0.1:5001"].password, "pa:ss");
  EXPECT_EQ(o->registry_credentials["docker.io"].password, "secret");
}

TEST(DockerEngineOptionsTest, BadFlagsNameTheFlagAndHideSecrets) {
  struct Case {
    std::vector<std::string> args;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{
           {{"--docker-working-dir", "relative"}, "docker-working-dir"},
           {{"--docker-max-memory-mb", "3"}, "docker-max-memory-mb"},
           {{"--docker-max-cpus", "-1"}, "docker-max-cpus"},
           {{"--docker-allow-privileged"}, "docker-privileged-scope"},
           {{"--docker-pull-timeout-seconds", "0"},
            "docker-pull-timeout-seconds"},
           {{"--docker-registry-auth", "host-without-credentials"},
            "docker-registry-auth"},
           {{"--docker-registry-auth", "host=userwithoutpassword"},
            "docker-registry-auth"},
       }) {
    auto o = Parse(c.args);
    ASSERT_FALSE(o.ok()) << c.args[0];
    ErrorInfo info = GetErrorInfo(o.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], c.field);
  }
  auto o = Parse({"--docker-registry-auth", "reg=user"});
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(GetErrorInfo(o.status()).details["value"], "reg");
}

TEST(RegistryAuthHeaderTest, IsPaddedUrlSafeBase64OfTheCredentials) {
  std::string header =
      RegistryAuthHeader("127.0.0.1:5001", {"user?>", "p&ss~~~"});
  EXPECT_EQ(header.size() % 4, 0u);
  EXPECT_EQ(header.find_first_of("+/"), std::string::npos);
  std::string decoded;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(header, &decoded));
  nlohmann::json j = nlohmann::json::parse(decoded);
  EXPECT_EQ(j["username"], "user?>");
  EXPECT_EQ(j["password"], "p&ss~~~");
  EXPECT_EQ(j["serveraddress"], "127.0.0.1:5001");
}

class PayloadValidationTest : public ::testing::Test {
 protected:
  // Validation never talks to dockerd.
  DockerEngine engine_{DockerEngineOptions{},
                       std::make_shared<DockerClient>(DockerClientOptions{
                           .socket_path = "/nonexistent/docker.sock"})};
};

TEST_F(PayloadValidationTest, AcceptsTheDocumentedShape) {
  nlohmann::json payload = {
      {"image", "127.0.0.1:5000/team/tool:1.0"},
      {"command", {"/bin/sh", "-c", "echo hi"}},
      {"env", {{"A", "b"}}},
      {"maxRunTime", 600},
      {"artifacts", {{{"path", "out"}, {"type", "directory"}}}},
      {"onExitStatus", {{"retry", {36}}}},
      {"resources", {{"memoryMB", 512}, {"cpus", 0.5}}},
      {"privileged", false}};
  EXPECT_TRUE(engine_.ValidatePayload(payload).ok())
      << engine_.ValidatePayload(payload);
  std::vector<std::string> keys = engine_.PayloadKeys();
  for (const auto& item : payload.items()) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), item.key()), keys.end())
        << item.key();
  }
}

TEST_F(PayloadValidationTest, RejectsWithTheFieldNamed) {
  struct Case {
    nlohmann::json payload;
    std::string field;
  };
  const std::string image = "busybox";
  for (const Case& c : std::vector<Case>{
           {{{"image", "a b"}}, "payload.image"},
           {{{"image", image}, {"command", {""}}}, "payload.command[0]"},
           {{{"image", image}, {"resources", {{"memoryMB", 10.5}}}},
            "payload.resources.memoryMB"},
           {{{"image", image}, {"resources", {{"cpus", 5000}}}},
            "payload.resources.cpus"},
           {{{"image", image}, {"resources", 3}}, "payload.resources"},
           {{{"image", image}, {"env", {{"A=B", "c"}}}}, "payload.env.A=B"},
           {{{"image", image}, {"maxRunTime", 0}}, "payload.maxRunTime"},
           {{{"image", image}, {"artifacts", {1}}}, "payload.artifacts[0]"},
           {{{"image", image}, {"onExitStatus", {{"retry", 1}}}},
            "payload.onExitStatus.retry"},
       }) {
    absl::Status s = engine_.ValidatePayload(c.payload);
    ErrorInfo info = GetErrorInfo(s);
    EXPECT_EQ(info.code, ErrorCode::kMalformedPayload) << c.payload.dump();
    EXPECT_EQ(info.details["field"], c.field) << c.payload.dump() << " " << s;
  }
}

}  // namespace
}  // namespace drover::engines::docker
