// The WorkerManager service over loopback gRPC with real authentication
// (AuthTestEnv: real PostgreSQL, real keys, the real Queue service): pool
// CRUD and validation, static workers, registration with good and bad
// proofs, re-registration rotating its single-use secret, stopped and
// removed workers, the re-registration sunset, the registration timeout,
// quarantine, the scopes of a worker's credentials (claiming from its own
// pool only), replays of any remembered spent secret, `rotate-keys` over
// the re-registration secrets, and max_capacity at registration (also with
// registrations and creations racing from many threads).
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/app.h"
#include "client/environment.h"
#include "common/crypto/keyring.h"
#include "common/crypto/secret_file.h"
#include "common/rpc/grpc_status.h"
#include "common/slugid.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "drover/v1/queue.grpc.pb.h"
#include "drover/v1/secrets.grpc.pb.h"
#include "drover/v1/worker_manager.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"
#include "queue/auth/auth_system.h"
#include "queue/auth/testing/auth_test_env.h"
#include "queue/queue_service/conversions.h"
#include "queue/queue_service/executor.h"
#include "queue/worker_manager/worker_manager_system.h"
#include "worker/registration.h"

namespace drover::queue::worker_manager {
namespace {

using auth::testing::AuthTestEnv;
using auth::testing::NewContext;
using auth::testing::TestCredentials;
using queue_service::ToProtoTime;

absl::Status ToStatus(const grpc::Status& status) {
  return rpc::FromGrpcStatus(status);
}

class WorkerManagerServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = AuthTestEnv::Create();
    if (!env.ok()) {
      if (absl::IsUnavailable(env.status())) GTEST_SKIP() << env.status();
      FAIL() << env.status();
    }
    env_ = std::move(*env);
    WorkerManagerOptions options;
    options.connection_string = env_->connection_string();
    options.run_resolver = false;
    auto system = WorkerManagerSystem::Open(
        options, &env_->auth(), &env_->store(),
        use_system_clock_ ? static_cast<const Clock*>(&system_clock_)
                          : &clock_);
    ASSERT_TRUE(system.ok()) << system.status();
    system_ = std::move(*system);
    // The service on a gRPC server of its own, authorising with the same
    // AuthSystem as the queue server (one process in production).
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(system_->service());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    wm_target_ = "127.0.0.1:" + std::to_string(port);
    wm_ = v1::WorkerManager::NewStub(
        grpc::CreateChannel(wm_target_, grpc::InsecureChannelCredentials()));
    queue_ = v1::Queue::NewStub(env_->channel());
    secrets_ = v1::Secrets::NewStub(env_->channel());
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
    system_.reset();
  }

  v1::WorkerPoolConfig Config() {
    v1::WorkerPoolConfig c;
    c.set_owner("ops@example.com");
    c.set_description("linux builders");
    c.set_max_capacity(10);
    c.set_worker_config(R"({"capacity": 2})");
    return c;
  }

  absl::StatusOr<v1::WorkerPool> CreatePool(const std::string& id,
                                            const v1::WorkerPoolConfig& config,
                                            const TestCredentials& who) {
    v1::CreateWorkerPoolRequest request;
    request.set_worker_pool_id(id);
    *request.mutable_config() = config;
    v1::WorkerPool response;
    grpc::Status s =
        wm_->CreateWorkerPool(NewContext(who).get(), request, &response);
    if (!s.ok()) return ToStatus(s);
    return response;
  }

  absl::StatusOr<v1::CreateWorkerResponse> CreateWorker(const std::string& pool,
                                                        const std::string& id) {
    v1::CreateWorkerRequest request;
    request.set_worker_pool_id(pool);
    request.set_worker_group("g");
    request.set_worker_id(id);
    request.set_capacity(2);
    v1::CreateWorkerResponse response;
    grpc::Status s =
        wm_->CreateWorker(NewContext(env_->root()).get(), request, &response);
    if (!s.ok()) return ToStatus(s);
    return response;
  }

  absl::StatusOr<v1::RegisterWorkerResponse> Register(
      const std::string& pool, const std::string& id, const std::string& proof,
      bool supports_reregistration = true, int capacity = 0) {
    v1::RegisterWorkerRequest request;
    request.set_capacity(capacity);
    request.set_worker_pool_id(pool);
    request.set_worker_group("g");
    request.set_worker_id(id);
    request.set_proof(proof);
    request.set_supports_reregistration(supports_reregistration);
    request.mutable_facts()->set_hostname("host-" + id);
    request.mutable_facts()->set_worker_version("0.1.0");
    v1::RegisterWorkerResponse response;
    // No credentials at all.
    grpc::Status s =
        wm_->RegisterWorker(NewContext({}).get(), request, &response);
    if (!s.ok()) return ToStatus(s);
    return response;
  }

  // Sets a new pool registration secret and returns it.
  absl::StatusOr<std::string> ResetPoolSecret(const std::string& pool) {
    v1::ResetRegistrationSecretRequest request;
    request.set_worker_pool_id(pool);
    v1::ResetRegistrationSecretResponse response;
    grpc::Status s = wm_->ResetRegistrationSecret(
        NewContext(env_->root()).get(), request, &response);
    if (!s.ok()) return ToStatus(s);
    return response.registration_secret();
  }

  static TestCredentials As(const v1::RegisterWorkerResponse& r) {
    TestCredentials c;
    c.certificate = r.credentials().certificate();
    return c;
  }

  absl::StatusOr<v1::RegisterWorkerResponse> Reregister(
      const std::string& pool, const std::string& id, const std::string& secret,
      const TestCredentials& who) {
    v1::ReregisterWorkerRequest request;
    request.set_worker_pool_id(pool);
    request.set_worker_group("g");
    request.set_worker_id(id);
    request.set_reregistration_secret(secret);
    v1::RegisterWorkerResponse response;
    grpc::Status s =
        wm_->ReregisterWorker(NewContext(who).get(), request, &response);
    if (!s.ok()) return ToStatus(s);
    return response;
  }

  absl::StatusOr<v1::Worker> GetWorker(const std::string& pool,
                                       const std::string& id) {
    v1::WorkerKey key;
    key.set_worker_pool_id(pool);
    key.set_worker_group("g");
    key.set_worker_id(id);
    v1::Worker response;
    grpc::Status s =
        wm_->GetWorker(NewContext(env_->root()).get(), key, &response);
    if (!s.ok()) return ToStatus(s);
    return response;
  }

  // Quarantines worker g/`id` of "prov/linux" for an hour, saying `reason`.
  v1::QuarantineWorkerRequest QuarantineForAnHour(const std::string& id,
                                                  const std::string& reason) {
    v1::QuarantineWorkerRequest request;
    request.mutable_worker()->set_worker_pool_id("prov/linux");
    request.mutable_worker()->set_worker_group("g");
    request.mutable_worker()->set_worker_id(id);
    *request.mutable_quarantine_until() =
        ToProtoTime(clock_.Now() + absl::Hours(1));
    request.set_reason(reason);
    return request;
  }

  // Sets (or, without quarantine_until, lifts) a quarantine as root.
  absl::StatusOr<v1::Worker> Quarantine(
      const v1::QuarantineWorkerRequest& request) {
    v1::Worker response;
    grpc::Status s = wm_->QuarantineWorker(NewContext(env_->root()).get(),
                                           request, &response);
    if (!s.ok()) return ToStatus(s);
    return response;
  }

  absl::StatusOr<v1::WorkerPoolStats> Stats(const std::string& pool) {
    v1::WorkerPoolIdRequest request;
    request.set_worker_pool_id(pool);
    v1::WorkerPoolStats response;
    grpc::Status s = wm_->GetWorkerPoolStats(NewContext(env_->root()).get(),
                                             request, &response);
    if (!s.ok()) return ToStatus(s);
    return response;
  }

  // What RaceForCapacity saw.
  struct CapacityRace {
    // By contender i (worker g/c<i>).
    std::vector<absl::Status> results;
    // The largest total capacity the pool's statistics showed while the
    // contenders ran, and how often they were read.
    int64_t max_total_seen = 0;
    int samples = 0;
  };

