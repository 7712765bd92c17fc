// WorkerStore on a real, throw-away PostgreSQL: pool CRUD, the guarded
// worker mutation, listings, statistics with workers in every state and
// tasks pending and claimed, the lifecycle resolver, key rotation of the
// re-registration secrets, and the capacity count registrations check.
#include "queue/worker_manager/worker_store.h"

#include <map>
#include <memory>
#include <string>

#include "common/crypto/keyring.h"
#include "common/slugid.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "queue/store/pg_store.h"
#include "queue/store/testing/test_database.h"

namespace drover::queue::worker_manager {
namespace {

class WorkerStoreTest : public store::testing::DatabaseTest {
 protected:
  void SetUp() override {
    DatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    WorkerStoreOptions options;
    options.connection_string = connection_string();
    auto opened = WorkerStore::Open(options, &clock_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
  }

  PoolConfig Config() {
    PoolConfig c;
    c.owner = "ops@example.com";
    c.max_capacity = 10;
    return c;
  }

  // Inserts a worker in `state` through the mutation, as the service does.
  absl::StatusOr<WorkerRecord> PutWorker(const std::string& pool,
                                         const std::string& id,
                                         WorkerState state, int capacity) {
    return store_->MutateWorker(
        pool, "g", id,
        [&](const PoolRecord&, const std::optional<WorkerRecord>& current)
            -> absl::StatusOr<WorkerRecord> {
          WorkerRecord w = current.value_or(WorkerRecord{});
          w.worker_pool_id = pool;
          w.worker_group = "g";
          w.worker_id = id;
          w.state = state;
          w.capacity = capacity;
          w.created = clock_.Now();
          w.expires = clock_.Now() + absl::Hours(48);
          if (state != WorkerState::kRequested) {
            w.registered = clock_.Now();
            w.last_seen = clock_.Now();
            w.credentials_expire = clock_.Now() + absl::Hours(1);
          }
          return w;
        });
  }

  store::Task NewTask(const std::string& queue) {
    store::Task t;
    t.task_id = NewSlugId();
    t.task_queue_id = queue;
    t.scheduler_id = "-";
    t.task_group_id = t.task_id;
    t.retries = 5;
    t.created = clock_.Now();
    t.deadline = clock_.Now() + absl::Hours(1);
    t.expires = clock_.Now() + absl::Hours(24);
    t.metadata_name = "n";
    t.metadata_description = "d";
    t.metadata_owner = "o@example.com";
    t.metadata_source = "https://example.com";
    return t;
  }

  FakeClock clock_{absl::FromUnixSeconds(1893456000)};
  std::unique_ptr<WorkerStore> store_;
};

TEST_F(WorkerStoreTest, PoolCrud) {
  PoolConfig config = Config();
  config.reregistration_sunset = clock_.Now() + absl::Hours(5);
  config.worker_config = R"({"a":1})";
  config.queue_inactivity_timeout = absl::Hours(2);
  auto created = store_->CreatePool("prov/linux", config);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->config.owner, "ops@example.com");
  EXPECT_EQ(created->config.reregistration_sunset,
            clock_.Now() + absl::Hours(5));
  EXPECT_EQ(created->config.queue_inactivity_timeout, absl::Hours(2));
  EXPECT_EQ(created->config.worker_config, R"({"a": 1})");
  EXPECT_TRUE(created->registration_secret_hash.empty());

  EXPECT_TRUE(HasErrorCode(store_->CreatePool("prov/linux", config).status(),
                           ErrorCode::kRequestConflict));

  config.max_capacity = 20;
  config.reregistration_sunset.reset();
  clock_.Advance(absl::Minutes(1));
  auto updated = store_->UpdatePool("prov/linux", config);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->config.max_capacity, 20);
  EXPECT_FALSE(updated->config.reregistration_sunset.has_value());
  EXPECT_EQ(updated->created, created->created);
  EXPECT_GT(updated->last_modified, created->last_modified);
  EXPECT_TRUE(HasErrorCode(store_->UpdatePool("prov/none", config).status(),
                           ErrorCode::kResourceNotFound));

  ASSERT_TRUE(
      store_->SetRegistrationSecretHash("prov/linux", std::string(32, '\x07'))
          .ok());
  EXPECT_EQ(store_->GetPool("prov/linux")->registration_secret_hash,
            std::string(32, '\x07'));
  ASSERT_TRUE(store_->SetRegistrationSecretHash("prov/linux", "").ok());
  EXPECT_TRUE(store_->GetPool("prov/linux")->registration_secret_hash.empty());

