#include "cli/task_flags.h"

#include <string>
#include <vector>

#include "client/task_json.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::cli {
namespace {

using nlohmann::json;

TaskDefaults Defaults() { return DefaultTaskDefaults("alice", "build-1"); }

TEST(SplitCommandWordsTest, SplitsLikeAShell) {
  struct Case {
    std::string text;
    std::vector<std::string> want;
  };
  const Case cases[] = {
      {"echo hello", {"echo", "hello"}},
      {"  echo   a\tb  ", {"echo", "a", "b"}},
      {R"(sh -c "echo \"hi\" \$HOME")", {"sh", "-c", R"(echo "hi" $HOME)"}},
      {R"(sh -c 'echo $HOME "x"')", {"sh", "-c", R"(echo $HOME "x")"}},
      {R"(a\ b c)", {"a b", "c"}},
      {R"(x"y"'z')", {"xyz"}},
      {R"("" '')", {"", ""}},
      {R"("a\nb")", {R"(a\nb)"}},
  };
  for (const auto& c : cases) {
    auto got = SplitCommandWords(c.text);
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.text;
  }
}

TEST(SplitCommandWordsTest, RejectsUnbalancedInput) {
  for (const char* text : {"echo 'a", "echo \"a", "echo \\", "", "   "}) {
    auto got = SplitCommandWords(text);
    ASSERT_FALSE(got.ok()) << text;
    ErrorInfo info = GetErrorInfo(got.status());
    EXPECT_EQ(info.details["field"], "--command");
    EXPECT_EQ(info.details["value"], text);
  }
}

TEST(ApplyTaskFlagsTest, FlagsAloneMakeACompleteTask) {
  TaskFlags flags;
  flags.queue = "proj/linux";
  flags.name = "hello";
  flags.commands = {"echo hello"};
  flags.env = {"A=1", "B=x=y"};
  flags.max_run_time = "10m";
  flags.priority = "high";
  flags.retries = 2;
  flags.routes = {"index.a"};
  flags.tags = {"kind=test"};
  json doc = json::object();
  ASSERT_TRUE(ApplyTaskFlags(flags, Defaults(), &doc).ok());
  EXPECT_EQ(doc, json::parse(R"({
    "taskQueueId": "proj/linux",
    "priority": "high",
    "retries": 2,
    "routes": ["index.a"],
    "deadline": "+1 day",
    "payload": {"command": ["echo", "hello"], "env": {"A": "1", "B": "x=y"},
                "maxRunTime": 600},
    "metadata": {"name": "hello", "description": "hello",
                 "owner": "alice@build-1",
                 "source": "http://build-1/drover-cli"},
    "tags": {"kind": "test"}
  })"));
  // And it converts cleanly.
  auto task = client::TaskDefinitionFromJson(doc, absl::Now());
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_TRUE(task->has_deadline());
}

TEST(ApplyTaskFlagsTest, FlagsOverrideScalarsAndExtendLists) {
  json doc = json::parse(R"({
    "taskQueueId": "a/b", "priority": "low", "routes": ["r1"],
    "deadline": "+2 hours",
    "payload": {"command": ["old"], "env": {"KEEP": "1"}},
    "metadata": {"name": "n", "description": "d", "owner": "o@x",
                 "source": "https://x"},
    "tags": {"a": "1"}
  })");
  TaskFlags flags;
  flags.priority = "high";
  flags.routes = {"r2"};
  flags.commands = {"make build", "make test"};
  flags.env = {"NEW=2"};
  flags.tags = {"b=2"};
  flags.description = "better";
  ASSERT_TRUE(ApplyTaskFlags(flags, Defaults(), &doc).ok());
  EXPECT_EQ(doc["taskQueueId"], "a/b");
  EXPECT_EQ(doc["priority"], "high");
  EXPECT_EQ(doc["routes"], json::parse(R"(["r1", "r2"])"));
  EXPECT_EQ(doc["deadline"], "+2 hours");
  EXPECT_EQ(doc["payload"]["command"],
            json::parse(R"([["make", "build"], ["make", "test"]])"));
  EXPECT_EQ(doc["payload"]["env"], json::parse(R"({"KEEP": "1", "NEW": "2"})"));
  EXPECT_EQ(doc["metadata"]["description"], "better");
  EXPECT_EQ(doc["metadata"]["owner"], "o@x");
  EXPECT_EQ(doc["tags"], json::parse(R"({"a": "1", "b": "2"})"));
}

