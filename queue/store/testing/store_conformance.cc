#include "queue/store/testing/store_conformance.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/slugid.h"
#include "common/status.h"
#include "queue/store/testing/status_assertions.h"

namespace drover::queue::store::testing {
namespace {

constexpr absl::Duration kClaimTimeout = absl::Minutes(20);
constexpr char kGroup[] = "test-group";

std::vector<std::string> Ids(const std::vector<ClaimedTask>& claimed) {
  std::vector<std::string> ids;
  for (const auto& c : claimed) ids.push_back(c.task.task_id);
  return ids;
}

}  // namespace

std::string StoreFactoryName(
    const ::testing::TestParamInfo<StoreFactory>& info) {
  return info.param.name;
}

void PrintTo(const StoreFactory& factory, std::ostream* os) {
  *os << factory.name;
}

void StoreConformanceTest::SetUp() {
  auto made = GetParam().make(&clock_);
  if (!made.ok()) {
    if (made.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << GetParam().name
                   << " store unavailable: " << made.status().message();
    }
    FAIL() << "cannot make the " << GetParam().name
           << " store: " << made.status();
  }
  harness_ = std::move(made).value();
}

Task StoreConformanceTest::NewTask(const std::string& queue) {
  Task t;
  t.task_id = NewSlugId();
  t.task_queue_id = queue;
  t.scheduler_id = "test-scheduler";
  t.task_group_id = t.task_id;
  t.requires_rule = Requires::kAllCompleted;
  t.routes = {"index.project.a", "notify.b"};
  t.priority = Priority::kLowest;
  t.retries = 5;
  t.created = clock_.Now();
  t.deadline = t.created + absl::Hours(24);
  t.expires = t.created + absl::Hours(24 * 30);
  t.scopes = {"queue:create-task:test", "secrets:get:x"};
  t.payload = R"({"command":["true"],"env":{"A":"1"}})";
  t.metadata_name = "a test task";
  t.metadata_description = "it \"tests\" things, with commas, and {braces}";
  t.metadata_owner = "owner@example.com";
  t.metadata_source = "https://example.com/source";
  t.tags = {{"kind", "test"}, {"quote", "a\"b\\c"}};
  t.extra = R"({"x":[1,2.5,"y"]})";
  return t;
}

TEST_P(StoreConformanceTest, CreateThenGetReturnsTheDefinition) {
  Task task = NewTask();
  task.routes.push_back("with,comma \"and quotes\"");
  ASSERT_OK_AND_ASSIGN(TaskStatus created, store().CreateTask(task));
  EXPECT_EQ(created.task_id, task.task_id);
  EXPECT_EQ(created.state, "pending");
  EXPECT_EQ(created.retries_left, 5);
  ASSERT_EQ(created.runs.size(), 1u);
  EXPECT_EQ(created.runs[0].run_id, 0);
  EXPECT_EQ(created.runs[0].reason_created, "scheduled");
  EXPECT_EQ(created.runs[0].scheduled, clock_.Now());

  ASSERT_OK_AND_ASSIGN(Task stored, store().GetTask(task.task_id));
  EXPECT_EQ(stored, task);

  ASSERT_OK_AND_ASSIGN(TaskStatus status, store().GetTaskStatus(task.task_id));
  EXPECT_EQ(status.state, "pending");
  EXPECT_EQ(status.task_queue_id, task.task_queue_id);
  EXPECT_EQ(status.scheduler_id, task.scheduler_id);
  EXPECT_EQ(status.task_group_id, task.task_group_id);
  EXPECT_EQ(status.deadline, task.deadline);
  EXPECT_EQ(status.expires, task.expires);
  ASSERT_EQ(status.runs.size(), 1u);
  EXPECT_EQ(status.runs[0].state, RunState::kPending);
  EXPECT_EQ(status.runs[0].scheduled, created.runs[0].scheduled);
}

TEST_P(StoreConformanceTest, UnknownTaskIsNotFound) {
  std::string id = NewSlugId();
  EXPECT_EQ(CodeOf(store().GetTask(id)), ErrorCode::kResourceNotFound);
  EXPECT_EQ(CodeOf(store().GetTaskStatus(id)), ErrorCode::kResourceNotFound);
  EXPECT_EQ(CodeOf(store().CancelTask(id)), ErrorCode::kResourceNotFound);
  EXPECT_EQ(CodeOf(store().ScheduleTask(id)), ErrorCode::kResourceNotFound);
  EXPECT_EQ(CodeOf(store().RerunTask(id)), ErrorCode::kResourceNotFound);
  EXPECT_EQ(CodeOf(store().ResolveRun(id, 0, RunState::kCompleted, "")),
            ErrorCode::kResourceNotFound);
  EXPECT_EQ(CodeOf(store().ReclaimTask(id, 0, "g", "w", kClaimTimeout)),
            ErrorCode::kResourceNotFound);
}

TEST_P(StoreConformanceTest, CreateIsIdempotentAndConflictsOnDifference) {
  Task task = NewTask();
  ASSERT_OK_AND_ASSIGN(TaskStatus first, store().CreateTask(task));
  clock_.Advance(absl::Seconds(5));
  ASSERT_OK_AND_ASSIGN(TaskStatus again, store().CreateTask(task));
  EXPECT_EQ(again.state, "pending");
  ASSERT_EQ(again.runs.size(), 1u);
  EXPECT_EQ(again.runs[0].scheduled, first.runs[0].scheduled);

  // The same JSON documents written differently are the same definition.
  Task respelled = task;
  respelled.payload = R"({ "env": {"A": "1"}, "command": ["true"] })";
  ASSERT_OK(store().CreateTask(respelled));

  Task different = task;
  different.priority = Priority::kHigh;
  auto conflict = store().CreateTask(different);
  EXPECT_EQ(CodeOf(conflict), ErrorCode::kRequestConflict);
  EXPECT_EQ(GetErrorInfo(conflict.status()).details["field"], "task.priority");

  different = task;
  different.payload = R"({"command":["false"]})";
  conflict = store().CreateTask(different);
  EXPECT_EQ(CodeOf(conflict), ErrorCode::kRequestConflict);
  EXPECT_EQ(GetErrorInfo(conflict.status()).details["field"], "task.payload");

  ASSERT_OK_AND_ASSIGN(Task stored, store().GetTask(task.task_id));
  EXPECT_EQ(stored, task);
  ASSERT_OK_AND_ASSIGN(TaskQueueCounts counts,
                       store().GetTaskQueueCounts(task.task_queue_id));
  EXPECT_EQ(counts.pending, 1);
}

TEST_P(StoreConformanceTest, TaskGroupKeepsOneScheduler) {
  Task a = NewTask();
  a.task_group_id = kGroup;
  ASSERT_OK(store().CreateTask(a));
  Task b = NewTask();
  b.task_group_id = kGroup;
  b.scheduler_id = "another-scheduler";
  auto result = store().CreateTask(b);
  EXPECT_EQ(CodeOf(result), ErrorCode::kRequestConflict);
  EXPECT_EQ(GetErrorInfo(result.status()).details["field"],
            "task.scheduler_id");
  EXPECT_EQ(CodeOf(store().GetTask(b.task_id)), ErrorCode::kResourceNotFound);
  Task c = NewTask();
  c.task_group_id = kGroup;
  ASSERT_OK(store().CreateTask(c));
}

TEST_P(StoreConformanceTest, ClaimTakesPriorityThenAge) {
  const std::string queue = "prio-prov/prio-type";
  std::vector<std::pair<std::string, Priority>> order = {
      {"", Priority::kLow},     {"", Priority::kHighest},
      {"", Priority::kLow},     {"", Priority::kMedium},
      {"", Priority::kHighest}, {"", Priority::kLowest},
  };
  for (auto& [id, priority] : order) {
    Task t = NewTask(queue);
    t.priority = priority;
    id = t.task_id;
    ASSERT_OK(store().CreateTask(t));
    clock_.Advance(absl::Milliseconds(1));
  }
  std::vector<std::string> want = {order[1].first, order[4].first,
                                   order[3].first, order[0].first,
                                   order[2].first, order[5].first};
  // Another queue sees none of them.
  ASSERT_OK_AND_ASSIGN(
      auto other,
      store().ClaimWork("other-prov/other-type", "g", "w", 10, kClaimTimeout));
  EXPECT_TRUE(other.empty());

  std::vector<std::string> got;
  ASSERT_OK_AND_ASSIGN(auto first,
                       store().ClaimWork(queue, "g", "w1", 2, kClaimTimeout));
  ASSERT_EQ(first.size(), 2u);
  for (const auto& c : first) {
    got.push_back(c.task.task_id);
    EXPECT_EQ(c.run_id, 0);
    EXPECT_EQ(c.taken_until, clock_.Now() + kClaimTimeout);
  }
  for (;;) {
    ASSERT_OK_AND_ASSIGN(auto one,
                         store().ClaimWork(queue, "g", "w2", 1, kClaimTimeout));
    if (one.empty()) break;
    ASSERT_EQ(one.size(), 1u);
    got.push_back(one[0].task.task_id);
  }
  EXPECT_EQ(got, want);
}

TEST_P(StoreConformanceTest, ClaimReturnsDefinitionAndMarksRunning) {
  Task task = NewTask();
  ASSERT_OK(store().CreateTask(task));
  clock_.Advance(absl::Seconds(3));
  ASSERT_OK_AND_ASSIGN(
      auto claimed,
      store().ClaimWork(task.task_queue_id, "grp", "wkr", 5, kClaimTimeout));
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].task, task);
  ASSERT_OK_AND_ASSIGN(TaskStatus status, store().GetTaskStatus(task.task_id));
  EXPECT_EQ(status.state, "running");
  ASSERT_EQ(status.runs.size(), 1u);
  const store::Run& run = status.runs[0];
  EXPECT_EQ(run.worker_group, "grp");
  EXPECT_EQ(run.worker_id, "wkr");
  EXPECT_EQ(run.started, clock_.Now());
  EXPECT_EQ(run.taken_until, clock_.Now() + kClaimTimeout);
  ASSERT_OK_AND_ASSIGN(TaskQueueCounts counts,
                       store().GetTaskQueueCounts(task.task_queue_id));
  EXPECT_EQ(counts.pending, 0);
  EXPECT_EQ(counts.claimed, 1);
  EXPECT_EQ(counts.last_date_active, clock_.Now());
}

