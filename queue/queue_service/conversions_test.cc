// Round trips between store types and API messages.
#include "queue/queue_service/conversions.h"

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::queue::queue_service {
namespace {

TEST(ConversionsTest, TimestampRoundTripKeepsNanos) {
  absl::Time t = absl::FromUnixSeconds(1700000000) + absl::Nanoseconds(42);
  auto ts = ToProtoTime(t);
  EXPECT_EQ(ts.seconds(), 1700000000);
  EXPECT_EQ(ts.nanos(), 42);
  auto back = FromProtoTime(ts, "t");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, t);
}

TEST(ConversionsTest, TimestampBeforeEpochHasPositiveNanos) {
  absl::Time t = absl::UnixEpoch() - absl::Milliseconds(1500);
  auto ts = ToProtoTime(t);
  EXPECT_EQ(ts.seconds(), -2);
  EXPECT_EQ(ts.nanos(), 500000000);
  EXPECT_EQ(*FromProtoTime(ts, "t"), t);
}

TEST(ConversionsTest, RejectsOutOfRangeTimestamps) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(-62135596801);
  absl::Status status = FromProtoTime(ts, "task.created").status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError));
  EXPECT_EQ(GetErrorInfo(status).details["field"], "task.created");
}

TEST(ConversionsTest, TaskStatusWithRuns) {
  store::TaskStatus status;
  status.task_id = "abc";
  status.task_queue_id = "p/w";
  status.scheduler_id = "-";
  status.task_group_id = "abc";
  status.state = "running";
  status.retries_left = 4;
  status.deadline = absl::FromUnixSeconds(2000);
  status.expires = absl::FromUnixSeconds(3000);
  store::Run first;
  first.run_id = 0;
  first.state = store::RunState::kException;
  first.reason_created = "scheduled";
  first.reason_resolved = "claim-expired";
  first.scheduled = absl::FromUnixSeconds(1000);
  first.resolved = absl::FromUnixSeconds(1100);
  store::Run second;
  second.run_id = 1;
  second.state = store::RunState::kRunning;
  second.reason_created = "retry";
  second.worker_group = "g";
  second.worker_id = "w";
  second.scheduled = absl::FromUnixSeconds(1100);
  second.started = absl::FromUnixSeconds(1200);
  second.taken_until = absl::FromUnixSeconds(1300);
  status.runs = {first, second};
  status.blocking_dependencies = {"dep"};

  v1::TaskStatus out = ToProto(status);
  EXPECT_EQ(out.state(), "running");
  EXPECT_EQ(out.retries_left(), 4);
  EXPECT_EQ(out.deadline().seconds(), 2000);
  ASSERT_EQ(out.runs_size(), 2);
  EXPECT_EQ(out.runs(0).state(), "exception");
  EXPECT_EQ(out.runs(0).reason_resolved(), "claim-expired");
  EXPECT_FALSE(out.runs(0).has_started());
  EXPECT_FALSE(out.runs(0).has_taken_until());
  EXPECT_EQ(out.runs(0).resolved().seconds(), 1100);
  EXPECT_EQ(out.runs(1).state(), "running");
  EXPECT_EQ(out.runs(1).worker_id(), "w");
  EXPECT_EQ(out.runs(1).taken_until().seconds(), 1300);
  EXPECT_FALSE(out.runs(1).has_resolved());
  EXPECT_EQ(out.blocking_dependencies(0), "dep");
}

TEST(ConversionsTest, ClaimedTaskCarriesDefinition) {
  store::ClaimedTask claimed;
  claimed.task.task_id = "tid";
  claimed.task.task_queue_id = "p/w";
  claimed.task.priority = store::Priority::kHigh;
  claimed.task.requires_rule = store::Requires::kAllResolved;
  claimed.task.payload = R"({"a":1})";
  claimed.task.tags = {{"k", "v"}};
  claimed.task.retries = 3;
  claimed.run_id = 2;
  claimed.taken_until = absl::FromUnixSeconds(5000);
  v1::ClaimedTask out = ToProto(claimed);
  EXPECT_EQ(out.task_id(), "tid");
  EXPECT_EQ(out.run_id(), 2);
  EXPECT_EQ(out.taken_until().seconds(), 5000);
  EXPECT_EQ(out.task().priority(), "high");
  EXPECT_EQ(out.task().requirement(), "all-resolved");
  EXPECT_EQ(out.task().payload(), R"({"a":1})");
  EXPECT_EQ(out.task().tags().at("k"), "v");
  EXPECT_EQ(out.task().retries(), 3);
  EXPECT_TRUE(out.task().has_retries());
}

}  // namespace
}  // namespace drover::queue::queue_service