  // Releases `contenders` callers at once on `pool`, each asking for
  // kRaceSlots (what CreateWorker above asks for): even ones create worker
  // g/c<i> (operator), odd ones register it with the pool secret `proof`. A
  // further thread reads the pool's statistics until all have answered.
  static constexpr int kRaceSlots = 2;
  CapacityRace RaceForCapacity(const std::string& pool,
                               const std::string& proof, int contenders) {
    CapacityRace race;
    race.results.resize(contenders);
    std::latch start(contenders + 1);
    std::atomic<bool> done{false};
    std::thread sampler([&] {
      start.arrive_and_wait();
      while (!done.load()) {
        auto stats = Stats(pool);
        if (!stats.ok()) continue;
        race.max_total_seen =
            std::max(race.max_total_seen, stats->total_capacity());
        ++race.samples;
      }
    });
    std::vector<std::thread> callers;
    for (int i = 0; i < contenders; ++i) {
      callers.emplace_back([&, i] {
        const std::string id = "c" + std::to_string(i);
        start.arrive_and_wait();
        race.results[i] =
            i % 2 == 0 ? CreateWorker(pool, id).status()
                       : Register(pool, id, proof, true, kRaceSlots).status();
      });
    }
    for (std::thread& t : callers) t.join();
    done = true;
    sampler.join();
    return race;
  }

  absl::StatusOr<v1::ClaimWorkResponse> Claim(const std::string& queue,
                                              const std::string& id,
                                              const TestCredentials& who) {
    v1::ClaimWorkRequest request;
    request.set_task_queue_id(queue);
    request.set_worker_group("g");
    request.set_worker_id(id);
    request.set_max_tasks(1);
    v1::ClaimWorkResponse response;
    grpc::Status s =
        queue_->ClaimWork(NewContext(who).get(), request, &response);
    if (!s.ok()) return ToStatus(s);
    return response;
  }

  absl::Status CreateTask(const std::string& queue) {
    v1::CreateTaskRequest request;
    request.set_task_id(NewSlugId());
    v1::TaskDefinition* task = request.mutable_task();
    task->set_task_queue_id(queue);
    const absl::Time now = absl::Now();
    *task->mutable_created() = ToProtoTime(now);
    *task->mutable_deadline() = ToProtoTime(now + absl::Hours(1));
    task->set_payload(R"({"command":["true"]})");
    task->mutable_metadata()->set_name("wm test");
    task->mutable_metadata()->set_description("worker manager test");
    task->mutable_metadata()->set_owner("tests@example.com");
    task->mutable_metadata()->set_source("https://example.com/wm");
    v1::CreateTaskResponse response;
    return ToStatus(
        queue_->CreateTask(NewContext(env_->root()).get(), request, &response));
  }

  // The service's clock: starts at real time so the certificates it
  // signs are valid for the real-clock verifier; tests move it for
  // timeouts.
  FakeClock clock_{absl::Now()};
  // Tests of the worker's Registrar need time to pass on the server too.
  bool use_system_clock_ = false;
  SystemClock system_clock_;
  std::string wm_target_;
  std::unique_ptr<AuthTestEnv> env_;
  std::unique_ptr<WorkerManagerSystem> system_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::WorkerManager::Stub> wm_;
  std::unique_ptr<v1::Queue::Stub> queue_;
  std::unique_ptr<v1::Secrets::Stub> secrets_;
};

TEST_F(WorkerManagerServiceTest, PoolCrudAndValidation) {
  auto created = CreatePool("prov/linux", Config(), env_->root());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->config().provider(), "static");
  EXPECT_EQ(created->config().reregistration_timeout_seconds(), 96 * 3600);
  EXPECT_EQ(created->config().registration_timeout_seconds(), 24 * 3600);
  EXPECT_EQ(created->config().worker_config(), R"({"capacity": 2})");
  EXPECT_TRUE(
      HasErrorCode(CreatePool("prov/linux", Config(), env_->root()).status(),
                   ErrorCode::kRequestConflict));

  struct Bad {
    std::string pool;
    std::function<void(v1::WorkerPoolConfig&)> change;
    std::string field;
  };
  const std::vector<Bad> bad = {
      {"nopool", [](auto&) {}, "worker_pool_id"},
      {"prov/x", [](auto& c) { c.set_owner(""); }, "config.owner"},
      {"prov/x", [](auto& c) { c.set_provider("aws"); }, "config.provider"},
      {"prov/x", [](auto& c) { c.set_min_capacity(11); },
       "config.max_capacity"},
      {"prov/x", [](auto& c) { c.set_min_capacity(-1); },
       "config.min_capacity"},
      {"prov/x", [](auto& c) { c.set_reregistration_timeout_seconds(10); },
       "config.reregistration_timeout_seconds"},
      {"prov/x",
       [](auto& c) { c.set_reregistration_timeout_seconds(31 * 86400); },
       "config.reregistration_timeout_seconds"},
      {"prov/x", [](auto& c) { c.set_registration_timeout_seconds(-5); },
       "config.registration_timeout_seconds"},
      {"prov/x", [](auto& c) { c.set_worker_config("[1]"); },
       "config.worker_config"},
  };
  for (const Bad& b : bad) {
    v1::WorkerPoolConfig c = Config();
    b.change(c);
    auto result = CreatePool(b.pool, c, env_->root());
    ASSERT_TRUE(HasErrorCode(result.status(), ErrorCode::kInputError))
        << b.field << ": " << result.status();
    EXPECT_EQ(GetErrorInfo(result.status()).details["field"], b.field)
        << result.status();
  }
  // Nothing was created by the bad requests.
  v1::ListWorkerPoolsResponse list;
  ASSERT_TRUE(wm_->ListWorkerPools(NewContext(env_->root()).get(),
                                   v1::ListWorkerPoolsRequest(), &list)
                  .ok());
  ASSERT_EQ(list.worker_pools_size(), 1);
  EXPECT_EQ(list.worker_pools(0).worker_pool_id(), "prov/linux");

  v1::UpdateWorkerPoolRequest update;
  update.set_worker_pool_id("prov/linux");
  *update.mutable_config() = Config();
  update.mutable_config()->set_max_capacity(50);
  v1::WorkerPool updated;
  ASSERT_TRUE(
      wm_->UpdateWorkerPool(NewContext(env_->root()).get(), update, &updated)
          .ok());
  EXPECT_EQ(updated.config().max_capacity(), 50);
  update.set_worker_pool_id("prov/none");
  grpc::Status missing =
      wm_->UpdateWorkerPool(NewContext(env_->root()).get(), update, &updated);
  EXPECT_TRUE(HasErrorCode(ToStatus(missing), ErrorCode::kResourceNotFound));

  // Without the scope: refused.
  auto weak = env_->CreateClient("weak", {"worker-manager:get-worker-pool:*"});
  ASSERT_TRUE(weak.ok()) << weak.status();
  EXPECT_TRUE(HasErrorCode(CreatePool("prov/mine", Config(), *weak).status(),
                           ErrorCode::kInsufficientScopes));
  v1::WorkerPoolIdRequest id;
  id.set_worker_pool_id("prov/linux");
  v1::WorkerPool got;
  ASSERT_TRUE(wm_->GetWorkerPool(NewContext(*weak).get(), id, &got).ok());
  EXPECT_EQ(got.config().max_capacity(), 50);

  v1::DeleteWorkerPoolResponse deleted;
  ASSERT_TRUE(
      wm_->DeleteWorkerPool(NewContext(env_->root()).get(), id, &deleted).ok());
  EXPECT_TRUE(HasErrorCode(
      ToStatus(wm_->GetWorkerPool(NewContext(env_->root()).get(), id, &got)),
      ErrorCode::kResourceNotFound));
}

