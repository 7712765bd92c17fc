// The background resolvers against a real PostgreSQL store, with a fake
// clock so deadlines, claim expiry and task expiry pass without sleeping.
#include "queue/resolvers/resolvers.h"

#include <chrono>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/slugid.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "queue/store/pg_store.h"
#include "queue/store/testing/test_database.h"

namespace drover::queue::resolvers {
namespace {

class ResolversTest : public store::testing::DatabaseTest {
 protected:
  void SetUp() override {
    DatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store::PgStoreOptions options;
    options.connection_string = connection_string();
    options.pool_size = 4;
    auto opened = store::PgStore::Open(options, &clock_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(opened).value();
  }

  store::Task NewTask(int retries = 0) {
    store::Task task;
    task.task_id = NewSlugId();
    task.task_queue_id = "resolver-test/worker";
    task.scheduler_id = "-";
    task.task_group_id = task.task_id;
    task.retries = retries;
    task.created = clock_.Now();
    task.deadline = clock_.Now() + absl::Hours(1);
    task.expires = clock_.Now() + absl::Hours(2);
    task.metadata_name = "n";
    task.metadata_description = "d";
    task.metadata_owner = "o@example.com";
    task.metadata_source = "https://example.com";
    return task;
  }

  // Runs one immediate pass of every loop and waits until `done` holds.
  template <typename Pred>
  bool KickUntil(Resolvers& resolvers, Pred done) {
    for (int i = 0; i < 200; ++i) {
      resolvers.Kick();
      if (done()) return true;
      absl::SleepFor(absl::Milliseconds(25));
    }
    return done();
  }

  // Truncated to microseconds, like the store.
  FakeClock clock_{absl::FromUnixMicros(absl::ToUnixMicros(absl::Now()))};
  std::unique_ptr<store::PgStore> store_;
};

ResolverOptions SlowLoops() {
  // Intervals far beyond the test: only Kick() makes them run again.
  ResolverOptions options;
  options.batch = 2;
  options.claim_expiry_interval = absl::Hours(1);
  options.deadline_interval = absl::Hours(1);
  options.expiry_interval = absl::Hours(1);
  return options;
}

TEST_F(ResolversTest, ExpiresClaimsIntoRetries) {
  store::Task task = NewTask(/*retries=*/1);
  ASSERT_TRUE(store_->CreateTask(task).ok());
  auto claimed =
      store_->ClaimWork(task.task_queue_id, "g", "w", 1, absl::Minutes(1));
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);

