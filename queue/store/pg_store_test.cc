// PgStore against a real PostgreSQL: the Store conformance suite, plus what
// only the PostgreSQL implementation has (notifications, the pool, schema
// checks, database-level input checks, claim path latency).
#include "queue/store/pg_store.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/slugid.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "queue/store/migrations.h"
#include "queue/store/pg_pending_notifier.h"
#include "queue/store/pg_sql.h"
#include "queue/store/pg_util.h"
#include "queue/store/testing/store_conformance.h"
#include "queue/store/testing/test_database.h"

namespace drover::queue::store {
namespace {

using testing::DatabaseTest;
using testing::GraphConformanceTest;
using testing::StoreConformanceTest;
using testing::StoreFactory;
using testing::StoreHarness;
using testing::TestDatabase;

class PgHarness final : public StoreHarness {
 public:
  static absl::StatusOr<std::unique_ptr<StoreHarness>> Make(FakeClock* clock) {
    DROVER_ASSIGN_OR_RETURN(auto db, TestDatabase::Create());
    auto harness =
        std::unique_ptr<PgHarness>(new PgHarness(std::move(db), clock));
    DROVER_RETURN_IF_ERROR(harness->Open());
    return harness;
  }

  Store& store() override { return *store_; }

  absl::Status Restart() override {
    store_.reset();
    return Open();
  }

  std::optional<std::vector<std::string>> EventsOf(
      const std::string& task_id) override {
    std::vector<std::string> out;
    pqxx::connection conn(db_->connection_string());
    pqxx::nontransaction txn(conn);
    for (const auto& row :
         txn.exec_params("SELECT kind, run_id FROM events WHERE task_id = $1 "
                         "ORDER BY event_id",
                         task_id)) {
      std::string e = row[0].c_str();
      if (!row[1].is_null()) absl::StrAppend(&e, "/", row[1].as<int>());
      out.push_back(e);
    }
    return out;
  }

 private:
  PgHarness(std::unique_ptr<TestDatabase> db, FakeClock* clock)
      : db_(std::move(db)), clock_(clock) {}

  absl::Status Open() {
    PgStoreOptions options;
    options.connection_string = db_->connection_string();
    options.pool_size = 8;
    DROVER_ASSIGN_OR_RETURN(store_, PgStore::Open(options, clock_));
    return absl::OkStatus();
  }