  ASSERT_TRUE(store_->CreatePool("prov/mac", Config()).ok());
  auto page = store_->ListPools("", 1);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].worker_pool_id, "prov/linux");
  auto rest = store_->ListPools(page->continuation_token, 1);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].worker_pool_id, "prov/mac");

  // A pool with a live worker cannot go; once it is stopped, it can.
  ASSERT_TRUE(PutWorker("prov/mac", "w1", WorkerState::kRunning, 1).ok());
  absl::Status refused = store_->DeletePool("prov/mac");
  EXPECT_TRUE(HasErrorCode(refused, ErrorCode::kRequestConflict)) << refused;
  EXPECT_TRUE(store_->GetPool("prov/mac").ok());
  ASSERT_TRUE(PutWorker("prov/mac", "w1", WorkerState::kStopped, 1).ok());
  ASSERT_TRUE(store_->DeletePool("prov/mac").ok());
  EXPECT_TRUE(HasErrorCode(store_->GetPool("prov/mac").status(),
                           ErrorCode::kResourceNotFound));
  EXPECT_TRUE(HasErrorCode(store_->DeletePool("prov/mac"),
                           ErrorCode::kResourceNotFound));
}

TEST_F(WorkerStoreTest, MutationRoundTripsEveryColumnAndRollsBackOnError) {
  ASSERT_TRUE(store_->CreatePool("prov/linux", Config()).ok());
  EXPECT_TRUE(HasErrorCode(
      PutWorker("prov/none", "w", WorkerState::kRunning, 1).status(),
      ErrorCode::kResourceNotFound));

  auto written = store_->MutateWorker(
      "prov/linux", "g", "w",
      [&](const PoolRecord& pool, const std::optional<WorkerRecord>& current)
          -> absl::StatusOr<WorkerRecord> {
        EXPECT_EQ(pool.worker_pool_id, "prov/linux");
        EXPECT_FALSE(current.has_value());
        WorkerRecord w;
        w.worker_pool_id = "prov/linux";
        w.worker_group = "g";
        w.worker_id = "w";
        w.state = WorkerState::kRunning;
        w.capacity = 4;
        w.created = clock_.Now();
        w.registered = clock_.Now();
        w.last_seen = clock_.Now();
        w.credentials_expire = clock_.Now() + absl::Hours(96);
        w.expires = clock_.Now() + absl::Hours(120);
        w.quarantine_until = clock_.Now() + absl::Hours(1);
        w.quarantine_reason = "flaky disk";
        w.static_secret_hash = std::string(32, '\x01');
        w.reregistration_secret = std::string("\x01\x02\x00\xff", 4);
        w.reregistration_key_id = "k1";
        // Order matters: newest first.
        w.spent_secret_hashes = {std::string(32, '\x02'),
                                 std::string(32, '\x00'),
                                 std::string(32, '\x03')};
        w.supports_reregistration = true;
        w.first_claim = clock_.Now();
        w.recent_tasks = {"t1/0", "t2/1"};
        w.facts = {"host1", "linux", "native", "1.2.3",
                   clock_.Now() - absl::Hours(3)};
        return w;
      });
  ASSERT_TRUE(written.ok()) << written.status();
  auto read = store_->GetWorker("prov/linux", "g", "w");
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->state, WorkerState::kRunning);
  EXPECT_EQ(read->capacity, 4);
  EXPECT_EQ(read->credentials_expire, clock_.Now() + absl::Hours(96));
  EXPECT_EQ(read->quarantine_reason, "flaky disk");
  EXPECT_EQ(read->static_secret_hash, std::string(32, '\x01'));
  EXPECT_EQ(read->reregistration_secret, std::string("\x01\x02\x00\xff", 4));
  EXPECT_EQ(read->reregistration_key_id, "k1");
  EXPECT_EQ(read->spent_secret_hashes,
            (std::vector<std::string>{std::string(32, '\x02'),
                                      std::string(32, '\x00'),
                                      std::string(32, '\x03')}));
  EXPECT_TRUE(read->supports_reregistration);
  EXPECT_EQ(read->recent_tasks, (std::vector<std::string>{"t1/0", "t2/1"}));
  EXPECT_EQ(read->facts.hostname, "host1");
  EXPECT_EQ(read->facts.worker_version, "1.2.3");
  EXPECT_EQ(read->facts.boot_time, clock_.Now() - absl::Hours(3));

  // A failing mutation writes nothing.
  auto failed = store_->MutateWorker(
      "prov/linux", "g", "w",
      [&](const PoolRecord&, const std::optional<WorkerRecord>& current)
          -> absl::StatusOr<WorkerRecord> {
        EXPECT_TRUE(current.has_value());
        return ConflictError("no");
      });
  EXPECT_TRUE(HasErrorCode(failed.status(), ErrorCode::kRequestConflict));
  EXPECT_EQ(store_->GetWorker("prov/linux", "g", "w")->capacity, 4);
  EXPECT_TRUE(HasErrorCode(store_->GetWorker("prov/linux", "g", "x").status(),
                           ErrorCode::kResourceNotFound));
}

