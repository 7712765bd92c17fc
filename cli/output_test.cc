#include "cli/output.h"

#include <string>

#include "client/time_spec.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace drover::cli {
namespace {

google::protobuf::Timestamp Ts(int64_t seconds) {
  return client::ToProtoTimestamp(absl::FromUnixSeconds(seconds));
}

TEST(TableTest, AlignsColumnsWithoutTrailingBlanks) {
  Table table({"QUEUE", "PENDING", "CLAIMED"});
  table.AddRow({"proj/linux-large", "12", "3"});
  table.AddRow({"a/b", "0", ""});
  EXPECT_EQ(table.Render(),
            "QUEUE             PENDING  CLAIMED\n"
            "proj/linux-large  12       3\n"
            "a/b               0\n");
}

TEST(FormatErrorTest, PrintsCodeMessageAndSortedDetails) {
  absl::Status status = MakeError(
      ErrorCode::kInputError, "task.deadline must be after task.created",
      {{"value", "2020-01-01T00:00:00Z"}, {"field", "task.deadline"}});
  EXPECT_EQ(FormatError(status),
            "error: InputError: task.deadline must be after task.created\n"
            "  field: task.deadline\n"
            "  value: 2020-01-01T00:00:00Z\n");
}

TEST(FormatErrorTest, NotFoundAndConflictUseDroverCodes) {
  EXPECT_EQ(FormatError(NotFoundError("task", "abc")),
            "error: ResourceNotFound: task abc not found\n"
            "  id: abc\n"
            "  kind: task\n");
  EXPECT_EQ(ErrorCodeLabel(ConflictError("run 0 is resolved")),
            "RequestConflict");
}

TEST(FormatErrorTest, TransportErrorsUseTheGrpcCodeAndContext) {
  absl::Status down = absl::UnavailableError("failed to connect");
  EXPECT_EQ(FormatError(down, {{"url", "127.0.0.1:1"}}),
            "error: Unavailable: failed to connect\n"
            "  url: 127.0.0.1:1\n");
  EXPECT_EQ(ErrorCodeLabel(absl::DeadlineExceededError("late")),
            "DeadlineExceeded");
  EXPECT_EQ(ErrorCodeLabel(absl::UnimplementedError("no such method")),
            "Unimplemented");
  EXPECT_EQ(FormatError(absl::InternalError("")),
            "error: Internal: (no message)\n");
}

TEST(FormatErrorTest, ContextDoesNotRepeatAnErrorsOwnDetail) {
  absl::Status status = InputError("url", "x", "bad url");
  EXPECT_EQ(FormatError(status, {{"url", "y"}, {"field", "z"}}),
            "error: InputError: bad url\n"
            "  field: url\n"
            "  value: x\n"
            "  url: y\n");
}

TEST(MessageToJsonTest, UsesTheProtobufJsonMappingWithDefaults) {
  v1::TaskQueueCounts counts;
  counts.set_task_queue_id("proj/linux");
  counts.set_pending(3);
  std::string text = MessageToJson(counts);
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  auto doc = nlohmann::json::parse(text);
  EXPECT_EQ(doc["taskQueueId"], "proj/linux");
  // int64 travels as a string in the protobuf JSON mapping; zero is printed.
  EXPECT_EQ(doc["pending"], "3");
  EXPECT_EQ(doc["claimed"], "0");
}

v1::TaskStatus SampleStatus() {
  v1::TaskStatus s;
  s.set_task_id("fT3xP0vzQ5qYt0m1J7W4Kg");
  s.set_task_queue_id("proj/linux");
  s.set_scheduler_id("-");
  s.set_task_group_id("fT3xP0vzQ5qYt0m1J7W4Kg");
  s.set_state("running");
  s.set_retries_left(4);
  *s.mutable_deadline() = Ts(1740834000);  // 2025-03-01T13:00:00Z
  *s.mutable_expires() = Ts(1772370000);   // 2026-03-01T13:00:00Z
  v1::RunStatus* r0 = s.add_runs();
  r0->set_run_id(0);
  r0->set_state("exception");
  r0->set_reason_created("scheduled");
  r0->set_reason_resolved("claim-expired");
  r0->set_worker_group("g");
  r0->set_worker_id("w1");
  *r0->mutable_scheduled() = Ts(1740830400);
  *r0->mutable_started() = Ts(1740830401);
  *r0->mutable_resolved() = Ts(1740831600);
  v1::RunStatus* r1 = s.add_runs();
  r1->set_run_id(1);
  r1->set_state("pending");
  r1->set_reason_created("retry");
  *r1->mutable_scheduled() = Ts(1740831600);
  return s;
}

TEST(FormatTaskStatusTest, PrintsFieldsAndRuns) {
  EXPECT_EQ(FormatTaskStatus(SampleStatus()),
            "task       fT3xP0vzQ5qYt0m1J7W4Kg\n"
            "state      running\n"
            "queue      proj/linux\n"
            "group      fT3xP0vzQ5qYt0m1J7W4Kg\n"
            "scheduler  -\n"
            "retries    4 left\n"
            "deadline   2025-03-01T13:00:00Z\n"
            "expires    2026-03-01T13:00:00Z\n"
            "\n"
            "RUN  STATE      REASON-CREATED  REASON-RESOLVED  WORKER  SCHEDULED"
            "             STARTED               RESOLVED\n"
            "0    exception  scheduled       claim-expired    g/w1    "
            "2025-03-01T12:00:00Z  2025-03-01T12:00:01Z  2025-03-01T12:20:00Z\n"
            "1    pending    retry           -                -       "
            "2025-03-01T12:20:00Z  -                     -\n");
}

TEST(FormatTaskStatusTest, ShowsBlockingDependenciesAndNoRuns) {
  v1::TaskStatus s;
  s.set_task_id("t");
  s.set_state("unscheduled");
  s.add_blocking_dependencies("a");
  s.add_blocking_dependencies("b");
  std::string text = FormatTaskStatus(s);
  EXPECT_NE(text.find("blocked by  a, b\n"), std::string::npos) << text;
  EXPECT_NE(text.find("deadline    -\n"), std::string::npos) << text;
  EXPECT_EQ(text.substr(text.size() - 9), "\nno runs\n");
}

TEST(FormatTaskStatusLineTest, SummarisesTheLatestRun) {
  v1::TaskStatus s = SampleStatus();
  EXPECT_EQ(FormatTaskStatusLine(s),
            "fT3xP0vzQ5qYt0m1J7W4Kg  running  run 1: retry\n");
  s.mutable_runs(1)->set_reason_resolved("canceled");
  s.set_state("exception");
  EXPECT_EQ(FormatTaskStatusLine(s),
            "fT3xP0vzQ5qYt0m1J7W4Kg  exception  run 1: retry -> canceled\n");
  v1::TaskStatus none;
  none.set_task_id("x");
  EXPECT_EQ(FormatTaskStatusLine(none), "x  -\n");
}

TEST(FormatQueuesTest, CountsAndList) {
  v1::TaskQueueCounts counts;
  counts.set_task_queue_id("proj/linux");
  counts.set_pending(7);
  counts.set_claimed(2);
  EXPECT_EQ(FormatQueueCounts(counts),
            "QUEUE       PENDING  CLAIMED\n"
            "proj/linux  7        2\n");

  std::vector<v1::TaskQueueInfo> queues(2);
  queues[0].set_task_queue_id("a/b");
  queues[0].set_pending(1);
  *queues[0].mutable_last_date_active() = Ts(1740830400);
  queues[1].set_task_queue_id("proj/mac");
  queues[1].set_claimed(10);
  EXPECT_EQ(FormatTaskQueues(queues),
            "QUEUE     PENDING  CLAIMED  LAST-ACTIVE\n"
            "a/b       1        0        2025-03-01T12:00:00Z\n"
            "proj/mac  0        10       -\n");
  EXPECT_EQ(FormatTaskQueues({}), "no task queues\n");
}

}  // namespace
}  // namespace drover::cli
