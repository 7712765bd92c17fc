// ParseGraphFile: labels become ids, dependencies by label or by id,
// defaults, and errors that name the JSON path.
#include <string>

#include "cli/commands/graph.h"
#include "cli/task_flags.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::cli::commands {
namespace {

using nlohmann::json;

class ParseGraphFileTest : public ::testing::Test {
 protected:
  absl::StatusOr<ParsedGraph> Parse(const json& doc) {
    return ParseGraphFile(
        doc,
        [](json* task) {
          return ApplyTaskFlags(TaskFlags{},
                                DefaultTaskDefaults("alice", "build-1"), task);
        },
        absl::FromUnixSeconds(1893456000),
        [this] { return "id-" + std::to_string(next_++); });
  }
  int next_ = 0;
};

TEST_F(ParseGraphFileTest, LabelsBecomeIdsAndDependenciesFollow) {
  auto graph = Parse(json::parse(R"({
    "defaults": {"taskQueueId": "proj/linux", "payload": {"command": ["make"]}},
    "tasks": [
      {"label": "build"},
      {"label": "test", "dependencies": ["build", "existing-task-id"],
       "requires": "all-resolved", "taskQueueId": "proj/mac"}
    ]})"));
  ASSERT_TRUE(graph.ok()) << graph.status();
  // The group id is drawn first, then one id per label in file order.
  EXPECT_EQ(graph->task_group_id, "id-0");
  ASSERT_EQ(graph->labels.size(), 2u);
  EXPECT_EQ(graph->labels[0], (std::pair<std::string, std::string>{"build",
                                                                   "id-1"}));
  ASSERT_EQ(graph->tasks.size(), 2u);
  const v1::TaskDefinition& test = graph->tasks[1].task();
  EXPECT_EQ(graph->tasks[1].task_id(), "id-2");
  EXPECT_EQ(test.task_queue_id(), "proj/mac");
  EXPECT_EQ(graph->tasks[0].task().task_queue_id(), "proj/linux");
  ASSERT_EQ(test.dependencies_size(), 2);
  EXPECT_EQ(test.dependencies(0), "id-1");
  EXPECT_EQ(test.dependencies(1), "existing-task-id");
  EXPECT_EQ(test.requirement(), "all-resolved");
  EXPECT_EQ(test.task_group_id(), "id-0");
  EXPECT_EQ(test.metadata().name(), "test");
  EXPECT_EQ(test.metadata().owner(), "alice@build-1");
}

TEST_F(ParseGraphFileTest, ErrorsNameTheJsonPath) {
  auto missing_label = Parse(json::parse(
      R"({"tasks": [{"label": "a", "taskQueueId": "p/q"}, {"taskQueueId": "p/q"}]})"));
  ASSERT_FALSE(missing_label.ok());
  EXPECT_EQ(GetErrorInfo(missing_label.status()).details["field"],
            "tasks[1].label");
  auto repeated = Parse(json::parse(
      R"({"tasks": [{"label": "a", "taskQueueId": "p/q"},
                    {"label": "a", "taskQueueId": "p/q"}]})"));
  ASSERT_FALSE(repeated.ok());
  EXPECT_EQ(GetErrorInfo(repeated.status()).details["value"], "a");
  auto bad_field = Parse(json::parse(
      R"({"tasks": [{"label": "a", "taskQueueId": "p/q", "retries": "x"}]})"));
  ASSERT_FALSE(bad_field.ok());
  EXPECT_EQ(GetErrorInfo(bad_field.status()).details["field"],
            "tasks[0].retries");
  EXPECT_FALSE(Parse(json::parse(R"({"tasks": []})")).ok());
  EXPECT_FALSE(Parse(json::parse(R"({"tasks": [], "other": 1})")).ok());
}

}  // namespace
}  // namespace drover::cli::commands