  std::unique_ptr<TestDatabase> db_;
  FakeClock* clock_;
  std::unique_ptr<PgStore> store_;
};

INSTANTIATE_TEST_SUITE_P(PgStore, StoreConformanceTest,
                         ::testing::Values(StoreFactory{"pg",
                                                        &PgHarness::Make}),
                         testing::StoreFactoryName);
INSTANTIATE_TEST_SUITE_P(PgStore, GraphConformanceTest,
                         ::testing::Values(StoreFactory{"pg",
                                                        &PgHarness::Make}),
                         testing::StoreFactoryName);

Task SampleTask(const Clock& clock, const std::string& queue = "pg-prov/pg") {
  Task t;
  t.task_id = NewSlugId();
  t.task_queue_id = queue;
  t.scheduler_id = "sched";
  t.task_group_id = t.task_id;
  t.created = clock.Now();
  t.deadline = t.created + absl::Hours(1);
  t.expires = t.deadline + absl::Hours(1);
  t.payload = "{}";
  t.metadata_name = "n";
  t.metadata_description = "d";
  t.metadata_owner = "o@example.com";
  t.metadata_source = "https://example.com";
  return t;
}

// Collects notifier callbacks for tests to wait on.
class Inbox {
 public:
  void Add(const std::string& queue) {
    std::lock_guard<std::mutex> lock(mu_);
    received_.push_back(queue);
    cv_.notify_all();
  }
  // True when `queue` arrives within `timeout` (and consumes it).
  bool WaitFor(const std::string& queue, absl::Duration timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    bool got = cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout), [&] {
      return std::find(received_.begin(), received_.end(), queue) !=
             received_.end();
    });
    if (got) {
      received_.erase(std::find(received_.begin(), received_.end(), queue));
    }
    return got;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> received_;
};

class PgStoreTest : public DatabaseTest {
 protected:
  void SetUp() override {
    DatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    PgStoreOptions options;
    options.connection_string = connection_string();
    options.pool_size = 4;
    auto store = PgStore::Open(options, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(store).value();
  }

  // A second store on this test's database with one report batch in flight,
  // so that reports arriving while it runs queue up and go together.
  absl::StatusOr<std::unique_ptr<PgStore>> OpenStoreWithOneBatchInFlight() {
    PgStoreOptions options;
    options.connection_string = connection_string();
    options.pool_size = 4;
    options.resolution_batches_in_flight = 1;
    return PgStore::Open(options, &clock_);
  }

  // Terminates server sessions of this test's database whose last query
  // starts with `query_prefix` (all sessions but ours when empty).
  int TerminateSessions(const std::string& query_prefix) {
    return SessionQuery(kTerminateSessions, query_prefix);
  }

  // Waits up to `timeout` for at least `n` sessions of this test's database
  // besides ours; returns how many there were at the end.
  int WaitForSessions(int n, absl::Duration timeout) {
    const absl::Time give_up = absl::Now() + timeout;
    int sessions = SessionQuery(kListSessions, "");
    while (sessions < n && absl::Now() < give_up) {
      absl::SleepFor(absl::Milliseconds(20));
      sessions = SessionQuery(kListSessions, "");
    }
    return sessions;
  }

  // Runs `sql` ($1 database, $2 query pattern) with this test's database
  // and `query_prefix`; returns its row count.
  int SessionQuery(const char* sql, const std::string& query_prefix) {
    pqxx::connection admin(*testing::AdminConnectionString());
    pqxx::nontransaction txn(admin);
    return static_cast<int>(
        txn.exec_params(sql, db().name(), query_prefix + "%").size());
  }

  static constexpr char kTerminateSessions[] =
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = $1 AND pid <> pg_backend_pid() AND query ILIKE $2";
  static constexpr char kListSessions[] =
      "SELECT pid FROM pg_stat_activity "
      "WHERE datname = $1 AND pid <> pg_backend_pid() AND query ILIKE $2";

  FakeClock clock_{absl::FromUnixSeconds(1893456000)};
  std::unique_ptr<PgStore> store_;
};

TEST_F(PgStoreTest, NotifierWakesOnPendingWork) {
  Inbox inbox;
  PgPendingNotifier notifier({connection_string()});
  ASSERT_TRUE(notifier.Start([&](const std::string& q) { inbox.Add(q); }).ok());

  Task parent = SampleTask(clock_, "notify-a/x");
  ASSERT_TRUE(store_->CreateTask(parent).ok());
  EXPECT_TRUE(inbox.WaitFor("notify-a/x", absl::Seconds(10)));

  // A dependent becoming pending notifies its own queue.
  Task child = SampleTask(clock_, "notify-b/y");
  child.dependencies = {parent.task_id};
  ASSERT_TRUE(store_->CreateTask(child).ok());
  ASSERT_TRUE(
      store_->ClaimWork("notify-a/x", "g", "w", 1, absl::Minutes(5)).ok());
  ASSERT_TRUE(
      store_->ResolveRun(parent.task_id, 0, RunState::kCompleted, "").ok());
  EXPECT_TRUE(inbox.WaitFor("notify-b/y", absl::Seconds(10)));

  // A retry notifies too.
  ASSERT_TRUE(
      store_->ClaimWork("notify-b/y", "g", "w", 1, absl::Minutes(5)).ok());
  ASSERT_TRUE(store_
                  ->ResolveRun(child.task_id, 0, RunState::kException,
                               "worker-shutdown")
                  .ok());
  EXPECT_TRUE(inbox.WaitFor("notify-b/y", absl::Seconds(10)));
  notifier.Stop();
}

TEST_F(PgStoreTest, NotifierReconnectsAndSaysAnyQueue) {
  Inbox inbox;
  PgPendingNotifier::Options options{connection_string()};
  options.min_backoff = absl::Milliseconds(50);
  PgPendingNotifier notifier(options);
  ASSERT_TRUE(notifier.Start([&](const std::string& q) { inbox.Add(q); }).ok());
  EXPECT_EQ(notifier.connections(), 1);

  ASSERT_EQ(TerminateSessions("listen"), 1);
  EXPECT_TRUE(inbox.WaitFor("", absl::Seconds(15)))
      << "no 'any queue' wake-up after reconnecting";
  EXPECT_EQ(notifier.connections(), 2);
  ASSERT_TRUE(store_->CreateTask(SampleTask(clock_, "after/reconnect")).ok());
  EXPECT_TRUE(inbox.WaitFor("after/reconnect", absl::Seconds(10)));
}

TEST_F(PgStoreTest, PoolRecoversFromLostConnections) {
  Task task = SampleTask(clock_);
  ASSERT_TRUE(store_->CreateTask(task).ok());
  // The pool's connection (it opens more only under concurrency) and the
  // publisher's, which its own thread opens to send the create's NOTIFY.
  ASSERT_GE(WaitForSessions(2, absl::Seconds(10)), 2);
  EXPECT_GE(TerminateSessions(""), 2);
  // Calls that meet a dead connection fail cleanly; the pool reopens it.
  int failures = 0;
  absl::StatusOr<TaskStatus> status;
  for (int i = 0; i < 10; ++i) {
    status = store_->GetTaskStatus(task.task_id);
    if (status.ok()) break;
    ++failures;
    EXPECT_EQ(GetErrorInfo(status.status()).code, ErrorCode::kInternalError);
  }
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_LE(failures, 4);
  // Every connection works again.
  for (int i = 0; i < 8; ++i) {
    auto again = store_->GetTaskStatus(task.task_id);
    if (!again.ok()) {
      ++failures;
      continue;
    }
    EXPECT_EQ(again->state, "pending");
  }
  EXPECT_LE(failures, 4);
}

TEST_F(PgStoreTest, TimesKeepMicrosecondsOnly) {
  clock_.Set(absl::FromUnixSeconds(1893456000) + absl::Nanoseconds(123456789));
  Task task = SampleTask(clock_);
  ASSERT_TRUE(store_->CreateTask(task).ok());
  auto stored = store_->GetTask(task.task_id);
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->created,
            absl::FromUnixSeconds(1893456000) + absl::Microseconds(123456));
  auto status = store_->GetTaskStatus(task.task_id);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->runs[0].scheduled, stored->created);
  // Sub-microsecond differences are not a different definition.
  ASSERT_TRUE(store_->CreateTask(task).ok());
}

