#include "client/task_json.h"

#include <string>

#include "client/time_spec.h"
#include "common/slugid.h"
#include "common/status.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace drover::client {
namespace {

using nlohmann::json;

absl::Time Now() { return absl::FromUnixSeconds(1740830400); }  // 2025-03-01

absl::Time TimeOf(const google::protobuf::Timestamp& ts) {
  return FromProtoTimestamp(ts);
}

TEST(TaskJsonTest, ConvertsEveryField) {
  auto task = ParseTaskDefinition(R"({
    "taskQueueId": "proj/linux",
    "schedulerId": "ci",
    "taskGroupId": "aKuAvC1vTJuBLJBu0iyrqg",
    "dependencies": ["bKuAvC1vTJuBLJBu0iyrqg", "cKuAvC1vTJuBLJBu0iyrqg"],
    "requires": "all-resolved",
    "routes": ["index.a", "notify.b"],
    "priority": "high",
    "retries": 3,
    "created": "2025-03-01T10:00:00Z",
    "deadline": "2025-03-01T12:00:00Z",
    "expires": "2025-04-01T00:00:00+02:00",
    "scopes": ["secrets:get:x"],
    "payload": {"command": ["echo", "hi"], "maxRunTime": 60},
    "metadata": {"name": "n", "description": "d", "owner": "o@example.com",
                 "source": "https://example.com/ci"},
    "tags": {"kind": "test"},
    "extra": {"note": [1, 2]}
  })",
                                  Now());
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->task_queue_id(), "proj/linux");
  EXPECT_EQ(task->scheduler_id(), "ci");
  EXPECT_EQ(task->task_group_id(), "aKuAvC1vTJuBLJBu0iyrqg");
  ASSERT_EQ(task->dependencies_size(), 2);
  EXPECT_EQ(task->dependencies(1), "cKuAvC1vTJuBLJBu0iyrqg");
  EXPECT_EQ(task->requirement(), "all-resolved");
  ASSERT_EQ(task->routes_size(), 2);
  EXPECT_EQ(task->routes(0), "index.a");
  EXPECT_EQ(task->priority(), "high");
  ASSERT_TRUE(task->has_retries());
  EXPECT_EQ(task->retries(), 3);
  EXPECT_EQ(FormatRfc3339(TimeOf(task->created())), "2025-03-01T10:00:00Z");
  EXPECT_EQ(FormatRfc3339(TimeOf(task->deadline())), "2025-03-01T12:00:00Z");
  EXPECT_EQ(FormatRfc3339(TimeOf(task->expires())), "2025-03-31T22:00:00Z");
  ASSERT_EQ(task->scopes_size(), 1);
  EXPECT_EQ(json::parse(task->payload()),
            json::parse(R"({"command": ["echo", "hi"], "maxRunTime": 60})"));
  EXPECT_EQ(task->metadata().name(), "n");
  EXPECT_EQ(task->metadata().description(), "d");
  EXPECT_EQ(task->metadata().owner(), "o@example.com");
  EXPECT_EQ(task->metadata().source(), "https://example.com/ci");
  EXPECT_EQ(task->tags().at("kind"), "test");
  EXPECT_EQ(json::parse(task->extra()), json::parse(R"({"note": [1, 2]})"));
}

TEST(TaskJsonTest, AbsentFieldsStayUnsetAndCreatedDefaultsToNow) {
  auto task = TaskDefinitionFromJson(json::object(), Now());
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_FALSE(task->has_retries());
  EXPECT_FALSE(task->has_deadline());
  EXPECT_FALSE(task->has_expires());
  EXPECT_FALSE(task->has_metadata());
  EXPECT_TRUE(task->payload().empty());
  ASSERT_TRUE(task->has_created());
  EXPECT_EQ(TimeOf(task->created()), Now());
}

TEST(TaskJsonTest, NullMeansAbsent) {
  auto task = ParseTaskDefinition(
      R"({"priority": null, "retries": null, "payload": null})", Now());
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_TRUE(task->priority().empty());
  EXPECT_FALSE(task->has_retries());
}

TEST(TaskJsonTest, RelativeTimesCountFromCreated) {
  auto task = ParseTaskDefinition(
      R"({"created": "2025-01-01T00:00:00Z", "deadline": "+2 hours",
          "expires": "+30 days"})",
      Now());
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(FormatRfc3339(TimeOf(task->deadline())), "2025-01-01T02:00:00Z");
  EXPECT_EQ(FormatRfc3339(TimeOf(task->expires())), "2025-01-31T00:00:00Z");

  auto from_now = ParseTaskDefinition(
      R"({"created": "-1 hour", "deadline": "+3 hours"})", Now());
  ASSERT_TRUE(from_now.ok()) << from_now.status();
  EXPECT_EQ(TimeOf(from_now->created()), Now() - absl::Hours(1));
  EXPECT_EQ(TimeOf(from_now->deadline()), Now() + absl::Hours(2));
}