  Resolvers resolvers(SlowLoops(), store_.get());
  resolvers.Start();
  clock_.Advance(absl::Minutes(2));
  ASSERT_TRUE(KickUntil(resolvers, [&] {
    auto status = store_->GetTaskStatus(task.task_id);
    return status.ok() && status->runs.size() == 2;
  }));
  auto status = store_->GetTaskStatus(task.task_id);
  EXPECT_EQ(status->runs[0].reason_resolved, "claim-expired");
  EXPECT_EQ(status->runs[1].reason_created, "retry");
  EXPECT_EQ(status->state, "pending");
  resolvers.Stop();
  bool counted = false;
  for (const auto& s : resolvers.Stats()) {
    if (s.name == "claim-expiry") counted = s.resolved >= 1;
  }
  EXPECT_TRUE(counted);
}

TEST_F(ResolversTest, ResolvesDeadlinesInBatches) {
  // Five tasks with a batch of two: the loop goes round until all are done.
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    store::Task task = NewTask();
    ASSERT_TRUE(store_->CreateTask(task).ok());
    ids.push_back(task.task_id);
  }
  Resolvers resolvers(SlowLoops(), store_.get());
  clock_.Advance(absl::Minutes(61));
  resolvers.Start();
  ASSERT_TRUE(KickUntil(resolvers, [&] {
    for (const auto& id : ids) {
      auto status = store_->GetTaskStatus(id);
      if (!status.ok() || status->state != "exception") return false;
    }
    return true;
  }));
  for (const auto& id : ids) {
    auto status = store_->GetTaskStatus(id);
    ASSERT_FALSE(status->runs.empty());
    EXPECT_EQ(status->runs.back().reason_resolved, "deadline-exceeded");
  }
}

TEST_F(ResolversTest, DeletesExpiredTasks) {
  store::Task task = NewTask();
  ASSERT_TRUE(store_->CreateTask(task).ok());
  Resolvers resolvers(SlowLoops(), store_.get());
  resolvers.Start();
  clock_.Advance(absl::Hours(3));
  ASSERT_TRUE(KickUntil(resolvers, [&] {
    return HasErrorCode(store_->GetTask(task.task_id).status(),
                        ErrorCode::kResourceNotFound);
  }));
}

// Two replicas' event-retention loops share the work through the
// database: every expired event is deleted once, in batches of at most
// `batch`, and the recent ones stay.
TEST_F(ResolversTest, DeletesExpiredEventsInBatchesAndKeepsRecentOnes) {
  auto created = [&](int n) {
    std::set<std::string> ids;
    for (int i = 0; i < n; ++i) {
      store::Task task = NewTask();
      task.deadline = clock_.Now() + absl::Hours(24);
      task.expires = clock_.Now() + absl::Hours(48);
      EXPECT_TRUE(store_->CreateTask(task).ok());
      ids.insert(task.task_id);
    }
    return ids;
  };
  auto events = [&] {
    std::vector<store::Event> out;
    int64_t after = 0;
    for (;;) {
      auto read = store_->ReadEvents(after, {}, 1000, absl::Seconds(5));
      EXPECT_TRUE(read.ok()) << read.status();
      if (!read.ok() || read->next == after) return out;
      out.insert(out.end(), read->events.begin(), read->events.end());
      after = read->next;
    }
  };
  std::set<std::string> old_tasks = created(9);  // 18 events
  clock_.Advance(absl::Minutes(90));
  std::set<std::string> recent_tasks = created(3);  // 6 events
  ASSERT_EQ(events().size(), 24u);

  store::PgStoreOptions options;
  options.connection_string = connection_string();
  auto opened = store::PgStore::Open(options, &clock_);
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<store::PgStore> other_store = std::move(opened).value();
  ResolverOptions retention = SlowLoops();
  retention.batch = 4;
  retention.event_retention = absl::Hours(1);
  retention.event_retention_interval = absl::Hours(1);
  Resolvers replica_a(retention, store_.get());
  Resolvers replica_b(retention, other_store.get());
  replica_a.Start();
  replica_b.Start();
  ASSERT_TRUE(KickUntil(replica_a, [&] {
    replica_b.Kick();
    return events().size() == 6u;
  }));
  for (const store::Event& e : events()) {
    EXPECT_TRUE(recent_tasks.count(e.task_id)) << e.kind << " " << e.task_id;
  }
  replica_a.Stop();
  replica_b.Stop();
  int64_t deleted = 0, passes = 0;
  for (Resolvers* r : {&replica_a, &replica_b}) {
    for (const ResolverStats& s : r->Stats()) {
      EXPECT_EQ(s.errors, 0) << s.name;
      if (s.name != "event-retention") continue;
      deleted += s.resolved;
      passes += s.passes;
    }
  }
  EXPECT_EQ(deleted, 18);
  EXPECT_GE(passes, 5);  // 18 events, at most 4 per pass.
  // One call never deletes more than its batch.
  clock_.Advance(absl::Hours(2));
  auto one = store_->DeleteExpiredEvents(absl::Hours(1), 4);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, 4);
  EXPECT_EQ(events().size(), 2u);
}

TEST_F(ResolversTest, StopsPromptlyWhileIdle) {
  Resolvers resolvers(SlowLoops(), store_.get());
  resolvers.Start();
  absl::SleepFor(absl::Milliseconds(100));
  auto start = std::chrono::steady_clock::now();
  resolvers.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  resolvers.Stop();  // Idempotent.
  for (const auto& s : resolvers.Stats()) {
    EXPECT_GE(s.passes, 1) << s.name;
    EXPECT_EQ(s.errors, 0) << s.name;
  }
}

}  // namespace
}  // namespace drover::queue::resolvers