TEST_F(PgStoreTest, DatabaseRejectsWhatValidationShouldHaveCaught) {
  Task array_payload = SampleTask(clock_);
  array_payload.payload = "[1,2]";
  auto result = store_->CreateTask(array_payload);
  EXPECT_EQ(GetErrorInfo(result.status()).code, ErrorCode::kInputError);
  Task broken_json = SampleTask(clock_);
  broken_json.payload = "{nope";
  result = store_->CreateTask(broken_json);
  EXPECT_EQ(GetErrorInfo(result.status()).code, ErrorCode::kInputError);
  Task bad_deadline = SampleTask(clock_);
  bad_deadline.deadline = bad_deadline.created - absl::Seconds(1);
  result = store_->CreateTask(bad_deadline);
  EXPECT_EQ(GetErrorInfo(result.status()).code, ErrorCode::kInputError);
  for (const Task* t : {&array_payload, &broken_json, &bad_deadline}) {
    EXPECT_EQ(GetErrorInfo(store_->GetTask(t->task_id).status()).code,
              ErrorCode::kResourceNotFound);
  }
}

TEST_F(PgStoreTest, OpenRefusesANewerSchema) {
  {
    pqxx::connection conn(connection_string());
    pqxx::nontransaction(conn).exec_params(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')",
        LatestKnownSchemaVersion() + 1);
  }
  PgStoreOptions options;
  options.connection_string = connection_string();
  auto store = PgStore::Open(options, &clock_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(GetErrorInfo(store.status()).code, ErrorCode::kRequestConflict);
  EXPECT_NE(store.status().message().find(
                std::to_string(LatestKnownSchemaVersion() + 1)),
            std::string::npos);
}

TEST_F(PgStoreTest, StatementsOfTheRunGuardTriggerHold) {
  // The trigger refuses an illegal transition whatever issues it, and the
  // refused statement leaves the run as it was.
  Task task = SampleTask(clock_);
  ASSERT_TRUE(store_->CreateTask(task).ok());
  pqxx::connection conn(connection_string());
  pqxx::nontransaction txn(conn);
  auto state = [&] {
    return txn
        .exec_params1("SELECT state FROM runs WHERE task_id = $1",
                      task.task_id)[0]
        .as<std::string>();
  };
  EXPECT_THROW(
      txn.exec_params("UPDATE runs SET state = 'completed', "
                      "reason_resolved = 'completed', resolved = now() "
                      "WHERE task_id = $1",
                      task.task_id),
      pqxx::check_violation);
  EXPECT_EQ(state(), "pending");

  // Legal transitions and changes within a state pass (the WHEN clause
  // lets them by without calling the function); running -> pending does
  // not.
  txn.exec_params(
      "UPDATE runs SET state = 'running', worker_group = 'g', "
      "worker_id = 'w', started = now(), "
      "taken_until = now() + interval '1 minute' "
      "WHERE task_id = $1",
      task.task_id);
  ASSERT_EQ(state(), "running");
  txn.exec_params(
      "UPDATE runs SET taken_until = now() + interval '2 minutes' "
      "WHERE task_id = $1",
      task.task_id);
  EXPECT_THROW(txn.exec_params("UPDATE runs SET state = 'pending' "
                               "WHERE task_id = $1",
                               task.task_id),
               pqxx::check_violation);
  ASSERT_EQ(state(), "running");

  // A resolved run stays resolved.
  txn.exec_params(
      "UPDATE runs SET state = 'exception', "
      "reason_resolved = 'canceled', resolved = now() "
      "WHERE task_id = $1",
      task.task_id);
  ASSERT_EQ(state(), "exception");
  EXPECT_THROW(txn.exec_params("UPDATE runs SET state = 'running' "
                               "WHERE task_id = $1",
                               task.task_id),
               pqxx::check_violation);
  EXPECT_THROW(txn.exec_params("UPDATE runs SET worker_id = 'late' "
                               "WHERE task_id = $1",
                               task.task_id),
               pqxx::check_violation);
  EXPECT_EQ(state(), "exception");
}

// Every statement's generic plan (the one the pool uses) must reach rows
// through indexes: a sequential scan of a big table would make a single
// call O(table), e.g. resolution O(graph) instead of O(dependents).
// A generic plan is costed from the table's size when it is built. Built
// on an empty table it scans the table whole, and keeps doing so as the
// table grows, unless the pool rebuilds it (plan_refresh_interval).
TEST_F(PgStoreTest, PooledPlansFollowTableGrowth) {
  {
    pqxx::connection conn(connection_string());
    pqxx::nontransaction txn(conn);
    // No autovacuum: its ANALYZE would rebuild the plans by itself. A few
    // rows, analyzed: a queue table seen while nearly idle.
    txn.exec(
        "CREATE TABLE plan_probe (id text PRIMARY KEY, v int NOT NULL) "
        "WITH (autovacuum_enabled = off)");
    txn.exec("INSERT INTO plan_probe VALUES ('a', 1), ('b', 2), ('c', 3)");
    txn.exec("ANALYZE plan_probe");
  }
  const PreparedStatement probe = {
      "plan_probe_lookup",
      "SELECT v FROM plan_probe WHERE id = ANY ($1::text[])"};
  // The store's own session settings, generic plans alone, or generic
  // plans rebuilt every `refresh`.
  auto make_pool = [&](bool store_settings, absl::Duration refresh) {
    PgStoreOptions store_options;
    store_options.connection_string = connection_string();
    PgConnectionPool::Options options = PgStore::PoolOptions(store_options);
    EXPECT_EQ(options.session_variables["plan_cache_mode"],
              "force_generic_plan");
    if (!store_settings) {
      options.session_variables = {{"plan_cache_mode", "force_generic_plan"}};
    }
    options.size = 1;
    options.plan_refresh_interval = refresh;
    auto pool = PgConnectionPool::Create(options, {probe});
    EXPECT_TRUE(pool.ok()) << pool.status();
    return std::move(pool).value();
  };
  auto plan_of = [&](PgConnectionPool& pool) {
    auto lease = pool.Acquire();
    EXPECT_TRUE(lease.ok()) << lease.status();
    pqxx::nontransaction txn(lease->connection());
    std::string plan;
    for (const auto& row :
         txn.exec("EXPLAIN EXECUTE plan_probe_lookup ('{a,b,c}')")) {
      plan += std::string(row[0].c_str()) + "\n";
    }
    return plan;
  };
  auto stale = make_pool(false, absl::ZeroDuration());
  auto refreshed = make_pool(false, absl::Milliseconds(1));
  auto store_like = make_pool(true, absl::ZeroDuration());
  // Built now, on the near-empty table: a sequential scan is the cheapest.
  ASSERT_NE(plan_of(*stale).find("Seq Scan on plan_probe"), std::string::npos);
  ASSERT_NE(plan_of(*refreshed).find("Seq Scan on plan_probe"),
            std::string::npos);
  // The store's sessions rule sequential scans out, so even a plan built
  // now and never rebuilt probes the index (the gap a refresh leaves for
  // its interval on a fresh database or an idle queue table).
  std::string store_plan = plan_of(*store_like);
  EXPECT_EQ(store_plan.find("Seq Scan"), std::string::npos) << store_plan;
  EXPECT_NE(store_plan.find("plan_probe_pkey"), std::string::npos)
      << store_plan;
  {
    pqxx::connection conn(connection_string());
    pqxx::nontransaction txn(conn);
    txn.exec(
        "INSERT INTO plan_probe SELECT 'id' || i, i "
        "FROM generate_series(4, 100000) i");
  }
  absl::SleepFor(absl::Milliseconds(5));
  // Without a refresh the cached plan still reads all 100,000 rows...
  EXPECT_NE(plan_of(*stale).find("Seq Scan on plan_probe"), std::string::npos);
  // ...with one, the plan is rebuilt for the table as it is now.
  std::string plan = plan_of(*refreshed);
  EXPECT_EQ(plan.find("Seq Scan"), std::string::npos) << plan;
  EXPECT_NE(plan.find("plan_probe_pkey"), std::string::npos) << plan;
  store_plan = plan_of(*store_like);
  EXPECT_EQ(store_plan.find("Seq Scan"), std::string::npos) << store_plan;

  // A connection lost by the time its plans are due is dropped: that lease
  // fails, and the next one reconnects.
  ASSERT_GT(TerminateSessions("EXPLAIN EXECUTE plan_probe_lookup"), 0);
  absl::SleepFor(absl::Milliseconds(5));
  EXPECT_FALSE(refreshed->Acquire().ok());
  EXPECT_NE(plan_of(*refreshed).find("plan_probe_pkey"), std::string::npos);
}

// A graph large enough to move the planner's choices refreshes the
// statistics of the tables it filled, instead of leaving them to autovacuum.
TEST_F(PgStoreTest, LargeGraphCommitAnalyzesItsTables) {
  auto last_analyze = [&](const std::string& table) {
    pqxx::connection conn(connection_string());
    pqxx::nontransaction txn(conn);
    return txn
        .exec_params1(
            "SELECT coalesce(epoch_us(last_analyze), 0) "
            "FROM pg_stat_user_tables WHERE relname = $1",
            table)[0]
        .as<int64_t>();
  };
  // Manual ANALYZEs of task_dependencies so far (autovacuum's not counted).
  auto analyze_count = [&] {
    pqxx::connection conn(connection_string());
    pqxx::nontransaction txn(conn);
    return txn
        .exec1(
            "SELECT analyze_count FROM pg_stat_user_tables "
            "WHERE relname = 'task_dependencies'")[0]
        .as<int64_t>();
  };
  const int64_t analyzed_before = analyze_count();
  // A small graph leaves the statistics alone...
  Task first = SampleTask(clock_, "analyze/q");
  ASSERT_TRUE(store_->CommitTaskGraph("", {first}).ok());
  EXPECT_EQ(last_analyze("task_dependencies"), 0);
  // ...one of 6,000 tasks (a chain of 2,000 fanned out three wide) does not.
  std::vector<Task> graph;
  std::string previous = first.task_id;
  for (int i = 0; i < 6000; ++i) {
    Task t = SampleTask(clock_, "analyze/q");
    t.task_group_id = first.task_group_id;
    t.dependencies = {previous};
    if (i % 3 == 2) previous = t.task_id;
    graph.push_back(std::move(t));
  }
  auto committed = store_->CommitTaskGraph("", graph);
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->tasks, 6000);
  for (const char* table : {"tasks", "task_dependencies", "runs", "pending"}) {
    EXPECT_GT(last_analyze(table), 0) << table;
  }
  // The same call again (its first answer lost) repeats that answer and
  // writes nothing, so it has nothing to analyze.
  const int64_t analyzed = analyze_count();
  EXPECT_EQ(analyzed, analyzed_before + 1);
  auto repeated = store_->CommitTaskGraph("", graph);
  ASSERT_TRUE(repeated.ok()) << repeated.status();
  EXPECT_EQ(repeated->tasks, 6000);
  EXPECT_EQ(analyze_count(), analyzed);
}

