#include "engines/native/payload.h"

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::engines::native {
namespace {

using nlohmann::json;

std::string FieldOf(const json& payload) {
  auto parsed = ParseNativePayload(payload);
  EXPECT_FALSE(parsed.ok()) << payload.dump();
  EXPECT_TRUE(HasErrorCode(parsed.status(), ErrorCode::kMalformedPayload))
      << parsed.status();
  return GetErrorInfo(parsed.status()).details["field"];
}

TEST(NativePayloadTest, OneCommandAsArgv) {
  auto parsed = ParseNativePayload(json{{"command", {"echo", "a b"}}});
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->commands.size(), 1u);
  EXPECT_EQ(parsed->commands[0], (std::vector<std::string>{"echo", "a b"}));
}

TEST(NativePayloadTest, SeveralCommandsKeepTheirOrder) {
  json payload = {
      {"command", {{"first"}, {"second", "x"}, {"third"}}},
      {"env", {{"A", "1"}}},
      {"maxRunTime", 60},
      {"onExitStatus", {{"retry", {1, 255}}}},
      {"artifacts", json::array({{{"path", "out"}}})},
      {"mounts", json::array()},
  };
  auto parsed = ParseNativePayload(payload);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->commands.size(), 3u);
  EXPECT_EQ(parsed->commands[0][0], "first");
  EXPECT_EQ(parsed->commands[1], (std::vector<std::string>{"second", "x"}));
  EXPECT_EQ(parsed->commands[2][0], "third");
}

TEST(NativePayloadTest, ErrorsNameTheField) {
  EXPECT_EQ(FieldOf(json("echo")), "payload");
  EXPECT_EQ(FieldOf(json::object()), "payload.command");
  EXPECT_EQ(FieldOf(json{{"command", 5}}), "payload.command");
  EXPECT_EQ(FieldOf(json{{"command", {{"a"}, {"b", 1}}}}),
            "payload.command[1][1]");
  EXPECT_EQ(FieldOf(json{{"command", {"a", std::string("x\0y", 3)}}}),
            "payload.command[1]");
  EXPECT_EQ(FieldOf(json{{"command", {"a"}}, {"env", json::array()}}),
            "payload.env");
  EXPECT_EQ(FieldOf(json{{"command", {"a"}}, {"env", {{"A=B", "x"}}}}),
            "payload.env.A=B");
  EXPECT_EQ(FieldOf(json{{"command", {"a"}}, {"maxRunTime", 1.5}}),
            "payload.maxRunTime");
  EXPECT_EQ(FieldOf(json{{"command", {"a"}}, {"maxRunTime", 0}}),
            "payload.maxRunTime");
  EXPECT_EQ(FieldOf(json{{"command", {"a"}}, {"onExitStatus", 1}}),
            "payload.onExitStatus");
  EXPECT_EQ(FieldOf(json{{"command", {"a"}}, {"onExitStatus", {{"retry", 1}}}}),
            "payload.onExitStatus.retry");
  EXPECT_EQ(
      FieldOf(json{{"command", {"a"}}, {"onExitStatus", {{"retry", {3, 0}}}}}),
      "payload.onExitStatus.retry[1]");
  EXPECT_EQ(FieldOf(json{{"command", {"a"}}, {"mounts", {1}}}),
            "payload.mounts[0]");
  EXPECT_EQ(FieldOf(json{{"command", {"a"}}, {"artifacts", json::object()}}),
            "payload.artifacts");
}

TEST(NativePayloadTest, KeysCoverTheDocumentedPayload) {
  std::vector<std::string> keys = NativePayloadKeys();
  for (const char* key : {"command", "env", "maxRunTime", "artifacts",
                          "onExitStatus", "mounts"}) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), key), keys.end()) << key;
  }
}

}  // namespace
}  // namespace drover::engines::native