TEST_F(WorkerManagerServiceTest, RegisterReregisterRotatesAndRefusesReplays) {
  ASSERT_TRUE(CreatePool("prov/linux", Config(), env_->root()).ok());
  auto created = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->worker().state(), "requested");
  EXPECT_TRUE(created->worker().has_static_secret());
  const std::string secret = created->static_secret();
  ASSERT_FALSE(secret.empty());
  EXPECT_TRUE(HasErrorCode(CreateWorker("prov/linux", "w1").status(),
                           ErrorCode::kRequestConflict));

  // Bad proofs.
  auto wrong = Register("prov/linux", "w1", secret + "x");
  EXPECT_TRUE(HasErrorCode(wrong.status(), ErrorCode::kAuthenticationFailed))
      << wrong.status();
  EXPECT_EQ(GetErrorInfo(wrong.status()).details["field"], "proof");
  EXPECT_TRUE(HasErrorCode(Register("prov/none", "w1", secret).status(),
                           ErrorCode::kResourceNotFound));
  EXPECT_TRUE(HasErrorCode(Register("prov/linux", "w2", secret).status(),
                           ErrorCode::kResourceNotFound));
  EXPECT_TRUE(HasErrorCode(Register("prov/linux", "w1", "").status(),
                           ErrorCode::kInputError));
  EXPECT_EQ(GetWorker("prov/linux", "w1")->state(), "requested");

  auto registered = Register("prov/linux", "w1", secret);
  ASSERT_TRUE(registered.ok()) << registered.status();
  EXPECT_EQ(registered->worker().state(), "running");
  EXPECT_EQ(registered->worker().capacity(), 2);
  EXPECT_EQ(registered->worker().facts().hostname(), "host-w1");
  EXPECT_EQ(registered->worker_config(), R"({"capacity": 2})");
  EXPECT_EQ(registered->credentials().client_id(), "worker/prov/linux/g/w1");
  EXPECT_NEAR(
      absl::ToDoubleHours(queue_service::FromProtoTime(
                              registered->credentials().expires(), "expires")
                              .value() -
                          clock_.Now()),
      96, 0.01);
  const std::string first = registered->reregistration_secret();
  ASSERT_FALSE(first.empty());

  auto second = Reregister("prov/linux", "w1", first, As(*registered));
  ASSERT_TRUE(second.ok()) << second.status();
  ASSERT_NE(second->reregistration_secret(), first);
  EXPECT_NE(second->credentials().certificate(),
            registered->credentials().certificate());

  // The used secret is refused as a replay, with the new credentials too.
  auto replay = Reregister("prov/linux", "w1", first, As(*second));
  EXPECT_TRUE(HasErrorCode(replay.status(), ErrorCode::kAuthenticationFailed))
      << replay.status();
  EXPECT_EQ(GetErrorInfo(replay.status()).details["reason"], "replayed");
  auto unknown = Reregister("prov/linux", "w1", "nonsense", As(*second));
  EXPECT_EQ(GetErrorInfo(unknown.status()).details["reason"], "unknown");
  // Nothing changed: the newest secret still works, once.
  auto third = Reregister("prov/linux", "w1", second->reregistration_secret(),
                          As(*second));
  ASSERT_TRUE(third.ok()) << third.status();

  // Without credentials, re-registration is refused before the secret is
  // even looked at; another worker's credentials are refused too.
  EXPECT_TRUE(HasErrorCode(
      Reregister("prov/linux", "w1", third->reregistration_secret(), {})
          .status(),
      ErrorCode::kAuthenticationFailed));
  ASSERT_TRUE(CreateWorker("prov/linux", "w2").ok());
  auto w2_secret = CreateWorker("prov/linux", "w3");
  ASSERT_TRUE(w2_secret.ok());
  auto w3 = Register("prov/linux", "w3", w2_secret->static_secret());
  ASSERT_TRUE(w3.ok()) << w3.status();
  auto foreign =
      Reregister("prov/linux", "w1", third->reregistration_secret(), As(*w3));
  EXPECT_TRUE(HasErrorCode(foreign.status(), ErrorCode::kInsufficientScopes))
      << foreign.status();

  // Credentials expired (service clock moved past them): refused as such.
  clock_.Advance(absl::Hours(97));
  auto expired = Reregister("prov/linux", "w1", third->reregistration_secret(),
                            As(*third));
  EXPECT_TRUE(HasErrorCode(expired.status(), ErrorCode::kResourceExpired))
      << expired.status();
}

TEST_F(WorkerManagerServiceTest, StoppedRemovedAndTimedOutWorkersAreRefused) {
  v1::WorkerPoolConfig config = Config();
  config.set_registration_timeout_seconds(3600);
  ASSERT_TRUE(CreatePool("prov/linux", config, env_->root()).ok());
  auto w1 = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(w1.ok());
  auto registered = Register("prov/linux", "w1", w1->static_secret());
  ASSERT_TRUE(registered.ok()) << registered.status();

  // Removal: stopping, told to stop, no re-registration, no registration.
  v1::WorkerKey key;
  key.set_worker_pool_id("prov/linux");
  key.set_worker_group("g");
  key.set_worker_id("w1");
  v1::RemoveWorkerResponse removed;
  ASSERT_TRUE(
      wm_->RemoveWorker(NewContext(env_->root()).get(), key, &removed).ok());
  EXPECT_EQ(removed.worker().state(), "stopping");
  v1::WorkerHeartbeatRequest beat;
  *beat.mutable_worker() = key;
  v1::WorkerHeartbeatResponse told;
  ASSERT_TRUE(
      wm_->WorkerHeartbeat(NewContext(As(*registered)).get(), beat, &told)
          .ok());
  EXPECT_TRUE(told.stop());
  auto again = Reregister("prov/linux", "w1",
                          registered->reregistration_secret(), As(*registered));
  EXPECT_TRUE(HasErrorCode(again.status(), ErrorCode::kRequestConflict))
      << again.status();
  EXPECT_TRUE(
      HasErrorCode(Register("prov/linux", "w1", w1->static_secret()).status(),
                   ErrorCode::kRequestConflict));
  v1::WorkerShutdownResponse shut;
  ASSERT_TRUE(
      wm_->WorkerShutdown(NewContext(As(*registered)).get(), key, &shut).ok());
  EXPECT_EQ(GetWorker("prov/linux", "w1")->state(), "stopped");
  auto stopped = Register("prov/linux", "w1", w1->static_secret());
  EXPECT_TRUE(HasErrorCode(stopped.status(), ErrorCode::kRequestConflict))
      << stopped.status();
  // Created again, the removed worker is readmitted with a new static
  // secret; the old one no longer proves anything.
  auto recreated = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(recreated.ok()) << recreated.status();
  EXPECT_EQ(recreated->worker().state(), "requested");
  ASSERT_NE(recreated->static_secret(), w1->static_secret());
  EXPECT_TRUE(
      HasErrorCode(Register("prov/linux", "w1", w1->static_secret()).status(),
                   ErrorCode::kAuthenticationFailed));
  auto readmitted = Register("prov/linux", "w1", recreated->static_secret());
  ASSERT_TRUE(readmitted.ok()) << readmitted.status();
  EXPECT_EQ(readmitted->worker().state(), "running");
  // A worker that is not stopped cannot be created over.
  EXPECT_TRUE(HasErrorCode(CreateWorker("prov/linux", "w1").status(),
                           ErrorCode::kRequestConflict));

  // A worker that shut down by itself comes back with its static proof.
  auto w2 = CreateWorker("prov/linux", "w2");
  ASSERT_TRUE(w2.ok());
  auto r2 = Register("prov/linux", "w2", w2->static_secret());
  ASSERT_TRUE(r2.ok());
  key.set_worker_id("w2");
  ASSERT_TRUE(wm_->WorkerShutdown(NewContext(As(*r2)).get(), key, &shut).ok());
  auto stale =
      Reregister("prov/linux", "w2", r2->reregistration_secret(), As(*r2));
  EXPECT_TRUE(HasErrorCode(stale.status(), ErrorCode::kRequestConflict));
  auto back = Register("prov/linux", "w2", w2->static_secret());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->worker().state(), "running");

  // Registration after the registration timeout.
  auto w3 = CreateWorker("prov/linux", "w3");
  ASSERT_TRUE(w3.ok());
  clock_.Advance(absl::Minutes(61));
  auto late = Register("prov/linux", "w3", w3->static_secret());
  EXPECT_TRUE(HasErrorCode(late.status(), ErrorCode::kResourceExpired))
      << late.status();
  EXPECT_EQ(GetWorker("prov/linux", "w3")->state(), "requested");
}