TEST_P(StoreConformanceTest, RacingClaimersTakeEachTaskExactlyOnce) {
  const std::string queue = "race-prov/race-type";
  constexpr int kTasks = 300;
  constexpr int kClaimers = 8;
  std::set<std::string> created;
  for (int i = 0; i < kTasks; ++i) {
    Task t = NewTask(queue);
    t.priority = static_cast<Priority>(i % 7);
    created.insert(t.task_id);
    ASSERT_OK(store().CreateTask(t));
  }
  std::mutex mu;
  std::vector<std::string> claimed;
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kClaimers; ++w) {
    threads.emplace_back([&, w] {
      for (int round = 0;; ++round) {
        int batch = 1 + (w + round) % 5;
        auto got = store().ClaimWork(queue, "race", absl::StrCat("w", w), batch,
                                     kClaimTimeout);
        if (!got.ok()) {
          errors++;
          return;
        }
        if (got->empty()) return;
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& c : *got) claimed.push_back(c.task.task_id);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  // Rows another claimer held were skipped, never claimed twice; whatever
  // is left (nothing, normally) goes to one last claim.
  ASSERT_OK_AND_ASSIGN(auto rest, store().ClaimWork(queue, "race", "last",
                                                    kTasks, kClaimTimeout));
  for (const auto& c : rest) claimed.push_back(c.task.task_id);
  std::set<std::string> unique(claimed.begin(), claimed.end());
  EXPECT_EQ(claimed.size(), unique.size()) << "a task was claimed twice";
  EXPECT_EQ(unique, created);
  ASSERT_OK_AND_ASSIGN(TaskQueueCounts counts,
                       store().GetTaskQueueCounts(queue));
  EXPECT_EQ(counts.pending, 0);
  EXPECT_EQ(counts.claimed, kTasks);
}

TEST_P(StoreConformanceTest, ReclaimExtendsTheClaim) {
  Task task = NewTask();
  ASSERT_OK(store().CreateTask(task));
  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimWork(task.task_queue_id, "g",
                                                       "w", 1, kClaimTimeout));
  ASSERT_EQ(claimed.size(), 1u);
  clock_.Advance(absl::Minutes(15));
  ASSERT_OK_AND_ASSIGN(
      ReclaimResult reclaimed,
      store().ReclaimTask(task.task_id, 0, "g", "w", kClaimTimeout));
  EXPECT_EQ(reclaimed.taken_until, clock_.Now() + kClaimTimeout);
  EXPECT_GT(reclaimed.taken_until, claimed[0].taken_until);
  EXPECT_EQ(reclaimed.status.state, "running");
  EXPECT_EQ(reclaimed.status.runs[0].taken_until, reclaimed.taken_until);

  // Past the original claim's end the run is still held: no expiry.
  clock_.Advance(absl::Minutes(10));
  ASSERT_OK_AND_ASSIGN(int expired, store().ExpireClaims(100));
  EXPECT_EQ(expired, 0);

  // Only the claiming worker may reclaim.
  EXPECT_EQ(CodeOf(store().ReclaimTask(task.task_id, 0, "g", "intruder",
                                       kClaimTimeout)),
            ErrorCode::kRequestConflict);
  // A run that does not exist.
  EXPECT_EQ(
      CodeOf(store().ReclaimTask(task.task_id, 7, "g", "w", kClaimTimeout)),
      ErrorCode::kResourceNotFound);
  // Once the claim has lapsed, reclaiming is too late.
  clock_.Advance(kClaimTimeout);
  EXPECT_EQ(
      CodeOf(store().ReclaimTask(task.task_id, 0, "g", "w", kClaimTimeout)),
      ErrorCode::kRequestConflict);
}

TEST_P(StoreConformanceTest, ReclaimAfterCancelConflicts) {
  Task task = NewTask();
  ASSERT_OK(store().CreateTask(task));
  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimWork(task.task_queue_id, "g",
                                                       "w", 1, kClaimTimeout));
  ASSERT_EQ(claimed.size(), 1u);
  ASSERT_OK_AND_ASSIGN(TaskStatus canceled, store().CancelTask(task.task_id));
  EXPECT_EQ(canceled.state, "exception");
  EXPECT_EQ(canceled.runs[0].reason_resolved, "canceled");
  auto reclaim = store().ReclaimTask(task.task_id, 0, "g", "w", kClaimTimeout);
  EXPECT_EQ(CodeOf(reclaim), ErrorCode::kRequestConflict);
  EXPECT_EQ(GetErrorInfo(reclaim.status()).details["state"], "exception");
  EXPECT_EQ(
      CodeOf(store().ResolveRun(task.task_id, 0, RunState::kCompleted, "")),
      ErrorCode::kRequestConflict);
  // Canceling again changes nothing.
  ASSERT_OK_AND_ASSIGN(TaskStatus again, store().CancelTask(task.task_id));
  EXPECT_EQ(again.runs.size(), 1u);
  EXPECT_EQ(again.state, "exception");
}