TEST_F(PgStoreTest, GenericPlansNeverScanBigTables) {
  // Enough rows, with statistics, that the planner's choices are the ones
  // a production database gets (tiny tables are rightly seq-scanned).
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    Task t = SampleTask(clock_, absl::StrCat("plans/q", i % 3));
    if (i % 4 == 3) t.dependencies = {ids.back()};
    ids.push_back(t.task_id);
    ASSERT_TRUE(store_->CreateTask(t).ok());
  }
  pqxx::connection conn(connection_string());
  {
    pqxx::work bulk(conn);
    bulk.exec(R"sql(
      INSERT INTO task_groups (task_group_id, scheduler_id, expires)
      SELECT 'bulk' || i, 'sched', '2031-01-01' FROM generate_series(1, 50000) i;
      INSERT INTO tasks (task_id, task_queue_id, scheduler_id, task_group_id,
          dependencies, requires, routes, priority, retries, retries_left,
          created, deadline, expires, scopes, payload, metadata_name,
          metadata_description, metadata_owner, metadata_source, tags, extra,
          unresolved_dependencies, resolved, ever_resolved)
      SELECT 'bulk' || i, 'plans/q' || (i % 50), 'sched', 'bulk' || i, '{}',
          'all-completed', '{}', i % 7, 5, 5, '2030-01-01',
          '2030-01-01'::timestamptz + (i || ' minutes')::interval,
          '2031-01-01', '{}', '{}', 'n', 'd', 'o', 's', '{}', '{}', 0,
          i % 3 <> 1 AND i % 100 <> 2, i % 3 <> 1 AND i % 100 <> 2
      FROM generate_series(1, 50000) i;
      INSERT INTO runs (task_id, run_id, state, reason_created, scheduled,
          worker_group, worker_id, taken_until, started, reason_resolved,
          resolved)
      SELECT 'bulk' || i, 0,
          CASE WHEN i % 3 = 1 THEN 'pending'
               WHEN i % 100 = 2 THEN 'running' ELSE 'completed' END,
          'scheduled', '2030-01-01',
          CASE WHEN i % 3 <> 1 THEN 'g' END, CASE WHEN i % 3 <> 1 THEN 'w' END,
          CASE WHEN i % 3 <> 1 THEN '2030-01-01'::timestamptz + (i || ' seconds')::interval END,
          CASE WHEN i % 3 <> 1 THEN '2030-01-01'::timestamptz END,
          CASE WHEN i % 3 <> 1 AND i % 100 <> 2 THEN 'completed' END,
          CASE WHEN i % 3 <> 1 AND i % 100 <> 2 THEN '2030-01-01'::timestamptz END
      FROM generate_series(1, 50000) i;
      INSERT INTO pending (task_id, run_id, task_queue_id, priority)
      SELECT 'bulk' || i, 0, 'plans/q' || (i % 50), i % 7
      FROM generate_series(1, 50000) i WHERE i % 3 = 1;
      INSERT INTO task_dependencies (dependent, required, satisfied)
      SELECT 'bulk' || i, 'bulk' || (i - 1), false
      FROM generate_series(2, 50000) i;
      INSERT INTO events (kind, task_id, time)
      SELECT 'task-defined', 'bulk' || i, '2030-01-01'
      FROM generate_series(1, 50000) i;
    )sql");
    bulk.commit();
  }
  pqxx::nontransaction(conn).exec("ANALYZE");
  pqxx::nontransaction(conn).exec("SET plan_cache_mode = force_generic_plan");

  const std::string t = "'" + ids[7] + "'";
  const std::string now = "'2030-01-01 00:00:00+00'";
  // Sample arguments per statement (EXPLAIN does not run them).
  const std::map<std::string, std::string> args = {
      {sql::kCreateTask.name, "'x', 'plans/q0', 'sched', 'x', '{" + ids[5] +
                                  "}', 'all-completed', "
                                  "'{}', 1, 5, " +
                                  now + ", " + now + ", " + now +
                                  ", '{}', '{}', 'n', "
                                  "'d', 'o', 's', '{}', '{}', " +
                                  now},
      {sql::kGetTask.name, t},
      {sql::kTaskStatuses.name, "ARRAY[" + t + "]"},
      {sql::kLockTask.name, t},
      {sql::kScheduleFirstRun.name, t + ", " + now},
      {sql::kClaimWork.name,
       "'plans/q1', 4, 'g', 'w', " + now + ", " + now + ", " + now},
      {sql::kReclaimRun.name, t + ", 0, 'g', 'w', " + now + ", " + now},
      {sql::kGetRun.name, t + ", 0"},
      {sql::kTaskExists.name, t},
      {sql::kResolveRuns.name, "ARRAY[" + t + "], '{0}', '{completed}', " +
                                   "'{completed}', " + now +
                                   ", '{f}', '{retry}'"},
      {sql::kResolveOpenRun.name, t + ", 0, 'canceled', " + now},
      {sql::kInsertExceptionRun.name, t + ", 0, 'canceled', " + now},
      {sql::kDeletePending.name, t},
      {sql::kRetryTask.name, t + ", 1, 'retry', " + now},
      {sql::kRerunTask.name, t + ", 1, " + now},
      {sql::kFinishTask.name, t + ", true, " + now},
      {sql::kExpireClaims.name, now + ", 100"},
      {sql::kLockDeadlineTasks.name, now + ", 100"},
      {sql::kDeleteExpiredTasks.name, now + ", 100"},
      {sql::kDeleteExpiredTaskGroups.name, now + ", 100"},
      {sql::kQueueCounts.name, "'plans/q1'"},
      {sql::kListTaskQueues.name, "'', 100"},
  };
  const std::vector<std::string> big = {
      "tasks", "runs", "pending", "task_dependencies", "events", "task_groups"};
  for (const auto& statement : sql::kAllStatements) {
    SCOPED_TRACE(statement.name);
    auto it = args.find(statement.name);
    ASSERT_NE(it, args.end()) << "give this statement sample arguments";
    conn.prepare(statement.name, statement.sql);
    conn.prepare_now(statement.name);
    std::string plan;
    pqxx::nontransaction txn(conn);
    for (const auto& row : txn.exec(std::string("EXPLAIN EXECUTE ") +
                                    statement.name + "(" + it->second + ")")) {
      plan += std::string(row[0].c_str()) + "\n";
    }
    for (const auto& table : big) {
      // Counting a queue's pending rows may read them all; that is the
      // answer's own size, not a scan of unrelated rows.
      bool counting = statement.name == std::string(sql::kQueueCounts.name) ||
                      statement.name == std::string(sql::kListTaskQueues.name);
      if (counting && table == "pending") continue;
      EXPECT_EQ(plan.find("Seq Scan on " + table + " "), std::string::npos)
          << plan;
    }
  }
}