TEST(TaskJsonTest, BadInputNamesTheExactField) {
  struct Case {
    std::string text;
    std::string field;
    std::string value;
    std::string message_part;
  };
  const Case cases[] = {
      {R"([1, 2])", "task", "[1,2]", "must be a JSON object"},
      {R"("task")", "task", "\"task\"", "got string"},
      {R"({"taskQueueID": "a/b"})", "taskQueueID", "\"a/b\"", "unknown key"},
      {R"({"task_queue_id": "a/b"})", "task_queue_id", "\"a/b\"", "camelCase"},
      {R"({"taskQueueId": 7})", "taskQueueId", "7", "must be a string"},
      {R"({"schedulerId": ["x"]})", "schedulerId", "[\"x\"]", "got array"},
      {R"({"taskGroupId": {}})", "taskGroupId", "{}", "must be a string"},
      {R"({"dependencies": "abc"})", "dependencies", "\"abc\"",
       "array of strings"},
      {R"({"dependencies": ["a", "b", 3]})", "dependencies[2]", "3",
       "must be a string"},
      {R"({"requires": true})", "requires", "true", "must be a string"},
      {R"({"routes": [null]})", "routes[0]", "null", "got null"},
      {R"({"priority": 1})", "priority", "1", "must be a string"},
      {R"({"retries": "5"})", "retries", "\"5\"", "integer"},
      {R"({"retries": 2.5})", "retries", "2.5", "integer"},
      {R"({"retries": 4294967296})", "retries", "4294967296", "out of range"},
      {R"({"retries": -3000000000})", "retries", "-3000000000", "out of range"},
      {R"({"created": 1700000000})", "created", "1700000000",
       "RFC 3339 time or a relative time"},
      {R"({"created": "yesterday"})", "created", "yesterday",
       "expected a number"},
      {R"({"deadline": "2025-13-01T00:00:00Z"})", "deadline",
       "2025-13-01T00:00:00Z", "RFC 3339"},
      {R"({"deadline": "+1 fortnight"})", "deadline", "+1 fortnight",
       "unknown time unit"},
      {R"({"expires": "+"})", "expires", "+", "empty duration"},
      {R"({"scopes": [1]})", "scopes[0]", "1", "must be a string"},
      {R"({"payload": "{}"})", "payload", "\"{}\"", "must be a JSON object"},
      {R"({"payload": [1]})", "payload", "[1]", "got array"},
      {R"({"metadata": "m"})", "metadata", "\"m\"", "JSON object"},
      {R"({"metadata": {"name": 1}})", "metadata.name", "1",
       "must be a string"},
      {R"({"metadata": {"name": "n", "owner": false}})", "metadata.owner",
       "false", "must be a string"},
      {R"({"metadata": {"title": "t"}})", "metadata.title", "\"t\"",
       "unknown metadata key"},
      {R"({"tags": ["a"]})", "tags", "[\"a\"]", "object of strings"},
      {R"({"tags": {"os": "linux", "cores": 4}})", "tags.cores", "4",
       "must be a string"},
      {R"({"extra": 3})", "extra", "3", "must be a JSON object"},
  };
  for (const auto& c : cases) {
    auto got = ParseTaskDefinition(c.text, Now());
    ASSERT_FALSE(got.ok()) << c.text;
    ErrorInfo info = GetErrorInfo(got.status());
    EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(info.code, ErrorCode::kInputError) << c.text;
    EXPECT_EQ(info.details["field"], c.field) << c.text;
    EXPECT_EQ(info.details["value"], c.value) << c.text;
    EXPECT_NE(info.message.find(c.message_part), std::string::npos)
        << c.text << ": " << info.message;
  }
}

TEST(TaskJsonTest, InvalidJsonReportsLineAndColumn) {
  auto got = ParseTaskDefinition("{\n  \"priority\": \"high\",\n}", Now());
  ASSERT_FALSE(got.ok());
  ErrorInfo info = GetErrorInfo(got.status());
  EXPECT_EQ(info.details["field"], "task");
  EXPECT_NE(info.message.find("line 3"), std::string::npos) << info.message;
}

TEST(TaskJsonTest, ToJsonRoundTrips) {
  const char* text = R"({
    "taskQueueId": "proj/linux", "schedulerId": "ci",
    "taskGroupId": "aKuAvC1vTJuBLJBu0iyrqg",
    "dependencies": ["bKuAvC1vTJuBLJBu0iyrqg"], "requires": "all-completed",
    "routes": ["r"], "priority": "low", "retries": 0,
    "created": "2025-03-01T10:00:00.5Z", "deadline": "2025-03-01T12:00:00Z",
    "expires": "2026-03-01T12:00:00Z", "scopes": ["s"],
    "payload": {"a": {"b": [1, "x"]}},
    "metadata": {"name": "n", "description": "", "owner": "o", "source": "s"},
    "tags": {"k": "v"}, "extra": {"e": true}
  })";
  auto task = ParseTaskDefinition(text, Now());
  ASSERT_TRUE(task.ok()) << task.status();
  json out = TaskDefinitionToJson(*task);
  EXPECT_EQ(out, json::parse(text));
  auto again = TaskDefinitionFromJson(out, Now());
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*again, *task))
      << again->DebugString();
}

TEST(TaskJsonTest, NewTaskIdIsASlug) {
  std::string a = NewTaskId();
  std::string b = NewTaskId();
  EXPECT_TRUE(IsValidSlugId(a)) << a;
  EXPECT_NE(a, b);
}

}  // namespace
}  // namespace drover::client