TEST_F(WorkerManagerServiceTest, SunsetAndPoolRegistrationSecret) {
  v1::WorkerPoolConfig config = Config();
  *config.mutable_reregistration_sunset() =
      ToProtoTime(clock_.Now() - absl::Minutes(1));
  ASSERT_TRUE(CreatePool("prov/linux", config, env_->root()).ok());
  v1::ResetRegistrationSecretRequest reset;
  reset.set_worker_pool_id("prov/linux");
  v1::ResetRegistrationSecretResponse pool_secret;
  ASSERT_TRUE(wm_->ResetRegistrationSecret(NewContext(env_->root()).get(),
                                           reset, &pool_secret)
                  .ok());
  ASSERT_FALSE(pool_secret.registration_secret().empty());

  auto old =
      Register("prov/linux", "any-1", pool_secret.registration_secret(), false);
  EXPECT_TRUE(HasErrorCode(old.status(), ErrorCode::kInputError))
      << old.status();
  EXPECT_EQ(GetErrorInfo(old.status()).details["field"],
            "supports_reregistration");
  EXPECT_TRUE(HasErrorCode(GetWorker("prov/linux", "any-1").status(),
                           ErrorCode::kResourceNotFound));

  auto modern =
      Register("prov/linux", "any-1", pool_secret.registration_secret(), true);
  ASSERT_TRUE(modern.ok()) << modern.status();
  EXPECT_FALSE(modern->worker().has_static_secret());

  // Removing the pool secret stops further registrations with it.
  reset.set_remove(true);
  ASSERT_TRUE(wm_->ResetRegistrationSecret(NewContext(env_->root()).get(),
                                           reset, &pool_secret)
                  .ok());
  EXPECT_FALSE(Register("prov/linux", "any-2", "whatever", true).ok());
}

TEST_F(WorkerManagerServiceTest,
       CredentialsClaimOnlyFromTheirPoolAsThemselves) {
  ASSERT_TRUE(CreatePool("prov/linux", Config(), env_->root()).ok());
  ASSERT_TRUE(CreatePool("prov/mac", Config(), env_->root()).ok());
  auto w1 = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(w1.ok());
  auto registered = Register("prov/linux", "w1", w1->static_secret());
  ASSERT_TRUE(registered.ok()) << registered.status();
  ASSERT_TRUE(CreateTask("prov/linux").ok());
  ASSERT_TRUE(CreateTask("prov/mac").ok());

  auto claimed = Claim("prov/linux", "w1", As(*registered));
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->tasks_size(), 1);
  EXPECT_TRUE(HasErrorCode(Claim("prov/mac", "w1", As(*registered)).status(),
                           ErrorCode::kInsufficientScopes));
  EXPECT_TRUE(HasErrorCode(Claim("prov/linux", "w9", As(*registered)).status(),
                           ErrorCode::kInsufficientScopes));

  // The pool's secrets are readable; others are not.
  v1::SetSecretRequest set;
  set.set_name("worker-pool:prov/linux/token");
  set.set_value(R"("s3cret")");
  v1::SetSecretResponse set_response;
  ASSERT_TRUE(
      secrets_->SetSecret(NewContext(env_->root()).get(), set, &set_response)
          .ok());
  set.set_name("worker-pool:prov/mac/token");
  ASSERT_TRUE(
      secrets_->SetSecret(NewContext(env_->root()).get(), set, &set_response)
          .ok());
  v1::SecretNameRequest get;
  get.set_name("worker-pool:prov/linux/token");
  v1::GetSecretResponse value;
  EXPECT_TRUE(
      secrets_->GetSecret(NewContext(As(*registered)).get(), get, &value).ok());
  get.set_name("worker-pool:prov/mac/token");
  EXPECT_TRUE(HasErrorCode(ToStatus(secrets_->GetSecret(
                               NewContext(As(*registered)).get(), get, &value)),
                           ErrorCode::kInsufficientScopes));

  // Heartbeats record the claim; stats see the running task; removal
  // resolves it worker-shutdown at once.
  v1::WorkerHeartbeatRequest beat;
  beat.mutable_worker()->set_worker_pool_id("prov/linux");
  beat.mutable_worker()->set_worker_group("g");
  beat.mutable_worker()->set_worker_id("w1");
  const std::string run = claimed->tasks(0).task_id() + "/" +
                          std::to_string(claimed->tasks(0).run_id());
  beat.add_claimed(run);
  v1::WorkerHeartbeatResponse told;
  ASSERT_TRUE(
      wm_->WorkerHeartbeat(NewContext(As(*registered)).get(), beat, &told)
          .ok());
  auto worker = GetWorker("prov/linux", "w1");
  ASSERT_TRUE(worker.ok());
  ASSERT_EQ(worker->recent_tasks_size(), 1);
  EXPECT_EQ(worker->recent_tasks(0), run);
  EXPECT_EQ(worker->running_tasks(), 1);
  EXPECT_TRUE(worker->has_first_claim());

  v1::WorkerPoolIdRequest id;
  id.set_worker_pool_id("prov/linux");
  v1::WorkerPoolStats stats;
  ASSERT_TRUE(
      wm_->GetWorkerPoolStats(NewContext(env_->root()).get(), id, &stats).ok());
  EXPECT_EQ(stats.running_workers(), 1);
  EXPECT_EQ(stats.running_tasks(), 1);
  EXPECT_EQ(stats.total_capacity(), 2);
  EXPECT_EQ(stats.idle_capacity(), 1);

  v1::RemoveWorkerResponse removed;
  ASSERT_TRUE(
      wm_->RemoveWorker(NewContext(env_->root()).get(), beat.worker(), &removed)
          .ok());
  EXPECT_EQ(removed.resolved_runs(), 1);
  v1::TaskIdRequest task;
  task.set_task_id(claimed->tasks(0).task_id());
  v1::TaskStatusResponse status;
  ASSERT_TRUE(
      queue_->GetTaskStatus(NewContext(env_->root()).get(), task, &status)
          .ok());
  ASSERT_GE(status.status().runs_size(), 2);
  EXPECT_EQ(status.status().runs(0).reason_resolved(), "worker-shutdown");
  EXPECT_EQ(status.status().runs(1).state(), "pending");
}

TEST_F(WorkerManagerServiceTest, QuarantineNeedsAReasonAndAKnownWorker) {
  ASSERT_TRUE(CreatePool("prov/linux", Config(), env_->root()).ok());
  ASSERT_TRUE(CreateWorker("prov/linux", "w1").ok());
  v1::QuarantineWorkerRequest request =
      QuarantineForAnHour("nobody", "bad disk");
  v1::Worker response;
  EXPECT_TRUE(
      HasErrorCode(ToStatus(wm_->QuarantineWorker(
                       NewContext(env_->root()).get(), request, &response)),
                   ErrorCode::kResourceNotFound));
  request.mutable_worker()->set_worker_id("w1");
  request.set_reason("");
  EXPECT_TRUE(
      HasErrorCode(ToStatus(wm_->QuarantineWorker(
                       NewContext(env_->root()).get(), request, &response)),
                   ErrorCode::kInputError));
  request.set_reason("bad disk");
  ASSERT_TRUE(
      wm_->QuarantineWorker(NewContext(env_->root()).get(), request, &response)
          .ok());
  EXPECT_EQ(response.quarantine_reason(), "bad disk");
  EXPECT_TRUE(response.has_quarantine_until());
  v1::ListWorkersRequest list;
  list.set_worker_pool_id("prov/linux");
  v1::ListWorkersResponse listed;
  ASSERT_TRUE(
      wm_->ListWorkers(NewContext(env_->root()).get(), list, &listed).ok());
  ASSERT_EQ(listed.workers_size(), 1);
  EXPECT_EQ(listed.workers(0).quarantine_reason(), "bad disk");
}