// The claim path's cost at the store level (no gRPC): one task created,
// then claimed, over and over. Reports p50/p99; the bounds asserted are
// loose sanity limits, the real targets are measured in bench/.
TEST_F(PgStoreTest, CreateThenClaimLatency) {
  constexpr int kRounds = 300;
  std::vector<double> create_ms;
  std::vector<double> claim_ms;
  std::vector<double> report_ms;
  for (int i = 0; i < kRounds; ++i) {
    Task task = SampleTask(clock_, "latency/q");
    absl::Time t0 = absl::Now();
    ASSERT_TRUE(store_->CreateTask(task).ok());
    absl::Time t1 = absl::Now();
    auto claimed =
        store_->ClaimWork("latency/q", "g", "w", 1, absl::Minutes(5));
    absl::Time t2 = absl::Now();
    ASSERT_TRUE(claimed.ok()) << claimed.status();
    ASSERT_EQ(claimed->size(), 1u);
    ASSERT_TRUE(
        store_->ResolveRun(task.task_id, 0, RunState::kCompleted, "").ok());
    absl::Time t3 = absl::Now();
    create_ms.push_back(absl::ToDoubleMilliseconds(t1 - t0));
    claim_ms.push_back(absl::ToDoubleMilliseconds(t2 - t1));
    report_ms.push_back(absl::ToDoubleMilliseconds(t3 - t2));
  }
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(p * (v.size() - 1))];
  };
  std::printf(
      "store latency over %d rounds (ms): create p50 %.3f p99 %.3f | claim "
      "p50 %.3f p99 %.3f | report p50 %.3f p99 %.3f\n",
      kRounds, pct(create_ms, 0.5), pct(create_ms, 0.99), pct(claim_ms, 0.5),
      pct(claim_ms, 0.99), pct(report_ms, 0.5), pct(report_ms, 0.99));
  EXPECT_LT(pct(claim_ms, 0.5), 50.0);
}