TEST_P(StoreConformanceTest, CancelPendingAndUnscheduledTasks) {
  Task pending = NewTask();
  ASSERT_OK(store().CreateTask(pending));
  ASSERT_OK_AND_ASSIGN(TaskStatus canceled,
                       store().CancelTask(pending.task_id));
  EXPECT_EQ(canceled.state, "exception");
  ASSERT_EQ(canceled.runs.size(), 1u);
  EXPECT_EQ(canceled.runs[0].reason_created, "scheduled");
  EXPECT_EQ(canceled.runs[0].reason_resolved, "canceled");
  EXPECT_EQ(canceled.runs[0].resolved, clock_.Now());
  ASSERT_OK_AND_ASSIGN(
      auto claimed,
      store().ClaimWork(pending.task_queue_id, "g", "w", 10, kClaimTimeout));
  EXPECT_TRUE(claimed.empty());

  Task parent = NewTask();
  ASSERT_OK(store().CreateTask(parent));
  Task child = NewTask();
  child.dependencies = {parent.task_id};
  ASSERT_OK(store().CreateTask(child));
  ASSERT_OK_AND_ASSIGN(TaskStatus child_canceled,
                       store().CancelTask(child.task_id));
  EXPECT_EQ(child_canceled.state, "exception");
  ASSERT_EQ(child_canceled.runs.size(), 1u);
  EXPECT_EQ(child_canceled.runs[0].reason_created, "exception");
  EXPECT_EQ(child_canceled.runs[0].reason_resolved, "canceled");
}