TEST_F(WorkerManagerServiceTest, QuarantineOutlivesStoppingAndRecreation) {
  ASSERT_TRUE(CreatePool("prov/linux", Config(), env_->root()).ok());
  auto created = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(created.ok());
  auto registered = Register("prov/linux", "w1", created->static_secret());
  ASSERT_TRUE(registered.ok()) << registered.status();
  v1::QuarantineWorkerRequest quarantine =
      QuarantineForAnHour("w1", "bad disk");
  ASSERT_TRUE(Quarantine(quarantine).ok());
  const v1::WorkerKey& key = quarantine.worker();

  // Shut down by itself, then registering afresh: still quarantined.
  v1::WorkerShutdownResponse shut;
  ASSERT_TRUE(
      wm_->WorkerShutdown(NewContext(As(*registered)).get(), key, &shut).ok());
  auto back = Register("prov/linux", "w1", created->static_secret());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(GetWorker("prov/linux", "w1")->quarantine_reason(), "bad disk");

  // Removed, stopped and created again by an operator: still quarantined,
  // and so after it registers with its new secret.
  v1::RemoveWorkerResponse removed;
  ASSERT_TRUE(
      wm_->RemoveWorker(NewContext(env_->root()).get(), key, &removed).ok());
  ASSERT_TRUE(
      wm_->WorkerShutdown(NewContext(As(*back)).get(), key, &shut).ok());
  ASSERT_EQ(GetWorker("prov/linux", "w1")->state(), "stopped");
  auto recreated = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(recreated.ok()) << recreated.status();
  EXPECT_EQ(recreated->worker().quarantine_reason(), "bad disk");
  EXPECT_TRUE(recreated->worker().has_quarantine_until());
  auto readmitted = Register("prov/linux", "w1", recreated->static_secret());
  ASSERT_TRUE(readmitted.ok()) << readmitted.status();
  EXPECT_EQ(GetWorker("prov/linux", "w1")->quarantine_reason(), "bad disk");

  // Lifting is explicit.
  quarantine.clear_quarantine_until();
  quarantine.set_reason("");
  auto lifted = Quarantine(quarantine);
  ASSERT_TRUE(lifted.ok()) << lifted.status();
  EXPECT_FALSE(lifted->has_quarantine_until());
  EXPECT_EQ(GetWorker("prov/linux", "w1")->quarantine_reason(), "");
}

TEST_F(WorkerManagerServiceTest, AnySpentSecretIsRefusedAsReplayed) {
  ASSERT_TRUE(CreatePool("prov/linux", Config(), env_->root()).ok());
  auto created = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(created.ok()) << created.status();
  auto registered = Register("prov/linux", "w1", created->static_secret());
  ASSERT_TRUE(registered.ok()) << registered.status();

  // secrets[0] from the registration, then five rotations: secrets[0..4]
  // are spent, secrets[5] is current.
  std::vector<std::string> secrets = {registered->reregistration_secret()};
  v1::RegisterWorkerResponse latest = *registered;
  for (int i = 0; i < 5; ++i) {
    auto next = Reregister("prov/linux", "w1", secrets.back(), As(latest));
    ASSERT_TRUE(next.ok()) << i << ": " << next.status();
    latest = *next;
    secrets.push_back(latest.reregistration_secret());
  }
  for (int spent = 0; spent < 5; ++spent) {
    auto replay = Reregister("prov/linux", "w1", secrets[spent], As(latest));
    ASSERT_TRUE(HasErrorCode(replay.status(), ErrorCode::kAuthenticationFailed))
        << spent << ": " << replay.status();
    ErrorInfo info = GetErrorInfo(replay.status());
    EXPECT_EQ(info.details["reason"], "replayed") << spent;
    EXPECT_EQ(info.details["field"], "reregistration_secret");
    EXPECT_EQ(info.details["spent_generations_ago"], std::to_string(5 - spent));
    EXPECT_NE(info.message.find("already used " + std::to_string(5 - spent) +
                                " re-registration(s) ago"),
              std::string::npos)
        << info.message;
  }
  auto unknown =
      Reregister("prov/linux", "w1", secrets[0] + "-not-it", As(latest));
  EXPECT_EQ(GetErrorInfo(unknown.status()).details["reason"], "unknown");

  // The database holds keyed hashes of spent secrets, never the secrets.
  {
    pqxx::connection conn(env_->connection_string());
    pqxx::nontransaction txn(conn);
    pqxx::result rows = txn.exec(
        "SELECT cardinality(spent_secret_hashes) FROM workers "
        "WHERE worker_id = 'w1'");
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0][0].as<int>(), 5);
  }
  {
    pqxx::connection conn(env_->connection_string());
    pqxx::nontransaction txn(conn);
    for (const auto& row :
         txn.exec("SELECT unnest(spent_secret_hashes) FROM workers")) {
      const std::string hash = pqxx::binarystring(row[0]).str();
      EXPECT_EQ(hash.size(), 32u);
      for (const std::string& secret : secrets) {
        EXPECT_EQ(hash.find(secret), std::string::npos);
      }
    }
  }

  // Refusals changed nothing: the current secret still works.
  auto ok = Reregister("prov/linux", "w1", secrets.back(), As(latest));
  ASSERT_TRUE(ok.ok()) << ok.status();
  latest = *ok;
  secrets.push_back(latest.reregistration_secret());

  // The history is bounded: after kMaxSpentSecrets newer spends, the first
  // secret is forgotten (then merely wrong), the second still replayed.
  while (secrets.size() < kMaxSpentSecrets + 2) {
    auto next = Reregister("prov/linux", "w1", secrets.back(), As(latest));
    ASSERT_TRUE(next.ok()) << next.status();
    latest = *next;
    secrets.push_back(latest.reregistration_secret());
  }
  // secrets[0 .. size-2] are spent: size-1 of them, one more than kept.
  auto forgotten = Reregister("prov/linux", "w1", secrets[0], As(latest));
  EXPECT_EQ(GetErrorInfo(forgotten.status()).details["reason"], "unknown")
      << forgotten.status();
  auto oldest_kept = Reregister("prov/linux", "w1", secrets[1], As(latest));
  EXPECT_EQ(GetErrorInfo(oldest_kept.status()).details["reason"], "replayed")
      << oldest_kept.status();
  EXPECT_EQ(GetErrorInfo(oldest_kept.status()).details["spent_generations_ago"],
            std::to_string(kMaxSpentSecrets));
}

TEST_F(WorkerManagerServiceTest, RotateKeysCoversReregistrationSecrets) {
  ASSERT_TRUE(CreatePool("prov/linux", Config(), env_->root()).ok());
  auto created = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(created.ok()) << created.status();
  auto registered = Register("prov/linux", "w1", created->static_secret());
  ASSERT_TRUE(registered.ok()) << registered.status();
  ASSERT_TRUE(CreateWorker("prov/linux", "w2").ok());  // no secret yet

  // A key ring with a new last key k2, as an operator appends it.
  const crypto::KeyRing& old_ring = env_->auth().keys().keyring;
  ASSERT_EQ(old_ring.current_key_id(), "k1");
  auto old_file =
      crypto::ReadSecretFile(env_->data_dir() + "/keys/crypto-keys");
  ASSERT_TRUE(old_file.ok()) << old_file.status();
  std::string old_entries;
  std::istringstream lines(*old_file);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') old_entries += line + ",";
  }
  auto k2 = crypto::KeyRing::GenerateEntry("k2");
  ASSERT_TRUE(k2.ok()) << k2.status();

  // The rotate-keys command over the auth columns and the worker store.
  auth::AuthConfig config;
  config.crypto_keys.keys = old_entries + *k2;
  config.batch = 1;
  std::ostringstream out;
  absl::Status rotated = auth::RotateKeysCommand(
      config, env_->data_dir(), env_->connection_string(), &clock_, out,
      {&system_->store()});
  ASSERT_TRUE(rotated.ok()) << rotated << "\n" << out.str();
  EXPECT_NE(out.str().find("workers.reregistration_secret: 1 re-encrypted; 1 "
                           "under k2"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("every encrypted value is under key k2"),
            std::string::npos)
      << out.str();
  auto counts = system_->store().CountByKeyId();
  ASSERT_TRUE(counts.ok()) << counts.status();
  EXPECT_EQ(*counts, (std::map<std::string, int64_t>{{"k2", 1}}));
  auto stored = system_->store().GetWorker("prov/linux", "g", "w1");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->reregistration_key_id, "k2");
  const std::string path = "prov/linux/g/w1";
  EXPECT_FALSE(
      old_ring
          .Decrypt(stored->reregistration_secret, ReregistrationSecretAd(path))
          .ok());

  // A WorkerManager that knows only k2 (the old key removed from its
  // configuration) re-registers the worker with the secret it holds.
  auto new_only = crypto::KeyRing::Parse(*k2 + "\n", "k2-only");
  ASSERT_TRUE(new_only.ok()) << new_only.status();
  queue_service::BoundedExecutor executor(2, 64);
  WorkerManagerDeps deps;
  deps.store = &system_->store();
  deps.tasks = &env_->store();
  deps.keyring = &*new_only;
  deps.hasher = &env_->auth().keys().token_hasher;
  deps.certificates = &env_->auth().certificate_issuer();
  deps.authorizer = env_->auth().authorizer();
  deps.clock = &clock_;
  deps.executor = &executor;
  WorkerManagerService service(deps);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  auto stub = v1::WorkerManager::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  v1::ReregisterWorkerRequest request;
  request.set_worker_pool_id("prov/linux");
  request.set_worker_group("g");
  request.set_worker_id("w1");
  request.set_reregistration_secret(registered->reregistration_secret());
  v1::RegisterWorkerResponse renewed;
  grpc::Status s = stub->ReregisterWorker(NewContext(As(*registered)).get(),
                                          request, &renewed);
  EXPECT_TRUE(s.ok()) << ToStatus(s);
  EXPECT_FALSE(renewed.reregistration_secret().empty());
  // And again with the secret it got, still without k1.
  request.set_reregistration_secret(renewed.reregistration_secret());
  v1::RegisterWorkerResponse again;
  s = stub->ReregisterWorker(NewContext(As(renewed)).get(), request, &again);
  EXPECT_TRUE(s.ok()) << ToStatus(s);
  server->Shutdown();
  executor.Shutdown();
}