TEST_F(WorkerStoreTest, ListWorkersFiltersByStateAndPages) {
  ASSERT_TRUE(store_->CreatePool("prov/linux", Config()).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "a", WorkerState::kRunning, 1).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "b", WorkerState::kStopped, 1).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "c", WorkerState::kRequested, 1).ok());
  auto all = store_->ListWorkers("prov/linux", {}, "", 100);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->items.size(), 3u);
  auto live = store_->ListWorkers(
      "prov/linux", {WorkerState::kRunning, WorkerState::kRequested}, "", 1);
  ASSERT_TRUE(live.ok());
  ASSERT_EQ(live->items.size(), 1u);
  EXPECT_EQ(live->items[0].worker_id, "a");
  auto next = store_->ListWorkers(
      "prov/linux", {WorkerState::kRunning, WorkerState::kRequested},
      live->continuation_token, 1);
  ASSERT_TRUE(next.ok()) << next.status();
  ASSERT_EQ(next->items.size(), 1u);
  EXPECT_EQ(next->items[0].worker_id, "c");
  EXPECT_TRUE(
      HasErrorCode(store_->ListWorkers("prov/none", {}, "", 10).status(),
                   ErrorCode::kResourceNotFound));
}

TEST_F(WorkerStoreTest, StatsCountEveryStateAndTheQueue) {
  store::PgStoreOptions options;
  options.connection_string = connection_string();
  auto tasks = store::PgStore::Open(options, &clock_);
  ASSERT_TRUE(tasks.ok()) << tasks.status();

  ASSERT_TRUE(store_->CreatePool("prov/linux", Config()).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "req", WorkerState::kRequested, 2).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "run1", WorkerState::kRunning, 4).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "run2", WorkerState::kRunning, 3).ok());
  ASSERT_TRUE(
      PutWorker("prov/linux", "stopping", WorkerState::kStopping, 5).ok());
  ASSERT_TRUE(
      PutWorker("prov/linux", "stopped", WorkerState::kStopped, 7).ok());
  // run2 is quarantined: its capacity is not idle.
  ASSERT_TRUE(store_
                  ->MutateWorker("prov/linux", "g", "run2",
                                 [&](const PoolRecord&,
                                     const std::optional<WorkerRecord>& c)
                                     -> absl::StatusOr<WorkerRecord> {
                                   WorkerRecord w = *c;
                                   w.quarantine_until =
                                       clock_.Now() + absl::Hours(1);
                                   w.quarantine_reason = "test";
                                   return w;
                                 })
                  .ok());

  // Five tasks: two claimed by run1, three pending (one on another queue).
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE((*tasks)->CreateTask(NewTask("prov/linux")).ok());
    clock_.Advance(absl::Seconds(10));
  }
  ASSERT_TRUE((*tasks)->CreateTask(NewTask("prov/other")).ok());
  auto claimed =
      (*tasks)->ClaimWork("prov/linux", "g", "run1", 2, absl::Minutes(20));
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 2u);
  clock_.Advance(absl::Seconds(60));

  auto stats = store_->PoolStats("prov/linux");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->requested, 1);
  EXPECT_EQ(stats->running, 2);
  EXPECT_EQ(stats->stopping, 1);
  EXPECT_EQ(stats->stopped, 1);
  EXPECT_EQ(stats->quarantined, 1);
  EXPECT_EQ(stats->total_capacity, 2 + 4 + 3 + 5);
  EXPECT_EQ(stats->running_tasks, 2);
  // run1: 4 - 2; run2 quarantined; others not running.
  EXPECT_EQ(stats->idle_capacity, 2);
  EXPECT_EQ(stats->pending_tasks, 2);
  ASSERT_TRUE(stats->oldest_pending.has_value());
  // The third task was created 20 s after the first, 80 s ago.
  EXPECT_EQ(clock_.Now() - *stats->oldest_pending, absl::Seconds(80));
  EXPECT_EQ(store_->GetWorker("prov/linux", "g", "run1")->running_tasks, 2);

  auto runs = store_->RunningRuns("prov/linux", "g", "run1");
  ASSERT_TRUE(runs.ok());
  EXPECT_EQ(runs->size(), 2u);

  auto listed = store_->ListPoolStats("", 10);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->items.size(), 1u);
  EXPECT_EQ(listed->items[0].total_capacity, stats->total_capacity);
  EXPECT_TRUE(HasErrorCode(store_->PoolStats("prov/none").status(),
                           ErrorCode::kResourceNotFound));
}

