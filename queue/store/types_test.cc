#include "queue/store/types.h"

#include "gtest/gtest.h"

namespace drover::queue::store {
namespace {

TEST(TypesTest, PrioritiesRoundTripInOrder) {
  const char* names[] = {"lowest", "very-low",  "low",    "medium",
                         "high",   "very-high", "highest"};
  for (int i = 0; i < 7; ++i) {
    auto p = ParsePriority(names[i]);
    ASSERT_TRUE(p.has_value()) << names[i];
    EXPECT_EQ(static_cast<int>(*p), i);
    EXPECT_EQ(PriorityName(*p), names[i]);
  }
  EXPECT_FALSE(ParsePriority("urgent").has_value());
  EXPECT_FALSE(ParsePriority("").has_value());
}

TEST(TypesTest, RequiresAndRunStatesRoundTrip) {
  for (auto r : {Requires::kAllCompleted, Requires::kAllResolved}) {
    EXPECT_EQ(ParseRequires(RequiresName(r)), r);
  }
  EXPECT_EQ(RequiresName(Requires::kAllResolved), "all-resolved");
  EXPECT_FALSE(ParseRequires("any").has_value());
  for (auto s : {RunState::kPending, RunState::kRunning, RunState::kCompleted,
                 RunState::kFailed, RunState::kException}) {
    EXPECT_EQ(ParseRunState(RunStateName(s)), s);
  }
  EXPECT_FALSE(ParseRunState("unscheduled").has_value());
}

TEST(TypesTest, ExceptionReasons) {
  for (const char* r :
       {"worker-shutdown", "malformed-payload", "resource-unavailable",
        "internal-error", "intermittent-task"}) {
    EXPECT_TRUE(IsWorkerExceptionReason(r)) << r;
  }
  for (const char* r :
       {"claim-expired", "canceled", "deadline-exceeded", "completed", ""}) {
    EXPECT_FALSE(IsWorkerExceptionReason(r)) << r;
  }
  EXPECT_TRUE(IsRetryableExceptionReason("claim-expired"));
  EXPECT_TRUE(IsRetryableExceptionReason("worker-shutdown"));
  EXPECT_TRUE(IsRetryableExceptionReason("intermittent-task"));
  EXPECT_FALSE(IsRetryableExceptionReason("malformed-payload"));
  EXPECT_FALSE(IsRetryableExceptionReason("canceled"));
}

}  // namespace
}  // namespace drover::queue::store