TEST_P(StoreConformanceTest, ReportCompletedFailedAndException) {
  struct Case {
    RunState state;
    std::string reason;
    std::string want_state;
  };
  for (const Case& c :
       {Case{RunState::kCompleted, "", "completed"},
        Case{RunState::kFailed, "", "failed"},
        Case{RunState::kException, "malformed-payload", "exception"}}) {
    SCOPED_TRACE(c.want_state);
    Task task = NewTask();
    ASSERT_OK(store().CreateTask(task));
    // Not claimed yet: nothing to report on.
    EXPECT_EQ(CodeOf(store().ResolveRun(task.task_id, 0, c.state, c.reason)),
              ErrorCode::kRequestConflict);
    ASSERT_OK_AND_ASSIGN(
        auto claimed,
        store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
    ASSERT_EQ(claimed.size(), 1u);
    clock_.Advance(absl::Seconds(7));
    ASSERT_OK_AND_ASSIGN(
        TaskStatus done,
        store().ResolveRun(task.task_id, 0, c.state, c.reason));
    EXPECT_EQ(done.state, c.want_state);
    ASSERT_EQ(done.runs.size(), 1u) << "no retry for a non-retryable result";
    EXPECT_EQ(done.runs[0].resolved, clock_.Now());
    EXPECT_EQ(done.runs[0].reason_resolved,
              c.reason.empty() ? c.want_state : c.reason);
    // The same report again is answered, not repeated.
    clock_.Advance(absl::Seconds(1));
    ASSERT_OK_AND_ASSIGN(
        TaskStatus repeat,
        store().ResolveRun(task.task_id, 0, c.state, c.reason));
    EXPECT_EQ(repeat.runs.size(), 1u);
    EXPECT_EQ(repeat.runs[0].resolved, done.runs[0].resolved);
    // A different report conflicts.
    RunState other = c.state == RunState::kCompleted ? RunState::kFailed
                                                     : RunState::kCompleted;
    EXPECT_EQ(CodeOf(store().ResolveRun(task.task_id, 0, other, "")),
              ErrorCode::kRequestConflict);
    EXPECT_EQ(CodeOf(store().ResolveRun(task.task_id, 1, c.state, c.reason)),
              ErrorCode::kResourceNotFound);
  }
}

TEST_P(StoreConformanceTest, ResolveRunRejectsBadInput) {
  Task task = NewTask();
  ASSERT_OK(store().CreateTask(task));
  ASSERT_OK(store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
  auto bad_reason =
      store().ResolveRun(task.task_id, 0, RunState::kException, "canceled");
  EXPECT_EQ(CodeOf(bad_reason), ErrorCode::kInputError);
  EXPECT_EQ(GetErrorInfo(bad_reason.status()).details["field"], "reason");
  EXPECT_EQ(CodeOf(store().ResolveRun(task.task_id, 0, RunState::kPending, "")),
            ErrorCode::kInputError);
  EXPECT_EQ(CodeOf(store().ResolveRun(task.task_id, 0, RunState::kCompleted,
                                      "failed")),
            ErrorCode::kInputError);
  EXPECT_EQ(
      CodeOf(store().ClaimWork(task.task_queue_id, "g", "w", 0, kClaimTimeout)),
      ErrorCode::kInputError);
  // Nothing changed.
  ASSERT_OK_AND_ASSIGN(TaskStatus status, store().GetTaskStatus(task.task_id));
  EXPECT_EQ(status.state, "running");
}

TEST_P(StoreConformanceTest, RetryableExceptionsAddARun) {
  Task task = NewTask();
  task.retries = 2;
  ASSERT_OK(store().CreateTask(task));
  ASSERT_OK(store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_OK_AND_ASSIGN(TaskStatus status,
                       store().ResolveRun(task.task_id, 0, RunState::kException,
                                          "worker-shutdown"));
  EXPECT_EQ(status.state, "pending");
  EXPECT_EQ(status.retries_left, 1);
  ASSERT_EQ(status.runs.size(), 2u);
  EXPECT_EQ(status.runs[0].reason_resolved, "worker-shutdown");
  EXPECT_EQ(status.runs[1].reason_created, "retry");
  EXPECT_EQ(status.runs[1].state, RunState::kPending);

  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimWork(task.task_queue_id, "g",
                                                       "w", 1, kClaimTimeout));
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].run_id, 1);
  ASSERT_OK_AND_ASSIGN(status,
                       store().ResolveRun(task.task_id, 1, RunState::kException,
                                          "intermittent-task"));
  ASSERT_EQ(status.runs.size(), 3u);
  EXPECT_EQ(status.runs[2].reason_created, "task-retry");
  EXPECT_EQ(status.retries_left, 0);

  ASSERT_OK(store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_OK_AND_ASSIGN(status,
                       store().ResolveRun(task.task_id, 2, RunState::kException,
                                          "worker-shutdown"));
  EXPECT_EQ(status.state, "exception") << "retries exhausted";
  EXPECT_EQ(status.runs.size(), 3u);
}

TEST_P(StoreConformanceTest, ExpiredClaimBecomesARetry) {
  Task task = NewTask();
  ASSERT_OK(store().CreateTask(task));
  ASSERT_OK(store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
  clock_.Advance(kClaimTimeout - absl::Seconds(1));
  ASSERT_OK_AND_ASSIGN(int expired, store().ExpireClaims(100));
  EXPECT_EQ(expired, 0);
  clock_.Advance(absl::Seconds(2));
  ASSERT_OK_AND_ASSIGN(expired, store().ExpireClaims(100));
  EXPECT_EQ(expired, 1);
  ASSERT_OK_AND_ASSIGN(expired, store().ExpireClaims(100));
  EXPECT_EQ(expired, 0);

  ASSERT_OK_AND_ASSIGN(TaskStatus status, store().GetTaskStatus(task.task_id));
  ASSERT_EQ(status.runs.size(), 2u);
  EXPECT_EQ(status.runs[0].state, RunState::kException);
  EXPECT_EQ(status.runs[0].reason_resolved, "claim-expired");
  EXPECT_EQ(status.runs[1].state, RunState::kPending);
  EXPECT_EQ(status.runs[1].reason_created, "retry");
  EXPECT_EQ(status.retries_left, 4);
  // The late worker's report conflicts; the retry is claimable.
  EXPECT_EQ(
      CodeOf(store().ResolveRun(task.task_id, 0, RunState::kCompleted, "")),
      ErrorCode::kRequestConflict);
  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimWork(task.task_queue_id, "g",
                                                       "w2", 1, kClaimTimeout));
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].run_id, 1);
}