TEST(ApplyTaskFlagsTest, PayloadFlagReplacesThenCommandMerges) {
  json doc = json::parse(R"({"payload": {"old": true}})");
  TaskFlags flags;
  flags.payload = R"({"image": "debian"})";
  flags.commands = {"true"};
  ASSERT_TRUE(ApplyTaskFlags(flags, Defaults(), &doc).ok());
  EXPECT_EQ(doc["payload"],
            json::parse(R"({"image": "debian", "command": ["true"]})"));
}

TEST(ApplyTaskFlagsTest, BadFlagValuesNameTheFlag) {
  struct Case {
    TaskFlags flags;
    json doc;
    std::string field;
    std::string value;
  };
  auto with = [](auto set) {
    TaskFlags f;
    set(f);
    return f;
  };
  const Case cases[] = {
      {with([](TaskFlags& f) { f.payload = "{"; }), json::object(), "--payload",
       "{"},
      {with([](TaskFlags& f) { f.payload = "[1]"; }), json::object(),
       "--payload", "[1]"},
      {with([](TaskFlags& f) { f.extra = "3"; }), json::object(), "--extra",
       "3"},
      {with([](TaskFlags& f) { f.env = {"NOVALUE"}; }), json::object(), "--env",
       "NOVALUE"},
      {with([](TaskFlags& f) { f.env = {"=x"}; }), json::object(), "--env",
       "=x"},
      {with([](TaskFlags& f) { f.tags = {"k"}; }), json::object(), "--tag",
       "k"},
      {with([](TaskFlags& f) { f.commands = {"echo 'x"}; }), json::object(),
       "--command", "echo 'x"},
      {with([](TaskFlags& f) { f.max_run_time = "soon"; }), json::object(),
       "--max-run-time", "soon"},
      {with([](TaskFlags& f) { f.max_run_time = "-5m"; }), json::object(),
       "--max-run-time", "-5m"},
      {with([](TaskFlags& f) { f.commands = {"x"}; }),
       json::parse(R"({"payload": [1]})"), "payload", "[1]"},
      {with([](TaskFlags& f) { f.name = "n"; }),
       json::parse(R"({"metadata": "m"})"), "metadata", "\"m\""},
      {TaskFlags{}, json::array(), "task", "[]"},
  };
  for (const auto& c : cases) {
    json doc = c.doc;
    absl::Status status = ApplyTaskFlags(c.flags, Defaults(), &doc);
    ASSERT_FALSE(status.ok()) << c.field << " " << c.value;
    ErrorInfo info = GetErrorInfo(status);
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], c.field) << info.message;
    EXPECT_EQ(info.details["value"], c.value) << info.message;
  }
}

TEST(ApplyTaskFlagsTest, WronglyTypedFileValuesReachTheConverter) {
  json doc = json::parse(R"({"routes": "r", "metadata": {"name": 5}})");
  TaskFlags flags;
  flags.routes = {"x"};
  ASSERT_TRUE(ApplyTaskFlags(flags, Defaults(), &doc).ok());
  auto task = client::TaskDefinitionFromJson(doc, absl::Now());
  ASSERT_FALSE(task.ok());
  EXPECT_EQ(GetErrorInfo(task.status()).details["field"], "routes");
}

TEST(DefaultTaskDefaultsTest, FallsBackWhenUnknown) {
  TaskDefaults d = DefaultTaskDefaults("", "");
  EXPECT_EQ(d.owner, "drover@localhost");
  EXPECT_EQ(d.source, "http://localhost/drover-cli");
  EXPECT_EQ(d.deadline, "+1 day");
}

}  // namespace
}  // namespace drover::cli