// The batched resolution statement on its own: tasks resolved together
// release a dependent that waits for both exactly once, a retryable
// exception gets its retry, and a batch holding a task together with its
// own (force-scheduled) dependent reports the overlap.
TEST_F(PgStoreTest, ResolveRunsStatementResolvesABatch) {
  Task a = SampleTask(clock_, "batch/q");
  Task b = SampleTask(clock_, "batch/q");
  Task e = SampleTask(clock_, "batch/q");
  Task d = SampleTask(clock_, "batch/q");
  d.dependencies = {a.task_id, b.task_id};
  for (const Task* t : {&a, &b, &e, &d}) {
    ASSERT_TRUE(store_->CreateTask(*t).ok()) << t->task_id;
  }
  auto claimed = store_->ClaimWork("batch/q", "g", "w", 10, absl::Minutes(5));
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 3u);  // d waits for a and b.

  pqxx::connection conn(connection_string());
  conn.prepare(sql::kResolveRuns.name, sql::kResolveRuns.sql);
  {
    pqxx::work txn(conn);
    pqxx::row row = txn.exec_prepared1(
        sql::kResolveRuns.name,
        pg::TextArrayParam({a.task_id, b.task_id, e.task_id}),
        std::string("{0,0,0}"), std::string("{completed,completed,exception}"),
        std::string("{completed,completed,worker-shutdown}"),
        pg::TimeParam(clock_.Now()), std::string("{f,f,t}"),
        std::string("{retry,retry,retry}"));
    EXPECT_FALSE(row["overlap"].as<bool>());
    std::vector<std::string> resolved = pg::TextArrayField(row["resolved"]);
    std::sort(resolved.begin(), resolved.end());
    std::vector<std::string> want = {a.task_id, b.task_id, e.task_id};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(resolved, want);
    EXPECT_EQ(pg::TextArrayField(row["notified"]),
              std::vector<std::string>{"batch/q"});
    txn.commit();
  }
  auto d_status = store_->GetTaskStatus(d.task_id);
  ASSERT_TRUE(d_status.ok());
  EXPECT_EQ(d_status->state, "pending");
  auto e_status = store_->GetTaskStatus(e.task_id);
  ASSERT_TRUE(e_status.ok());
  ASSERT_EQ(e_status->runs.size(), 2u);
  EXPECT_EQ(e_status->runs[1].reason_created, "retry");
  EXPECT_EQ(e_status->runs[1].state, RunState::kPending);
  {
    pqxx::nontransaction txn(conn);
    EXPECT_EQ(txn.exec_params1("SELECT unresolved_dependencies FROM tasks "
                               "WHERE task_id = $1",
                               d.task_id)[0]
                  .as<int>(),
              0);
    EXPECT_EQ(txn.exec_params1("SELECT count(*) FROM events WHERE task_id = "
                               "$1 AND kind = 'task-pending'",
                               d.task_id)[0]
                  .as<int>(),
              1);
  }

  // A parent and its force-scheduled child in one batch cannot go
  // together: the statement says so and the caller rolls back.
  Task p = SampleTask(clock_, "batch/o");
  Task c = SampleTask(clock_, "batch/o");
  c.dependencies = {p.task_id};
  ASSERT_TRUE(store_->CreateTask(p).ok());
  ASSERT_TRUE(store_->CreateTask(c).ok());
  ASSERT_TRUE(store_->ScheduleTask(c.task_id).ok());
  claimed = store_->ClaimWork("batch/o", "g", "w", 10, absl::Minutes(5));
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 2u);
  {
    pqxx::work txn(conn);
    pqxx::row row = txn.exec_prepared1(
        sql::kResolveRuns.name, pg::TextArrayParam({p.task_id, c.task_id}),
        std::string("{0,0}"), std::string("{completed,completed}"),
        std::string("{completed,completed}"), pg::TimeParam(clock_.Now()),
        std::string("{f,f}"), std::string("{retry,retry}"));
    EXPECT_TRUE(row["overlap"].as<bool>());
    txn.abort();
  }
  // Through the store, both reports succeed whatever batches they share.
  std::thread other([&] {
    EXPECT_TRUE(
        store_->ResolveRun(c.task_id, 0, RunState::kCompleted, "").ok());
  });
  EXPECT_TRUE(store_->ResolveRun(p.task_id, 0, RunState::kCompleted, "").ok());
  other.join();
  for (const Task* t : {&p, &c}) {
    auto status = store_->GetTaskStatus(t->task_id);
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->state, "completed") << t->task_id;
  }
}