TEST_P(StoreConformanceTest, ExhaustedRetriesStayException) {
  Task task = NewTask("expiry-prov/expiry-only");
  task.retries = 1;
  ASSERT_OK(store().CreateTask(task));
  Task strict = NewTask();
  strict.dependencies = {task.task_id};
  Task lenient = NewTask();
  lenient.dependencies = {task.task_id};
  lenient.requires_rule = Requires::kAllResolved;
  ASSERT_OK(store().CreateTask(strict));
  ASSERT_OK(store().CreateTask(lenient));
  for (int run = 0; run < 2; ++run) {
    ASSERT_OK_AND_ASSIGN(
        auto claimed,
        store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
    ASSERT_EQ(claimed.size(), 1u);
    EXPECT_EQ(claimed[0].run_id, run);
    clock_.Advance(kClaimTimeout + absl::Seconds(1));
    ASSERT_OK_AND_ASSIGN(int expired, store().ExpireClaims(10));
    EXPECT_EQ(expired, 1);
  }
  ASSERT_OK_AND_ASSIGN(TaskStatus status, store().GetTaskStatus(task.task_id));
  EXPECT_EQ(status.state, "exception");
  EXPECT_EQ(status.retries_left, 0);
  ASSERT_EQ(status.runs.size(), 2u);
  EXPECT_EQ(status.runs[1].reason_resolved, "claim-expired");
  ASSERT_OK_AND_ASSIGN(auto none, store().ClaimWork(task.task_queue_id, "g",
                                                    "w", 1, kClaimTimeout));
  EXPECT_TRUE(none.empty());
  // Resolved for good by the expiry resolver: dependents move as they
  // would after a report.
  ASSERT_OK_AND_ASSIGN(TaskStatus s, store().GetTaskStatus(strict.task_id));
  EXPECT_EQ(s.state, "unscheduled");
  ASSERT_OK_AND_ASSIGN(TaskStatus l, store().GetTaskStatus(lenient.task_id));
  EXPECT_EQ(l.state, "pending");
}

TEST_P(StoreConformanceTest, DeadlineResolvesUnresolvedTasks) {
  Task parent = NewTask();
  parent.deadline = clock_.Now() + absl::Hours(1);
  Task pending = NewTask();
  pending.deadline = clock_.Now() + absl::Hours(1);
  Task unscheduled = NewTask();
  unscheduled.deadline = clock_.Now() + absl::Hours(1);
  unscheduled.dependencies = {parent.task_id};
  Task later = NewTask();  // Deadline in a day.
  ASSERT_OK(store().CreateTask(parent));
  ASSERT_OK(store().CreateTask(pending));
  ASSERT_OK(store().CreateTask(unscheduled));
  ASSERT_OK(store().CreateTask(later));
  ASSERT_OK_AND_ASSIGN(
      auto claimed,
      store().ClaimWork(parent.task_queue_id, "g", "w", 1, absl::Hours(3)));
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].task.task_id, parent.task_id);

  clock_.Advance(absl::Minutes(59));
  ASSERT_OK_AND_ASSIGN(int resolved, store().ResolveDeadlines(100));
  EXPECT_EQ(resolved, 0);
  clock_.Advance(absl::Minutes(1));
  ASSERT_OK_AND_ASSIGN(resolved, store().ResolveDeadlines(2));
  EXPECT_EQ(resolved, 2);
  ASSERT_OK_AND_ASSIGN(resolved, store().ResolveDeadlines(100));
  EXPECT_EQ(resolved, 1);
  ASSERT_OK_AND_ASSIGN(resolved, store().ResolveDeadlines(100));
  EXPECT_EQ(resolved, 0);

  for (const Task* t : {&parent, &pending, &unscheduled}) {
    ASSERT_OK_AND_ASSIGN(TaskStatus status, store().GetTaskStatus(t->task_id));
    EXPECT_EQ(status.state, "exception") << t->task_id;
    ASSERT_EQ(status.runs.size(), 1u);
    EXPECT_EQ(status.runs[0].reason_resolved, "deadline-exceeded");
  }
  ASSERT_OK_AND_ASSIGN(TaskStatus never_ran,
                       store().GetTaskStatus(unscheduled.task_id));
  EXPECT_EQ(never_ran.runs[0].reason_created, "exception");
  ASSERT_OK_AND_ASSIGN(TaskStatus other, store().GetTaskStatus(later.task_id));
  EXPECT_EQ(other.state, "pending");
  // The worker's late report conflicts; the task is not claimable.
  EXPECT_EQ(
      CodeOf(store().ResolveRun(parent.task_id, 0, RunState::kCompleted, "")),
      ErrorCode::kRequestConflict);
  ASSERT_OK_AND_ASSIGN(auto rest, store().ClaimWork(parent.task_queue_id, "g",
                                                    "w", 10, kClaimTimeout));
  EXPECT_EQ(Ids(rest), std::vector<std::string>{later.task_id});
}

TEST_P(StoreConformanceTest, RerunAddsARunToAResolvedTask) {
  Task task = NewTask();
  ASSERT_OK(store().CreateTask(task));
  EXPECT_EQ(CodeOf(store().RerunTask(task.task_id)),
            ErrorCode::kRequestConflict)
      << "pending tasks are not rerun";
  ASSERT_OK(store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_OK(store().ResolveRun(task.task_id, 0, RunState::kCompleted, ""));
  ASSERT_OK_AND_ASSIGN(TaskStatus rerun, store().RerunTask(task.task_id));
  EXPECT_EQ(rerun.state, "pending");
  ASSERT_EQ(rerun.runs.size(), 2u);
  EXPECT_EQ(rerun.runs[1].reason_created, "rerun");
  EXPECT_EQ(CodeOf(store().RerunTask(task.task_id)),
            ErrorCode::kRequestConflict);
  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimWork(task.task_queue_id, "g",
                                                       "w", 1, kClaimTimeout));
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_EQ(claimed[0].run_id, 1);
  ASSERT_OK(store().ResolveRun(task.task_id, 1, RunState::kFailed, ""));
  clock_.Advance(absl::Hours(25));
  EXPECT_EQ(CodeOf(store().RerunTask(task.task_id)),
            ErrorCode::kRequestConflict)
      << "past the deadline";
}