TEST_F(WorkerManagerServiceTest, RegistrationRespectsMaxCapacity) {
  v1::WorkerPoolConfig config = Config();
  config.set_min_capacity(5);
  config.set_max_capacity(5);
  ASSERT_TRUE(CreatePool("prov/linux", config, env_->root()).ok());
  auto pool_secret = ResetPoolSecret("prov/linux");
  ASSERT_TRUE(pool_secret.ok()) << pool_secret.status();
  const std::string proof = *pool_secret;

  auto stats = [&]() {
    auto out = Stats("prov/linux");
    EXPECT_TRUE(out.ok()) << out.status();
    return out.value_or(v1::WorkerPoolStats{});
  };
  auto a = Register("prov/linux", "a", proof, true, 2);
  ASSERT_TRUE(a.ok()) << a.status();
  auto b = Register("prov/linux", "b", proof, true, 2);
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(stats().total_capacity(), 4);
  EXPECT_TRUE(stats().below_min_capacity());

  // 4 + 2 > 5: refused, naming the numbers, and nothing written.
  auto c = Register("prov/linux", "c", proof, true, 2);
  ASSERT_TRUE(HasErrorCode(c.status(), ErrorCode::kRequestConflict))
      << c.status();
  EXPECT_EQ(c.status().code(), absl::StatusCode::kFailedPrecondition);
  ErrorInfo info = GetErrorInfo(c.status());
  EXPECT_EQ(info.details["reason"], "max-capacity");
  EXPECT_EQ(info.details["max_capacity"], "5");
  EXPECT_EQ(info.details["current_capacity"], "4");
  EXPECT_EQ(info.details["requested_capacity"], "2");
  EXPECT_EQ(info.details["worker_id"], "c");
  EXPECT_NE(info.message.find("max_capacity of 5"), std::string::npos)
      << info.message;
  EXPECT_NE(info.message.find("g/c asks for 2"), std::string::npos)
      << info.message;
  EXPECT_TRUE(HasErrorCode(GetWorker("prov/linux", "c").status(),
                           ErrorCode::kResourceNotFound));
  EXPECT_EQ(stats().total_capacity(), 4);

  // A worker registering again is counted once: a grows from 2 to 3.
  auto a_again = Register("prov/linux", "a", proof, true, 3);
  ASSERT_TRUE(a_again.ok()) << a_again.status();
  EXPECT_EQ(GetWorker("prov/linux", "a")->capacity(), 3);
  EXPECT_EQ(stats().total_capacity(), 5);
  EXPECT_FALSE(stats().below_min_capacity());
  // ... but not beyond the maximum (2 + 4 > 5); a keeps its 3.
  auto a_too_big = Register("prov/linux", "a", proof, true, 4);
  EXPECT_TRUE(HasErrorCode(a_too_big.status(), ErrorCode::kRequestConflict))
      << a_too_big.status();
  EXPECT_EQ(GetWorker("prov/linux", "a")->capacity(), 3);
  EXPECT_EQ(GetWorker("prov/linux", "a")->state(), "running");

  // A stopped worker frees its capacity.
  v1::WorkerKey key;
  key.set_worker_pool_id("prov/linux");
  key.set_worker_group("g");
  key.set_worker_id("b");
  v1::WorkerShutdownResponse shut;
  ASSERT_TRUE(wm_->WorkerShutdown(NewContext(As(*b)).get(), key, &shut).ok());
  EXPECT_EQ(stats().total_capacity(), 3);
  EXPECT_TRUE(stats().below_min_capacity());
  auto c_now = Register("prov/linux", "c", proof, true, 2);
  ASSERT_TRUE(c_now.ok()) << c_now.status();
  EXPECT_EQ(stats().total_capacity(), 5);

  // Creating a worker is held to the same limit (5 + 2 > 5).
  auto e = CreateWorker("prov/linux", "e");
  EXPECT_TRUE(HasErrorCode(e.status(), ErrorCode::kRequestConflict))
      << e.status();
  EXPECT_EQ(GetErrorInfo(e.status()).details["current_capacity"], "5");
  EXPECT_TRUE(HasErrorCode(GetWorker("prov/linux", "e").status(),
                           ErrorCode::kResourceNotFound));

  // max_capacity 0 means no limit.
  v1::UpdateWorkerPoolRequest update;
  update.set_worker_pool_id("prov/linux");
  *update.mutable_config() = Config();
  update.mutable_config()->set_max_capacity(0);
  v1::WorkerPool updated;
  ASSERT_TRUE(
      wm_->UpdateWorkerPool(NewContext(env_->root()).get(), update, &updated)
          .ok());
  auto d = Register("prov/linux", "d", proof, true, 50);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(stats().total_capacity(), 55);

  // A minimum with no maximum is a floor without a ceiling.
  update.mutable_config()->set_min_capacity(8);
  ASSERT_TRUE(
      wm_->UpdateWorkerPool(NewContext(env_->root()).get(), update, &updated)
          .ok());
  EXPECT_EQ(updated.config().min_capacity(), 8);
  EXPECT_EQ(updated.config().max_capacity(), 0);

  // min above a non-zero max is refused on update, and changes nothing.
  update.mutable_config()->set_min_capacity(8);
  update.mutable_config()->set_max_capacity(4);
  grpc::Status bad =
      wm_->UpdateWorkerPool(NewContext(env_->root()).get(), update, &updated);
  EXPECT_TRUE(HasErrorCode(ToStatus(bad), ErrorCode::kInputError));
  EXPECT_EQ(GetErrorInfo(ToStatus(bad)).details["field"],
            "config.max_capacity");
  EXPECT_EQ(stats().max_capacity(), 0);
  EXPECT_EQ(stats().min_capacity(), 8);
}