// Many concurrent reports with one batch at a time (so reports queue up
// and go together): every report gets its own answer (repeats and
// conflicts included) and a fan-in dependent is released exactly once.
TEST_F(PgStoreTest, ConcurrentReportsShareBatches) {
  auto opened = OpenStoreWithOneBatchInFlight();
  ASSERT_TRUE(opened.ok()) << opened.status();
  PgStore& store = **opened;
  constexpr int kParents = 48;
  std::vector<Task> parents;
  Task sink = SampleTask(clock_, "fanin/q");
  for (int i = 0; i < kParents; ++i) {
    parents.push_back(SampleTask(clock_, "fanin/q"));
    sink.dependencies.push_back(parents.back().task_id);
    ASSERT_TRUE(store.CreateTask(parents.back()).ok());
  }
  ASSERT_TRUE(store.CreateTask(sink).ok());
  auto claimed = store.ClaimWork("fanin/q", "g", "w", 100, absl::Minutes(5));
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), static_cast<size_t>(kParents));

  std::atomic<int> failures{0};
  std::vector<std::thread> reporters;
  for (int i = 0; i < kParents; ++i) {
    reporters.emplace_back([&, i] {
      const std::string& id = parents[i].task_id;
      // Every fourth parent is reported twice at once (a retried RPC):
      // both answers are success, the second a repeat.
      int copies = i % 4 == 0 ? 2 : 1;
      std::vector<std::thread> same;
      for (int k = 0; k < copies; ++k) {
        same.emplace_back([&] {
          auto status = store.ResolveRun(id, 0, RunState::kCompleted, "");
          if (!status.ok() || status->state != "completed") failures++;
        });
      }
      for (auto& t : same) t.join();
    });
  }
  for (auto& t : reporters) t.join();
  EXPECT_EQ(failures.load(), 0);
  // A report of a run that is no longer running is still a conflict.
  auto late = store.ResolveRun(parents[1].task_id, 0, RunState::kFailed, "");
  EXPECT_FALSE(late.ok());

  auto sink_status = store.GetTaskStatus(sink.task_id);
  ASSERT_TRUE(sink_status.ok());
  EXPECT_EQ(sink_status->state, "pending");
  pqxx::connection conn(connection_string());
  pqxx::nontransaction txn(conn);
  EXPECT_EQ(txn.exec_params1("SELECT count(*) FROM events WHERE task_id = $1 "
                             "AND kind = 'task-pending'",
                             sink.task_id)[0]
                .as<int>(),
            1);
  EXPECT_EQ(txn.exec_params1("SELECT count(*) FROM events WHERE kind = "
                             "'task-completed' AND task_queue_id = $1",
                             std::string("fanin/q"))[0]
                .as<int>(),
            kParents);
}