TEST_P(StoreConformanceTest, ScheduleForcesAnUnscheduledTaskPending) {
  Task parent = NewTask();
  ASSERT_OK(store().CreateTask(parent));
  Task child = NewTask();
  child.dependencies = {parent.task_id};
  ASSERT_OK_AND_ASSIGN(TaskStatus created, store().CreateTask(child));
  EXPECT_EQ(created.state, "unscheduled");
  EXPECT_EQ(created.blocking_dependencies,
            std::vector<std::string>{parent.task_id});
  ASSERT_OK_AND_ASSIGN(TaskStatus status, store().GetTaskStatus(child.task_id));
  EXPECT_EQ(status.blocking_dependencies,
            std::vector<std::string>{parent.task_id});

  ASSERT_OK_AND_ASSIGN(TaskStatus scheduled,
                       store().ScheduleTask(child.task_id));
  EXPECT_EQ(scheduled.state, "pending");
  ASSERT_EQ(scheduled.runs.size(), 1u);
  EXPECT_EQ(scheduled.runs[0].reason_created, "scheduled");
  ASSERT_OK_AND_ASSIGN(TaskStatus again, store().ScheduleTask(child.task_id));
  EXPECT_EQ(again.runs.size(), 1u);

  // The parent resolving later adds no second run.
  ASSERT_OK(
      store().ClaimWork(parent.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_OK(store().ResolveRun(parent.task_id, 0, RunState::kCompleted, ""));
  ASSERT_OK_AND_ASSIGN(status, store().GetTaskStatus(child.task_id));
  EXPECT_EQ(status.runs.size(), 1u);
  EXPECT_EQ(status.state, "pending");
}

TEST_P(StoreConformanceTest, DependencyChainRunsInOrder) {
  Task a = NewTask();
  Task b = NewTask();
  b.dependencies = {a.task_id};
  Task c = NewTask();
  c.dependencies = {b.task_id};
  ASSERT_OK(store().CreateTask(a));
  ASSERT_OK(store().CreateTask(b));
  ASSERT_OK(store().CreateTask(c));
  for (const Task* next : {&a, &b, &c}) {
    ASSERT_OK_AND_ASSIGN(
        auto claimed,
        store().ClaimWork(a.task_queue_id, "g", "w", 10, kClaimTimeout));
    ASSERT_EQ(Ids(claimed), std::vector<std::string>{next->task_id});
    if (next != &c) {
      ASSERT_OK_AND_ASSIGN(TaskStatus waiting,
                           store().GetTaskStatus(c.task_id));
      EXPECT_EQ(waiting.state, "unscheduled");
    }
    ASSERT_OK(store().ResolveRun(next->task_id, 0, RunState::kCompleted, ""));
  }
  ASSERT_OK_AND_ASSIGN(TaskStatus done, store().GetTaskStatus(c.task_id));
  EXPECT_EQ(done.state, "completed");
}

TEST_P(StoreConformanceTest, FanInWaitsForEveryDependency) {
  std::vector<Task> parents = {NewTask(), NewTask(), NewTask()};
  Task child = NewTask();
  for (auto& p : parents) {
    ASSERT_OK(store().CreateTask(p));
    child.dependencies.push_back(p.task_id);
  }
  child.dependencies.push_back(parents[0].task_id);  // Named twice: one edge.
  ASSERT_OK_AND_ASSIGN(TaskStatus created, store().CreateTask(child));
  EXPECT_EQ(created.blocking_dependencies.size(), 3u);
  ASSERT_OK(store().ClaimWork(child.task_queue_id, "g", "w", 3, kClaimTimeout));
  for (size_t i = 0; i < parents.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(TaskStatus status,
                         store().GetTaskStatus(child.task_id));
    EXPECT_EQ(status.state, "unscheduled");
    EXPECT_EQ(status.blocking_dependencies.size(), parents.size() - i);
    ASSERT_OK(
        store().ResolveRun(parents[i].task_id, 0, RunState::kCompleted, ""));
  }
  ASSERT_OK_AND_ASSIGN(TaskStatus ready, store().GetTaskStatus(child.task_id));
  EXPECT_EQ(ready.state, "pending");
  EXPECT_TRUE(ready.blocking_dependencies.empty());
}

TEST_P(StoreConformanceTest, ConcurrentParentResolutionsReleaseEachChildOnce) {
  constexpr int kParents = 40;
  constexpr int kThreads = 8;
  const std::string parent_queue = "fanin-prov/parents";
  std::vector<std::string> parents;
  for (int i = 0; i < kParents; ++i) {
    Task p = NewTask(parent_queue);
    parents.push_back(p.task_id);
    ASSERT_OK(store().CreateTask(p));
  }
  // Children share parents in different orders, so their counters are
  // decremented concurrently from many transactions.
  std::vector<Task> children;
  for (int c = 0; c < 6; ++c) {
    Task child = NewTask("fanin-prov/children");
    for (int i = 0; i < kParents; ++i) {
      child.dependencies.push_back(parents[(i * (c + 1)) % kParents]);
    }
    child.requires_rule =
        c % 2 ? Requires::kAllResolved : Requires::kAllCompleted;
    children.push_back(child);
    ASSERT_OK(store().CreateTask(child));
  }
  ASSERT_OK_AND_ASSIGN(
      auto claimed,
      store().ClaimWork(parent_queue, "g", "w", kParents, kClaimTimeout));
  ASSERT_EQ(claimed.size(), static_cast<size_t>(kParents));
  std::atomic<int> next{0};
  std::atomic<int> errors{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = next++; i < kParents; i = next++) {
        // Every fifth parent fails: all-completed children stay blocked.
        RunState state = i % 5 == 4 ? RunState::kFailed : RunState::kCompleted;
        if (!store().ResolveRun(parents[i], 0, state, "").ok()) errors++;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
  for (const Task& child : children) {
    // The failed parents among this child's (distinct) dependencies.
    std::set<std::string> failed;
    for (const auto& dep : child.dependencies) {
      int index = static_cast<int>(
          std::find(parents.begin(), parents.end(), dep) - parents.begin());
      if (index % 5 == 4) failed.insert(dep);
    }
    bool released =
        child.requires_rule == Requires::kAllResolved || failed.empty();
    ASSERT_OK_AND_ASSIGN(TaskStatus s, store().GetTaskStatus(child.task_id));
    if (released) {
      EXPECT_EQ(s.state, "pending");
      EXPECT_EQ(s.runs.size(), 1u);
    } else {
      EXPECT_EQ(s.state, "unscheduled");
      EXPECT_EQ(s.blocking_dependencies,
                std::vector<std::string>(failed.begin(), failed.end()));
    }
    if (auto events = harness().EventsOf(child.task_id)) {
      EXPECT_EQ(std::count(events->begin(), events->end(), "task-pending/0"),
                released ? 1 : 0);
    }
  }
}

TEST_P(StoreConformanceTest, AllResolvedVersusAllCompletedWithFailingParent) {
  // The parent has a queue of its own so claims find only it.
  Task parent = NewTask("parent-prov/parent-only");
  ASSERT_OK(store().CreateTask(parent));
  Task strict = NewTask();
  strict.dependencies = {parent.task_id};
  strict.requires_rule = Requires::kAllCompleted;
  Task lenient = NewTask();
  lenient.dependencies = {parent.task_id};
  lenient.requires_rule = Requires::kAllResolved;
  ASSERT_OK(store().CreateTask(strict));
  ASSERT_OK(store().CreateTask(lenient));

  ASSERT_OK(
      store().ClaimWork(parent.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_OK(store().ResolveRun(parent.task_id, 0, RunState::kFailed, ""));
  ASSERT_OK_AND_ASSIGN(TaskStatus s, store().GetTaskStatus(strict.task_id));
  EXPECT_EQ(s.state, "unscheduled");
  EXPECT_EQ(s.blocking_dependencies, std::vector<std::string>{parent.task_id});
  ASSERT_OK_AND_ASSIGN(TaskStatus l, store().GetTaskStatus(lenient.task_id));
  EXPECT_EQ(l.state, "pending");

  // Created after the failure: the same rules apply at creation.
  Task strict_late = NewTask();
  strict_late.dependencies = {parent.task_id};
  Task lenient_late = NewTask();
  lenient_late.dependencies = {parent.task_id};
  lenient_late.requires_rule = Requires::kAllResolved;
  ASSERT_OK_AND_ASSIGN(s, store().CreateTask(strict_late));
  EXPECT_EQ(s.state, "unscheduled");
  ASSERT_OK_AND_ASSIGN(l, store().CreateTask(lenient_late));
  EXPECT_EQ(l.state, "pending");

  // A rerun that completes satisfies the all-completed dependents.
  ASSERT_OK(store().RerunTask(parent.task_id));
  ASSERT_OK_AND_ASSIGN(
      auto claimed,
      store().ClaimWork(parent.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_EQ(Ids(claimed), std::vector<std::string>{parent.task_id});
  ASSERT_OK(store().ResolveRun(parent.task_id, 1, RunState::kCompleted, ""));
  ASSERT_OK_AND_ASSIGN(s, store().GetTaskStatus(strict.task_id));
  EXPECT_EQ(s.state, "pending");
  ASSERT_OK_AND_ASSIGN(s, store().GetTaskStatus(strict_late.task_id));
  EXPECT_EQ(s.state, "pending");
  ASSERT_OK_AND_ASSIGN(l, store().GetTaskStatus(lenient.task_id));
  EXPECT_EQ(l.runs.size(), 1u) << "already scheduled once";

  // A dependency completed before the dependent exists satisfies it.
  Task after_completion = NewTask();
  after_completion.dependencies = {parent.task_id};
  ASSERT_OK_AND_ASSIGN(s, store().CreateTask(after_completion));
  EXPECT_EQ(s.state, "pending");
}

TEST_P(StoreConformanceTest, CanceledParentReleasesOnlyAllResolvedDependents) {
  Task parent = NewTask();
  ASSERT_OK(store().CreateTask(parent));
  Task strict = NewTask();
  strict.dependencies = {parent.task_id};
  Task lenient = NewTask();
  lenient.dependencies = {parent.task_id};
  lenient.requires_rule = Requires::kAllResolved;
  ASSERT_OK(store().CreateTask(strict));
  ASSERT_OK(store().CreateTask(lenient));
  ASSERT_OK(store().CancelTask(parent.task_id));
  ASSERT_OK_AND_ASSIGN(TaskStatus s, store().GetTaskStatus(strict.task_id));
  EXPECT_EQ(s.state, "unscheduled");
  ASSERT_OK_AND_ASSIGN(TaskStatus l, store().GetTaskStatus(lenient.task_id));
  EXPECT_EQ(l.state, "pending");
}

TEST_P(StoreConformanceTest, UnknownDependenciesAreListedAndNothingIsWritten) {
  Task known = NewTask();
  ASSERT_OK(store().CreateTask(known));
  std::string missing_a = NewSlugId();
  std::string missing_b = NewSlugId();
  Task task = NewTask();
  task.dependencies = {known.task_id, missing_a, missing_b};
  auto result = store().CreateTask(task);
  ASSERT_EQ(CodeOf(result), ErrorCode::kInputError);
  ErrorInfo info = GetErrorInfo(result.status());
  EXPECT_EQ(info.details["field"], "task.dependencies");
  EXPECT_NE(info.details["value"].find(missing_a), std::string::npos);
  EXPECT_NE(info.details["value"].find(missing_b), std::string::npos);
  EXPECT_EQ(info.details["value"].find(known.task_id), std::string::npos);
  EXPECT_EQ(CodeOf(store().GetTask(task.task_id)),
            ErrorCode::kResourceNotFound);

  Task self = NewTask();
  self.dependencies = {self.task_id};
  EXPECT_EQ(CodeOf(store().CreateTask(self)), ErrorCode::kInputError);
  EXPECT_EQ(CodeOf(store().GetTask(self.task_id)),
            ErrorCode::kResourceNotFound);
}

TEST_P(StoreConformanceTest, CountsAndListTaskQueuesPage) {
  std::vector<std::string> queues = {"list-a/one", "list-b/two", "list-c/three",
                                     "list-d/four", "list-e/five"};
  for (size_t i = 0; i < queues.size(); ++i) {
    for (size_t n = 0; n <= i; ++n)
      ASSERT_OK(store().CreateTask(NewTask(queues[i])));
  }
  ASSERT_OK(store().ClaimWork(queues[3], "g", "w", 2, kClaimTimeout));
  ASSERT_OK_AND_ASSIGN(TaskQueueCounts d,
                       store().GetTaskQueueCounts(queues[3]));
  EXPECT_EQ(d.pending, 2);
  EXPECT_EQ(d.claimed, 2);
  ASSERT_OK_AND_ASSIGN(TaskQueueCounts unknown,
                       store().GetTaskQueueCounts("nobody/here"));
  EXPECT_EQ(unknown.pending, 0);
  EXPECT_EQ(unknown.claimed, 0);

  std::vector<TaskQueueCounts> all;
  std::string token;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(auto page, store().ListTaskQueues(token, 2));
    EXPECT_LE(page.items.size(), 2u);
    for (auto& item : page.items) all.push_back(item);
    token = page.continuation_token;
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  ASSERT_EQ(all.size(), queues.size());
  for (size_t i = 0; i < queues.size(); ++i) {
    EXPECT_EQ(all[i].task_queue_id, queues[i]);
    int64_t claimed = i == 3 ? 2 : 0;
    EXPECT_EQ(all[i].pending, static_cast<int64_t>(i + 1) - claimed);
    EXPECT_EQ(all[i].claimed, claimed);
  }
  EXPECT_FALSE(all[0].last_date_active.has_value());
  EXPECT_EQ(all[3].last_date_active, clock_.Now());
  EXPECT_EQ(CodeOf(store().ListTaskQueues("", 0)), ErrorCode::kInputError);
  EXPECT_EQ(CodeOf(store().ListTaskQueues("", 1001)), ErrorCode::kInputError);
}

TEST_P(StoreConformanceTest, ExpiredTasksAreDeletedInBatches) {
  std::vector<Task> doomed;
  for (int i = 0; i < 5; ++i) {
    Task t = NewTask();
    t.expires = t.deadline + absl::Hours(1);
    doomed.push_back(t);
    ASSERT_OK(store().CreateTask(t));
  }
  Task dependent = NewTask();
  dependent.dependencies = {doomed[0].task_id};
  ASSERT_OK(store().CreateTask(dependent));
  Task keeper = NewTask();
  ASSERT_OK(store().CreateTask(keeper));

  ASSERT_OK_AND_ASSIGN(int deleted, store().DeleteExpiredTasks(10));
  EXPECT_EQ(deleted, 0);
  clock_.Advance(absl::Hours(26));
  ASSERT_OK_AND_ASSIGN(deleted, store().DeleteExpiredTasks(3));
  EXPECT_EQ(deleted, 3);
  ASSERT_OK_AND_ASSIGN(deleted, store().DeleteExpiredTasks(3));
  EXPECT_EQ(deleted, 2);
  ASSERT_OK_AND_ASSIGN(deleted, store().DeleteExpiredTasks(3));
  EXPECT_EQ(deleted, 0);
  for (const auto& t : doomed) {
    EXPECT_EQ(CodeOf(store().GetTask(t.task_id)), ErrorCode::kResourceNotFound);
  }
  ASSERT_OK(store().GetTask(keeper.task_id));
  ASSERT_OK_AND_ASSIGN(Task still, store().GetTask(dependent.task_id));
  EXPECT_EQ(still.dependencies, dependent.dependencies);
  ASSERT_OK_AND_ASSIGN(TaskQueueCounts counts,
                       store().GetTaskQueueCounts(keeper.task_queue_id));
  EXPECT_EQ(counts.pending, 1) << "the expired tasks left the claim index";
}

TEST_P(StoreConformanceTest, RestartKeepsEverything) {
  Task running = NewTask();
  Task pending = NewTask();
  Task waiting = NewTask();
  waiting.dependencies = {running.task_id};
  ASSERT_OK(store().CreateTask(running));
  ASSERT_OK(
      store().ClaimWork(running.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_OK(store().CreateTask(pending));
  ASSERT_OK(store().CreateTask(waiting));
  std::vector<TaskStatus> before;
  for (const Task* t : {&running, &pending, &waiting}) {
    ASSERT_OK_AND_ASSIGN(TaskStatus s, store().GetTaskStatus(t->task_id));
    before.push_back(s);
  }

  ASSERT_OK(harness().Restart());

  for (size_t i = 0; i < before.size(); ++i) {
    ASSERT_OK_AND_ASSIGN(TaskStatus s,
                         store().GetTaskStatus(before[i].task_id));
    EXPECT_EQ(s.state, before[i].state);
    EXPECT_EQ(s.runs.size(), before[i].runs.size());
    EXPECT_EQ(s.blocking_dependencies, before[i].blocking_dependencies);
  }
  ASSERT_OK_AND_ASSIGN(Task task, store().GetTask(pending.task_id));
  EXPECT_EQ(task, pending);
  // Work continues where it stopped.
  ASSERT_OK(store().ReclaimTask(running.task_id, 0, "g", "w", kClaimTimeout));
  ASSERT_OK(store().ResolveRun(running.task_id, 0, RunState::kCompleted, ""));
  ASSERT_OK_AND_ASSIGN(
      auto claimed,
      store().ClaimWork(pending.task_queue_id, "g", "w", 10, kClaimTimeout));
  std::vector<std::string> ids = Ids(claimed);
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> want = {pending.task_id, waiting.task_id};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ids, want);
}

TEST_P(StoreConformanceTest, EventsAreWrittenOncePerTransition) {
  Task task = NewTask();
  if (!harness().EventsOf(task.task_id).has_value()) {
    GTEST_SKIP() << GetParam().name << " keeps no event log";
  }
  ASSERT_OK(store().CreateTask(task));
  ASSERT_OK(store().CreateTask(task));  // Idempotent: no new event.
  ASSERT_OK(store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_OK(store().ReclaimTask(task.task_id, 0, "g", "w", kClaimTimeout));
  ASSERT_OK(store().ResolveRun(task.task_id, 0, RunState::kException,
                               "worker-shutdown"));
  ASSERT_OK(store().ResolveRun(task.task_id, 0, RunState::kException,
                               "worker-shutdown"));  // Repeat: no event.
  ASSERT_OK(store().ClaimWork(task.task_queue_id, "g", "w", 1, kClaimTimeout));
  ASSERT_OK(store().ResolveRun(task.task_id, 1, RunState::kCompleted, ""));
  ASSERT_OK(store().ResolveRun(task.task_id, 1, RunState::kCompleted, ""));
  ASSERT_OK(store().CancelTask(task.task_id));  // Already resolved.
  ASSERT_OK(store().RerunTask(task.task_id));

  Task child = NewTask();
  child.dependencies = {task.task_id};
  clock_.Advance(absl::Hours(2));
  ASSERT_OK(store().CreateTask(child));  // Parent pending again: waits.
  ASSERT_OK(store().CancelTask(task.task_id));

  std::vector<std::string> want = {
      "task-defined",     "task-pending/0", "task-running/0",
      "task-exception/0", "task-pending/1", "task-running/1",
      "task-completed/1", "task-pending/2", "task-exception/2"};
  EXPECT_EQ(harness().EventsOf(task.task_id), want);
  // The child's all-completed edge was satisfied by run 1's completion,
  // so it was pending from the start.
  std::vector<std::string> child_want = {"task-defined", "task-pending/0"};
  EXPECT_EQ(harness().EventsOf(child.task_id), child_want);
}

}  // namespace drover::queue::store::testing