// Creations and registrations racing for one pool's capacity: its
// capacity lock makes each count what the others committed, so exactly as
// many fit as max_capacity allows and the rest are refused, each naming
// the full pool; no moment shows more than the maximum.
TEST_F(WorkerManagerServiceTest, RacingRegistrationsNeverExceedMaxCapacity) {
  constexpr int kMax = 9;
  constexpr int kContenders = 16;
  constexpr int kFit = kMax / kRaceSlots;  // 4; one slot stays free
  v1::WorkerPoolConfig config = Config();
  config.set_max_capacity(kMax);
  ASSERT_TRUE(CreatePool("prov/linux", config, env_->root()).ok());
  auto proof = ResetPoolSecret("prov/linux");
  ASSERT_TRUE(proof.ok()) << proof.status();

  CapacityRace race = RaceForCapacity("prov/linux", *proof, kContenders);
  int created = 0;
  int registered = 0;
  for (int i = 0; i < kContenders; ++i) {
    const std::string id = "c" + std::to_string(i);
    const absl::Status& s = race.results[i];
    auto worker = GetWorker("prov/linux", id);
    if (s.ok()) {
      ++(i % 2 == 0 ? created : registered);
      ASSERT_TRUE(worker.ok()) << id << ": " << worker.status();
      EXPECT_EQ(worker->capacity(), kRaceSlots) << id;
      EXPECT_EQ(worker->state(), i % 2 == 0 ? "requested" : "running") << id;
      continue;
    }
    // Refused only once the others fill the pool: 8 taken, 8 + 2 > 9.
    ASSERT_TRUE(HasErrorCode(s, ErrorCode::kRequestConflict))
        << id << ": " << s;
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << id;
    ErrorInfo info = GetErrorInfo(s);
    EXPECT_EQ(info.details["field"], "capacity") << id;
    EXPECT_EQ(info.details["reason"], "max-capacity") << id;
    EXPECT_EQ(info.details["worker_pool_id"], "prov/linux") << id;
    EXPECT_EQ(info.details["worker_id"], id);
    EXPECT_EQ(info.details["max_capacity"], std::to_string(kMax)) << id;
    EXPECT_EQ(info.details["current_capacity"],
              std::to_string(kFit * kRaceSlots))
        << id;
    EXPECT_EQ(info.details["requested_capacity"], std::to_string(kRaceSlots))
        << id;
    // A refused contender leaves no row behind.
    EXPECT_TRUE(HasErrorCode(worker.status(), ErrorCode::kResourceNotFound))
        << id << ": " << worker.status();
  }
  EXPECT_EQ(created + registered, kFit);
  EXPECT_GT(race.samples, 0);
  EXPECT_LE(race.max_total_seen, kMax);
  auto stats = Stats("prov/linux");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->total_capacity(), kFit * kRaceSlots);
  EXPECT_EQ(stats->requested_workers(), created);
  EXPECT_EQ(stats->running_workers(), registered);
}

// Without max_capacity (0) the same race admits every contender.
TEST_F(WorkerManagerServiceTest, RacingRegistrationsWithoutMaximumAllFit) {
  constexpr int kContenders = 16;
  v1::WorkerPoolConfig config = Config();
  config.set_max_capacity(0);
  ASSERT_TRUE(CreatePool("prov/linux", config, env_->root()).ok());
  auto proof = ResetPoolSecret("prov/linux");
  ASSERT_TRUE(proof.ok()) << proof.status();

  CapacityRace race = RaceForCapacity("prov/linux", *proof, kContenders);
  for (int i = 0; i < kContenders; ++i) {
    EXPECT_TRUE(race.results[i].ok()) << "c" << i << ": " << race.results[i];
    auto worker = GetWorker("prov/linux", "c" + std::to_string(i));
    ASSERT_TRUE(worker.ok()) << worker.status();
    EXPECT_EQ(worker->capacity(), kRaceSlots);
  }
  auto stats = Stats("prov/linux");
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->max_capacity(), 0);
  EXPECT_EQ(stats->total_capacity(), kContenders * kRaceSlots);
  EXPECT_EQ(stats->requested_workers(), kContenders / 2);
  EXPECT_EQ(stats->running_workers(), kContenders / 2);
}

// ClaimWork asks the worker manager: a quarantined worker gets nothing
// although work is pending, another worker of the pool gets it, and a
// claim is recorded on the worker's row (first claim, recent tasks, last
// seen). A worker the manager does not know (fixed credentials) claims as
// before.
TEST_F(WorkerManagerServiceTest, QuarantinedWorkerClaimsNothing) {
  env_->server().queue_service().SetWorkerGate(system_->claim_gate());
  ASSERT_TRUE(CreatePool("prov/linux", Config(), env_->root()).ok());
  ASSERT_TRUE(CreateWorker("prov/linux", "w1").ok());
  ASSERT_TRUE(CreateWorker("prov/linux", "w2").ok());
  ASSERT_TRUE(CreateTask("prov/linux").ok());

  v1::QuarantineWorkerRequest quarantine =
      QuarantineForAnHour("w1", "flaky disk");
  ASSERT_TRUE(Quarantine(quarantine).ok());

  v1::ClaimWorkRequest claim;
  claim.set_task_queue_id("prov/linux");
  claim.set_worker_group("g");
  claim.set_worker_id("w1");
  claim.set_max_tasks(1);
  v1::ClaimWorkResponse nothing;
  // The long poll answers before the client's deadline, empty-handed.
  grpc::Status s = queue_->ClaimWork(
      NewContext(env_->root(), absl::Seconds(3)).get(), claim, &nothing);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(nothing.tasks_size(), 0);

  auto got = Claim("prov/linux", "w2", env_->root());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->tasks_size(), 1);
  const std::string run = got->tasks(0).task_id() + "/0";
  // The claim is recorded right after the worker got its answer.
  absl::StatusOr<v1::Worker> w2 = GetWorker("prov/linux", "w2");
  for (int i = 0; i < 100 && w2.ok() && !w2->has_first_claim(); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    w2 = GetWorker("prov/linux", "w2");
  }
  ASSERT_TRUE(w2.ok()) << w2.status();
  EXPECT_TRUE(w2->has_first_claim());
  EXPECT_TRUE(w2->has_last_seen());
  ASSERT_EQ(w2->recent_tasks_size(), 1);
  EXPECT_EQ(w2->recent_tasks(0), run);
  auto w1 = GetWorker("prov/linux", "w1");
  ASSERT_TRUE(w1.ok()) << w1.status();
  EXPECT_FALSE(w1->has_first_claim());
  EXPECT_EQ(w1->recent_tasks_size(), 0);

  // Lifting the quarantine lets w1 claim again at once on this replica.
  quarantine.clear_quarantine_until();
  quarantine.set_reason("");
  ASSERT_TRUE(Quarantine(quarantine).ok());
  ASSERT_TRUE(CreateTask("prov/linux").ok());
  auto after = Claim("prov/linux", "w1", env_->root());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->tasks_size(), 1);

  // Unknown to the worker manager: claims as before.
  ASSERT_TRUE(CreateTask("prov/linux").ok());
  auto stranger = Claim("prov/linux", "not-managed", env_->root());
  ASSERT_TRUE(stranger.ok()) << stranger.status();
  EXPECT_EQ(stranger->tasks_size(), 1);
  env_->server().queue_service().SetWorkerGate(nullptr);
}

// The worker daemon's Registrar against the real service: registers with
// the static secret, re-registers before its (short) credentials expire,
// persists every new secret, continues the chain after a restart without
// the proof, stops when removed and announces its shutdown.
class RegistrarTest : public WorkerManagerServiceTest {
 protected:
  void SetUp() override {
    use_system_clock_ = true;
    WorkerManagerServiceTest::SetUp();
  }

  worker::RegistrarOptions Options(const std::string& proof) {
    worker::RegistrarOptions o;
    o.queue_urls = {wm_target_};
    o.worker_pool_id = "prov/linux";
    o.worker_group = "g";
    o.worker_id = "w1";
    o.capacity = 3;
    o.proof = proof;
    o.state_file = state_dir_ + "/registration-state.json";
    // 60 s credentials (the minimum) renewed after 3 s.
    o.reregister_fraction = 0.05;
    o.heartbeat_interval = absl::Milliseconds(500);
    o.initial_backoff = absl::Milliseconds(100);
    o.max_tick = absl::Milliseconds(200);
    o.facts = worker::HostFacts("native");
    return o;
  }

  std::string state_dir_ = [] {
    auto dir = drover::testing::MakeTempDir("drover-registrar-");
    EXPECT_TRUE(dir.ok()) << dir.status();
    return dir.ok() ? dir->string() : std::string();
  }();
};