TEST_F(WorkerStoreTest, LifecycleResolverStopsAndDeletes) {
  PoolConfig config = Config();
  config.registration_timeout = absl::Hours(1);
  config.queue_inactivity_timeout = absl::Minutes(30);
  ASSERT_TRUE(store_->CreatePool("prov/linux", config).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "req", WorkerState::kRequested, 1).ok());
  // credentials expire in 1 h; last seen now.
  ASSERT_TRUE(PutWorker("prov/linux", "run", WorkerState::kRunning, 1).ok());

  auto none = store_->ExpireWorkers(100);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->credentials_expired + none->registration_expired +
                none->inactive + none->deleted,
            0);

  clock_.Advance(absl::Minutes(31));
  auto inactive = store_->ExpireWorkers(100);
  ASSERT_TRUE(inactive.ok()) << inactive.status();
  EXPECT_EQ(inactive->inactive, 1);
  EXPECT_EQ(store_->GetWorker("prov/linux", "g", "run")->stop_reason,
            "queue-inactivity-timeout");

  clock_.Advance(absl::Minutes(30));
  auto registration = store_->ExpireWorkers(100);
  ASSERT_TRUE(registration.ok()) << registration.status();
  EXPECT_EQ(registration->registration_expired, 1);
  auto req = store_->GetWorker("prov/linux", "g", "req");
  EXPECT_EQ(req->state, WorkerState::kStopped);
  EXPECT_EQ(req->stop_reason, "registration-timeout");

  clock_.Advance(kStoppedWorkerRetention + absl::Minutes(1));
  auto deleted = store_->ExpireWorkers(100);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(deleted->deleted, 2);
  EXPECT_TRUE(HasErrorCode(store_->GetWorker("prov/linux", "g", "req").status(),
                           ErrorCode::kResourceNotFound));
}

TEST_F(WorkerStoreTest, ExpiredCredentialsStopTheWorker) {
  ASSERT_TRUE(store_->CreatePool("prov/linux", Config()).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "run", WorkerState::kRunning, 1).ok());
  clock_.Advance(absl::Hours(1));
  auto counts = store_->ExpireWorkers(100);
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(counts->credentials_expired, 1);
  auto w = store_->GetWorker("prov/linux", "g", "run");
  EXPECT_EQ(w->state, WorkerState::kStopped);
  EXPECT_EQ(w->stop_reason, "credentials-expired");
}