// A batch that cannot go together is split, deterministically: while one
// batch is held (a row lock on its task), a parent and its force-scheduled
// child queue up and then go as one batch, which the statement reports as
// overlapping; the store rolls it back and resolves them one at a time.
TEST_F(PgStoreTest, OverlappingBatchIsSplit) {
  auto opened = OpenStoreWithOneBatchInFlight();
  ASSERT_TRUE(opened.ok()) << opened.status();
  PgStore& store = **opened;
  Task held = SampleTask(clock_, "split/q");
  Task parent = SampleTask(clock_, "split/q");
  Task child = SampleTask(clock_, "split/q");
  child.dependencies = {parent.task_id};
  for (const Task* t : {&held, &parent, &child}) {
    ASSERT_TRUE(store.CreateTask(*t).ok());
  }
  ASSERT_TRUE(store.ScheduleTask(child.task_id).ok());
  auto claimed = store.ClaimWork("split/q", "g", "w", 10, absl::Minutes(5));
  ASSERT_TRUE(claimed.ok());
  ASSERT_EQ(claimed->size(), 3u);

  pqxx::connection locker(connection_string());
  pqxx::work lock(locker);
  lock.exec_params("SELECT 1 FROM tasks WHERE task_id = $1 FOR UPDATE",
                   held.task_id);
  std::atomic<int> failures{0};
  auto report = [&](const std::string& id) {
    auto status = store.ResolveRun(id, 0, RunState::kCompleted, "");
    if (!status.ok() || status->state != "completed") failures++;
  };
  std::thread first([&] { report(held.task_id); });
  // The held report occupies the only batch; the next two queue behind it.
  absl::SleepFor(absl::Milliseconds(300));
  std::thread second([&] { report(parent.task_id); });
  std::thread third([&] { report(child.task_id); });
  absl::SleepFor(absl::Milliseconds(300));
  lock.abort();
  first.join();
  second.join();
  third.join();
  EXPECT_EQ(failures.load(), 0);
  for (const Task* t : {&held, &parent, &child}) {
    auto status = store.GetTaskStatus(t->task_id);
    ASSERT_TRUE(status.ok());
    EXPECT_EQ(status->state, "completed") << t->task_id;
    ASSERT_EQ(status->runs.size(), 1u) << t->task_id;
  }
  pqxx::nontransaction txn(locker);
  EXPECT_EQ(txn.exec_params1("SELECT count(*) FROM events WHERE kind = "
                             "'task-completed' AND task_queue_id = $1",
                             std::string("split/q"))[0]
                .as<int>(),
            3);
}

// Many workers claiming and completing concurrently: the no-op throughput
// of the store. Printed for comparison with `pgbench -N`.
TEST_F(PgStoreTest, ConcurrentNoOpThroughput) {
  constexpr int kTasks = 2000;
  constexpr int kWorkers = 4;
  for (int i = 0; i < kTasks; ++i) {
    ASSERT_TRUE(store_->CreateTask(SampleTask(clock_, "tput/q")).ok());
  }
  std::atomic<int> done{0};
  std::atomic<int> errors{0};
  absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (;;) {
        auto claimed = store_->ClaimWork("tput/q", "g", absl::StrCat("w", w), 4,
                                         absl::Minutes(5));
        if (!claimed.ok()) {
          errors++;
          return;
        }
        if (claimed->empty()) return;
        for (const auto& c : *claimed) {
          if (!store_
                   ->ResolveRun(c.task.task_id, c.run_id, RunState::kCompleted,
                                "")
                   .ok()) {
            errors++;
          }
          done++;
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::printf("claim+complete of %d tasks with %d workers: %.0f tasks/s\n",
              done.load(), kWorkers, done.load() / seconds);
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(done.load(), kTasks);
}

}  // namespace
}  // namespace drover::queue::store