TEST_F(RegistrarTest, ReregistersBeforeExpiryAndContinuesAfterRestart) {
  v1::WorkerPoolConfig config = Config();
  config.set_reregistration_timeout_seconds(60);
  ASSERT_TRUE(CreatePool("prov/linux", config, env_->root()).ok());
  auto created = CreateWorker("prov/linux", "w1");
  ASSERT_TRUE(created.ok()) << created.status();

  auto registrar =
      std::make_unique<worker::Registrar>(Options(created->static_secret()));
  auto first = registrar->RegisterAtStart();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->client_id, "worker/prov/linux/g/w1");
  auto saved = worker::LoadRegistrationState(Options("").state_file);
  ASSERT_TRUE(saved.ok() && saved->has_value()) << saved.status();
  const std::string first_secret = (*saved)->reregistration_secret;
  {
    struct stat st {};
    ASSERT_EQ(stat(Options("").state_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
  }

  std::mutex mu;
  std::vector<client::Credentials> renewed;
  registrar->Start(
      [&](const client::Credentials& c) {
        std::lock_guard<std::mutex> lock(mu);
        renewed.push_back(c);
      },
      [] {});

  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (registrar->renewals() < 2 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  ASSERT_GE(registrar->renewals(), 2) << "no re-registration before expiry";
  client::Credentials latest;
  {
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_FALSE(renewed.empty());
    latest = renewed.back();
  }
  EXPECT_NE(latest.certificate, first->certificate);
  // The renewed credentials work: they claim from the pool's queue.
  TestCredentials as_worker;
  as_worker.certificate = latest.certificate;
  ASSERT_TRUE(CreateTask("prov/linux").ok());
  auto claimed = Claim("prov/linux", "w1", as_worker);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_EQ(claimed->tasks_size(), 1);
  // The first secret was used up by the first re-registration (two
  // generations back, so it is "unknown" rather than "replayed").
  auto replay = Reregister("prov/linux", "w1", first_secret, as_worker);
  EXPECT_TRUE(HasErrorCode(replay.status(), ErrorCode::kAuthenticationFailed))
      << replay.status();
  auto worker = GetWorker("prov/linux", "w1");
  ASSERT_TRUE(worker.ok());
  EXPECT_EQ(worker->state(), "running");
  EXPECT_EQ(worker->capacity(), 3);
  EXPECT_TRUE(worker->supports_reregistration());
  EXPECT_FALSE(worker->facts().hostname().empty());

  // A restart continues from the saved secret, even with a wrong proof.
  registrar->Stop(/*announce=*/false);
  registrar.reset();
  auto restarted = std::make_unique<worker::Registrar>(Options("wrong"));
  auto again = restarted->RegisterAtStart();
  ASSERT_TRUE(again.ok()) << again.status();
  auto resaved = worker::LoadRegistrationState(Options("").state_file);
  ASSERT_TRUE(resaved.ok() && resaved->has_value());
  EXPECT_NE((*resaved)->reregistration_secret, first_secret);

  // Removal reaches the worker through its heartbeat; the announced
  // shutdown stops the row.
  std::atomic<bool> told_to_stop{false};
  restarted->Start([](const client::Credentials&) {},
                   [&] { told_to_stop.store(true); });
  v1::WorkerKey key;
  key.set_worker_pool_id("prov/linux");
  key.set_worker_group("g");
  key.set_worker_id("w1");
  v1::RemoveWorkerResponse removed;
  ASSERT_TRUE(
      wm_->RemoveWorker(NewContext(env_->root()).get(), key, &removed).ok());
  const absl::Time stop_by = absl::Now() + absl::Seconds(10);
  while (!told_to_stop.load() && absl::Now() < stop_by) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(told_to_stop.load());
  restarted->Stop(/*announce=*/true);
  EXPECT_EQ(GetWorker("prov/linux", "w1")->state(), "stopped");
}

// `drover pools` and `drover workers`, in-process (cli::RunCli) against the
// service.
class WorkerCliTest : public WorkerManagerServiceTest {
 protected:
  struct Result {
    int code = -1;
    std::string out;
    std::string err;
  };

  Result Drover(const std::vector<std::string>& args) {
    std::map<std::string, std::string> vars = {
        {"DROVER_URL", wm_target_},
        {"DROVER_CREDENTIALS_FILE", env_->auth().root_credentials_file()}};
    std::istringstream in;
    std::ostringstream out, err;
    Result r;
    r.code =
        cli::RunCli(args, cli::Streams{in, out, err},
                    client::FixedEnvironment(vars), system_clock_, "test-host");
    r.out = out.str();
    r.err = err.str();
    return r;
  }
};

TEST_F(WorkerCliTest, PoolsAndWorkersCommands) {
  Result created =
      Drover({"pools", "create", "prov/linux", "--owner", "ops@example.com",
              "--max", "8", "--reregistration-timeout", "2h"});
  ASSERT_EQ(created.code, 0) << created.err;
  EXPECT_NE(created.out.find("7200s"), std::string::npos) << created.out;

  Result bad_id = Drover({"pools", "create", "linux", "--owner", "o"});
  EXPECT_EQ(bad_id.code, 1);
  EXPECT_NE(bad_id.err.find("worker_pool_id"), std::string::npos) << bad_id.err;
  Result bad_flag = Drover({"pools", "create", "prov/x", "--owner", "o",
                            "--reregistration-timeout", "soon"});
  EXPECT_EQ(bad_flag.code, 2) << bad_flag.err;
  EXPECT_NE(bad_flag.err.find("--reregistration-timeout"), std::string::npos)
      << bad_flag.err;

  Result updated =
      Drover({"pools", "update", "prov/linux", "--description", "rack 1"});
  ASSERT_EQ(updated.code, 0) << updated.err;
  EXPECT_NE(updated.out.find("rack 1"), std::string::npos);
  // Flags not given kept their values.
  EXPECT_NE(updated.out.find("7200s"), std::string::npos) << updated.out;

  Result worker =
      Drover({"workers", "create", "prov/linux", "g", "w1", "--capacity", "3"});
  ASSERT_EQ(worker.code, 0) << worker.err;
  std::string secret = worker.out;
  while (!secret.empty() && secret.back() == '\n') secret.pop_back();
  ASSERT_FALSE(secret.empty());
  ASSERT_TRUE(Register("prov/linux", "w1", secret).ok());

  Result stats = Drover({"pools"});
  ASSERT_EQ(stats.code, 0) << stats.err;
  EXPECT_NE(stats.out.find("POOL"), std::string::npos) << stats.out;
  EXPECT_NE(stats.out.find("prov/linux"), std::string::npos) << stats.out;
  Result json = Drover({"--json", "pools"});
  ASSERT_EQ(json.code, 0) << json.err;
  EXPECT_NE(json.out.find("\"totalCapacity\": \"3\""), std::string::npos)
      << json.out;

  Result listed = Drover({"workers", "list", "prov/linux"});
  ASSERT_EQ(listed.code, 0) << listed.err;
  EXPECT_NE(listed.out.find("g/w1"), std::string::npos) << listed.out;
  EXPECT_NE(listed.out.find("running"), std::string::npos) << listed.out;

  Result quarantined = Drover({"workers", "quarantine", "prov/linux", "g", "w1",
                               "--until", "+1 hour", "--reason", "disk"});
  ASSERT_EQ(quarantined.code, 0) << quarantined.err;
  Result got = Drover({"workers", "get", "prov/linux", "g", "w1"});
  ASSERT_EQ(got.code, 0) << got.err;
  EXPECT_NE(got.out.find("disk"), std::string::npos) << got.out;
  Result unknown = Drover({"workers", "quarantine", "prov/linux", "g", "nobody",
                           "--until", "+1 hour", "--reason", "disk"});
  EXPECT_EQ(unknown.code, 1);
  EXPECT_NE(unknown.err.find("ResourceNotFound"), std::string::npos)
      << unknown.err;

  Result removed = Drover({"workers", "remove", "prov/linux", "g", "w1"});
  ASSERT_EQ(removed.code, 0) << removed.err;
  EXPECT_NE(removed.out.find("stopping"), std::string::npos) << removed.out;
  // Still stopping: the pool cannot go yet.
  Result refused = Drover({"pools", "delete", "prov/linux"});
  EXPECT_EQ(refused.code, 1);
  EXPECT_NE(refused.err.find("RequestConflict"), std::string::npos)
      << refused.err;
}

}  // namespace
}  // namespace drover::queue::worker_manager