TEST_F(WorkerStoreTest, RotationReencryptsSecretsInResumableBatches) {
  auto k1 = crypto::KeyRing::GenerateEntry("k1");
  auto k2 = crypto::KeyRing::GenerateEntry("k2");
  ASSERT_TRUE(k1.ok() && k2.ok());
  auto old_ring = crypto::KeyRing::Parse(*k1, "old");
  auto new_ring = crypto::KeyRing::Parse(*k1 + "\n" + *k2, "new");
  ASSERT_TRUE(old_ring.ok() && new_ring.ok());
  ASSERT_TRUE(store_->CreatePool("prov/linux", Config()).ok());
  ASSERT_TRUE(store_->CreatePool("prov/mac", Config()).ok());
  // Three workers with a secret under k1 (two pools), one without any, and
  // one whose ciphertext belongs to another row (cannot decrypt here).
  const std::vector<std::pair<std::string, std::string>> keys = {
      {"prov/linux", "a"}, {"prov/linux", "b"}, {"prov/mac", "a"}};
  for (const auto& [pool, id] : keys) {
    ASSERT_TRUE(PutWorker(pool, id, WorkerState::kRunning, 1).ok());
  }
  ASSERT_TRUE(PutWorker("prov/mac", "none", WorkerState::kRequested, 1).ok());
  ASSERT_TRUE(PutWorker("prov/mac", "moved", WorkerState::kRunning, 1).ok());
  auto set_secret = [&](const std::string& pool, const std::string& id,
                        const std::string& ciphertext) {
    return store_->MutateWorker(
        pool, "g", id,
        [&](const PoolRecord&, const std::optional<WorkerRecord>& current)
            -> absl::StatusOr<WorkerRecord> {
          WorkerRecord w = *current;
          w.reregistration_secret = ciphertext;
          w.reregistration_key_id = "k1";
          return w;
        });
  };
  for (const auto& [pool, id] : keys) {
    const std::string path = pool + "/g/" + id;
    auto ct =
        old_ring->Encrypt("secret-of-" + path, ReregistrationSecretAd(path));
    ASSERT_TRUE(ct.ok());
    ASSERT_TRUE(set_secret(pool, id, *ct).ok());
  }
  auto foreign = old_ring->Encrypt("x", ReregistrationSecretAd("prov/mac/g/a"));
  ASSERT_TRUE(foreign.ok());
  ASSERT_TRUE(set_secret("prov/mac", "moved", *foreign).ok());

  // Interrupted after one batch of two, then resumed from its last key.
  auto first = store_->RotateBatch(*new_ring, "", 2);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->reencrypted, 2);
  EXPECT_EQ(first->last_key, "prov/linux/g/b");
  EXPECT_FALSE(first->done);
  auto counts = store_->CountByKeyId();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::map<std::string, int64_t>{{"k1", 2}, {"k2", 2}}));
  auto rest = store_->RotateBatch(*new_ring, first->last_key, 2);
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(rest->reencrypted, 1);
  EXPECT_EQ(rest->failed, (std::vector<std::string>{"prov/mac/g/moved"}));
  auto end = store_->RotateBatch(*new_ring, rest->last_key, 2);
  ASSERT_TRUE(end.ok());
  EXPECT_TRUE(end->done);
  EXPECT_EQ(end->reencrypted, 0);
  counts = store_->CountByKeyId();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ(*counts, (std::map<std::string, int64_t>{{"k1", 1}, {"k2", 3}}));

  auto k2_only = crypto::KeyRing::Parse(*k2, "k2-only");
  ASSERT_TRUE(k2_only.ok());
  for (const auto& [pool, id] : keys) {
    const std::string path = pool + "/g/" + id;
    auto w = store_->GetWorker(pool, "g", id);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->reregistration_key_id, "k2");
    auto plain = k2_only->Decrypt(w->reregistration_secret,
                                  ReregistrationSecretAd(path));
    ASSERT_TRUE(plain.ok()) << path << ": " << plain.status();
    EXPECT_EQ(*plain, "secret-of-" + path);
  }
  EXPECT_TRUE(store_->GetWorker("prov/mac", "g", "none")
                  ->reregistration_secret.empty());
  EXPECT_TRUE(
      HasErrorCode(store_->RotateBatch(*new_ring, "no-slashes", 2).status(),
                   ErrorCode::kInputError));
}

TEST_F(WorkerStoreTest, CountCapacityReadsTheOtherLiveWorkers) {
  ASSERT_TRUE(store_->CreatePool("prov/linux", Config()).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "a", WorkerState::kRunning, 3).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "b", WorkerState::kRequested, 2).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "c", WorkerState::kStopping, 4).ok());
  ASSERT_TRUE(PutWorker("prov/linux", "d", WorkerState::kStopped, 100).ok());
  std::optional<int64_t> seen;
  std::optional<int64_t> seen_without = 0;
  auto read = [&](const std::string& id, bool count,
                  std::optional<int64_t>* out) {
    return store_->MutateWorker(
        "prov/linux", "g", id,
        [&](const PoolRecord& pool, const std::optional<WorkerRecord>&)
            -> absl::StatusOr<WorkerRecord> {
          *out = pool.other_workers_capacity;
          return ConflictError("read only");
        },
        count);
  };
  // The mutations refuse, so they only read.
  EXPECT_TRUE(HasErrorCode(read("a", true, &seen).status(),
                           ErrorCode::kRequestConflict));
  EXPECT_EQ(seen, 6);  // b + c, not a itself, not the stopped d
  EXPECT_TRUE(HasErrorCode(read("new", true, &seen).status(),
                           ErrorCode::kRequestConflict));
  EXPECT_EQ(seen, 9);
  EXPECT_TRUE(HasErrorCode(read("a", false, &seen_without).status(),
                           ErrorCode::kRequestConflict));
  EXPECT_FALSE(seen_without.has_value());
  EXPECT_TRUE(HasErrorCode(store_->GetWorker("prov/linux", "g", "new").status(),
                           ErrorCode::kResourceNotFound));
}

}  // namespace
}  // namespace drover::queue::worker_manager
