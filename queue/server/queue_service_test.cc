// drover.v1.Queue over real gRPC on loopback against a real PostgreSQL
// (queue/store/testing): a QueueServer per test on a fresh database.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/rpc/grpc_status.h"
#include "common/slugid.h"
#include "common/status.h"
#include "drover/v1/queue.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "queue/queue_service/authorizer.h"
#include "queue/queue_service/conversions.h"
#include "queue/server/queue_server.h"
#include "queue/store/pg_pending_notifier.h"
#include "queue/store/pg_store.h"
#include "queue/store/testing/test_database.h"

namespace drover::queue::server {
namespace {

using Clock = std::chrono::steady_clock;
using queue_service::ToProtoTime;

constexpr char kQueue[] = "test-prov/test-worker";

// One drover-queue "process": store, notifier and server on a database.
struct Replica {
  std::unique_ptr<store::PgStore> store;
  std::unique_ptr<store::PgPendingNotifier> notifier;
  std::unique_ptr<QueueServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Queue::Stub> stub;
};

QueueServerOptions TestOptions() {
  QueueServerOptions options;
  options.listen = "127.0.0.1:0";
  options.http_listen = "";
  options.rpc_threads = 8;
  options.service.claim.poll_timeout = absl::Seconds(2);
  options.service.claim.safety_poll_interval = absl::Seconds(1);
  options.resolvers.claim_expiry_interval = absl::Milliseconds(100);
  options.resolvers.deadline_interval = absl::Milliseconds(200);
  options.resolvers.expiry_interval = absl::Seconds(1);
  options.shutdown_grace = absl::Seconds(5);
  return options;
}

v1::CreateTaskRequest NewTaskRequest(const std::string& queue = kQueue) {
  v1::CreateTaskRequest request;
  request.set_task_id(NewSlugId());
  v1::TaskDefinition* task = request.mutable_task();
  task->set_task_queue_id(queue);
  absl::Time now = absl::Now();
  *task->mutable_created() = ToProtoTime(now);
  *task->mutable_deadline() = ToProtoTime(now + absl::Hours(1));
  task->set_payload(R"({"command":["true"]})");
  task->mutable_metadata()->set_name("test task");
  task->mutable_metadata()->set_description("made by queue_service_test");
  task->mutable_metadata()->set_owner("tests@example.com");
  task->mutable_metadata()->set_source("https://example.com/tests");
  return request;
}

std::unique_ptr<grpc::ClientContext> Context(
    absl::Duration timeout = absl::Seconds(30)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(timeout));
  return context;
}

class QueueServiceTest : public store::testing::DatabaseTest {
 protected:
  void SetUp() override {
    DatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    replica_ = StartReplica(TestOptions());
  }

  void TearDown() override {
    for (auto& r : extra_) StopReplica(*r);
    if (replica_) StopReplica(*replica_);
  }

  std::unique_ptr<Replica> StartReplica(const QueueServerOptions& options) {
    auto r = std::make_unique<Replica>();
    store::PgStoreOptions store_options;
    store_options.connection_string = connection_string();
    store_options.pool_size = 8;
    auto opened = store::PgStore::Open(store_options, &clock_);
    EXPECT_TRUE(opened.ok()) << opened.status();
    if (!opened.ok()) return nullptr;
    r->store = std::move(opened).value();
    r->notifier = std::make_unique<store::PgPendingNotifier>(
        store::PgPendingNotifier::Options{.connection_string =
                                              connection_string()});
    r->server = std::make_unique<QueueServer>(
        options, r->store.get(), r->notifier.get(), &clock_, &authorizer_);
    absl::Status started = r->server->Start();
    EXPECT_TRUE(started.ok()) << started;
    if (!started.ok()) return nullptr;
    r->channel = grpc::CreateChannel(r->server->grpc_target(),
                                     grpc::InsecureChannelCredentials());
    r->stub = v1::Queue::NewStub(r->channel);
    return r;
  }

  void StopReplica(Replica& r) {
    r.stub.reset();
    r.channel.reset();
    if (r.server) r.server->Stop();
    r.server.reset();
    r.notifier.reset();
    r.store.reset();
  }

  v1::Queue::Stub& stub() { return *replica_->stub; }

  v1::TaskStatus Create(const v1::CreateTaskRequest& request) {
    v1::CreateTaskResponse response;
    grpc::Status status =
        stub().CreateTask(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.status();
  }

  absl::StatusOr<v1::TaskStatus> Status(const std::string& task_id) {
    v1::TaskIdRequest request;
    request.set_task_id(task_id);
    v1::TaskStatusResponse response;
    grpc::Status status =
        stub().GetTaskStatus(Context().get(), request, &response);
    if (!status.ok()) return rpc::FromGrpcStatus(status);
    return response.status();
  }

  absl::StatusOr<std::vector<v1::ClaimedTask>> Claim(
      v1::Queue::Stub& stub, const std::string& worker_id, int max_tasks,
      const std::string& queue = kQueue) {
    v1::ClaimWorkRequest request;
    request.set_task_queue_id(queue);
    request.set_worker_group("test-group");
    request.set_worker_id(worker_id);
    request.set_max_tasks(max_tasks);
    v1::ClaimWorkResponse response;
    grpc::Status status = stub.ClaimWork(Context().get(), request, &response);
    if (!status.ok()) return rpc::FromGrpcStatus(status);
    return std::vector<v1::ClaimedTask>(response.tasks().begin(),
                                        response.tasks().end());
  }

  v1::RunRequest Run(const std::string& task_id, int run_id,
                     const std::string& worker_id = "w1") {
    v1::RunRequest request;
    request.set_task_id(task_id);
    request.set_run_id(run_id);
    request.set_worker_group("test-group");
    request.set_worker_id(worker_id);
    return request;
  }

  // Polls GetTaskStatus until `done` holds or `timeout` passes.
  v1::TaskStatus WaitForStatus(
      const std::string& task_id,
      const std::function<bool(const v1::TaskStatus&)>& done,
      absl::Duration timeout = absl::Seconds(20)) {
    absl::Time give_up = absl::Now() + timeout;
    v1::TaskStatus last;
    while (absl::Now() < give_up) {
      auto status = Status(task_id);
      if (status.ok()) {
        last = *status;
        if (done(last)) return last;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    ADD_FAILURE() << "timed out waiting; last status: "
                  << last.ShortDebugString();
    return last;
  }

  SystemClock clock_;
  queue_service::AllowAllAuthorizer authorizer_;
  std::unique_ptr<Replica> replica_;
  std::vector<std::unique_ptr<Replica>> extra_;
};

TEST_F(QueueServiceTest, CreateGetAndStatus) {
  v1::CreateTaskRequest request = NewTaskRequest();
  request.mutable_task()->set_priority("high");
  request.mutable_task()->add_routes("index.test");
  (*request.mutable_task()->mutable_tags())["kind"] = "test";
  v1::TaskStatus created = Create(request);
  EXPECT_EQ(created.task_id(), request.task_id());
  EXPECT_EQ(created.state(), "pending");
  EXPECT_EQ(created.task_queue_id(), kQueue);
  EXPECT_EQ(created.retries_left(), 5);
  ASSERT_EQ(created.runs_size(), 1);
  EXPECT_EQ(created.runs(0).run_id(), 0);
  EXPECT_EQ(created.runs(0).state(), "pending");
  EXPECT_EQ(created.runs(0).reason_created(), "scheduled");

  v1::TaskIdRequest id;
  id.set_task_id(request.task_id());
  v1::GetTaskResponse got;
  ASSERT_TRUE(stub().GetTask(Context().get(), id, &got).ok());
  const v1::TaskDefinition& def = got.task();
  EXPECT_EQ(def.task_queue_id(), kQueue);
  EXPECT_EQ(def.task_group_id(), request.task_id());  // Defaulted.
  EXPECT_EQ(def.priority(), "high");
  EXPECT_EQ(def.requirement(), "all-completed");
  EXPECT_EQ(def.retries(), 5);
  EXPECT_EQ(def.routes(0), "index.test");
  EXPECT_EQ(def.tags().at("kind"), "test");
  EXPECT_EQ(def.metadata().owner(), "tests@example.com");
  EXPECT_EQ(def.payload(), R"({"command":["true"]})");
  // Microsecond precision, as stored.
  EXPECT_EQ(def.created().seconds(), request.task().created().seconds());
  EXPECT_EQ(def.created().nanos(),
            request.task().created().nanos() / 1000 * 1000);
  EXPECT_EQ(def.expires().seconds(),
            def.deadline().seconds() + 365 * 24 * 3600);

  auto status = Status(request.task_id());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->state(), "pending");

  v1::TaskQueueRequest queue;
  queue.set_task_queue_id(kQueue);
  v1::TaskQueueCounts counts;
  ASSERT_TRUE(stub().GetTaskQueueCounts(Context().get(), queue, &counts).ok());
  EXPECT_EQ(counts.pending(), 1);
  EXPECT_EQ(counts.claimed(), 0);

  v1::ListTaskQueuesRequest list;
  v1::ListTaskQueuesResponse listed;
  ASSERT_TRUE(stub().ListTaskQueues(Context().get(), list, &listed).ok());
  ASSERT_EQ(listed.task_queues_size(), 1);
  EXPECT_EQ(listed.task_queues(0).task_queue_id(), kQueue);
  EXPECT_EQ(listed.task_queues(0).pending(), 1);
}

TEST_F(QueueServiceTest, CreateIsIdempotentAndConflictsOnADifferentDefinition) {
  v1::CreateTaskRequest request = NewTaskRequest();
  v1::TaskStatus first = Create(request);
  v1::TaskStatus second = Create(request);
  EXPECT_EQ(first.SerializeAsString(), second.SerializeAsString());
  // Equal JSON spelled differently is the same definition.
  request.mutable_task()->set_payload(R"({ "command" : [ "true" ] })");
  Create(request);

  request.mutable_task()->mutable_metadata()->set_name("another name");
  v1::CreateTaskResponse response;
  grpc::Status status = stub().CreateTask(Context().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  ErrorInfo info = GetErrorInfo(rpc::FromGrpcStatus(status));
  EXPECT_EQ(info.code, ErrorCode::kRequestConflict);

  v1::TaskIdRequest id;
  id.set_task_id(request.task_id());
  v1::GetTaskResponse got;
  ASSERT_TRUE(stub().GetTask(Context().get(), id, &got).ok());
  EXPECT_EQ(got.task().metadata().name(), "test task");
}

// One malformed call: what to send and what must come back.
struct BadCall {
  std::string name;
  std::function<grpc::Status(v1::Queue::Stub&)> call;
  grpc::StatusCode grpc_code;
  ErrorCode code;
  // Expected details["field"]; empty: not checked (e.g. conflicts).
  std::string field;
};

TEST_F(QueueServiceTest, BadInputReturnsPreciseErrorsAndWritesNothing) {
  // Fixtures the state-transition cases act on.
  v1::CreateTaskRequest pending_req = NewTaskRequest();
  v1::TaskStatus pending = Create(pending_req);
  v1::CreateTaskRequest completed_req = NewTaskRequest();
  Create(completed_req);
  auto claimed = Claim(stub(), "w1", 10);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 2u);
  // Complete the second task; the first stays running under w1.
  std::string running_id = pending_req.task_id();
  {
    v1::TaskStatusResponse response;
    ASSERT_TRUE(stub()
                    .ReportCompleted(Context().get(),
                                     Run(completed_req.task_id(), 0), &response)
                    .ok());
  }
  std::string unknown_id = NewSlugId();

  auto create = [](std::function<void(v1::CreateTaskRequest&)> mutate) {
    return [mutate](v1::Queue::Stub& stub) {
      v1::CreateTaskRequest request = NewTaskRequest();
      mutate(request);
      v1::CreateTaskResponse response;
      return stub.CreateTask(Context().get(), request, &response);
    };
  };
  auto task_id_call = [](auto method, std::string id) {
    return [method, id](v1::Queue::Stub& stub) {
      v1::TaskIdRequest request;
      request.set_task_id(id);
      v1::TaskStatusResponse response;
      return (stub.*method)(Context().get(), request, &response);
    };
  };
  auto run_call = [this](auto method, std::string id, int run_id,
                         std::string worker = "w1") {
    return [this, method, id, run_id, worker](v1::Queue::Stub& stub) {
      v1::TaskStatusResponse response;
      return (stub.*method)(Context().get(), Run(id, run_id, worker),
                            &response);
    };
  };
  const auto kInvalid = grpc::StatusCode::INVALID_ARGUMENT;
  const auto kPrecondition = grpc::StatusCode::FAILED_PRECONDITION;
  const auto kNotFound = grpc::StatusCode::NOT_FOUND;

  std::vector<BadCall> cases = {
      {"missing metadata",
       create([](auto& r) { r.mutable_task()->clear_metadata(); }), kInvalid,
       ErrorCode::kInputError, "task.metadata"},
      {"missing metadata owner", create([](auto& r) {
         r.mutable_task()->mutable_metadata()->clear_owner();
       }),
       kInvalid, ErrorCode::kInputError, "task.metadata.owner"},
      {"owner not an email", create([](auto& r) {
         r.mutable_task()->mutable_metadata()->set_owner("nobody");
       }),
       kInvalid, ErrorCode::kInputError, "task.metadata.owner"},
      {"source not a URL", create([](auto& r) {
         r.mutable_task()->mutable_metadata()->set_source("here");
       }),
       kInvalid, ErrorCode::kInputError, "task.metadata.source"},
      {"bad task id", create([](auto& r) { r.set_task_id("not-a-slug"); }),
       kInvalid, ErrorCode::kInputError, "task_id"},
      {"bad task queue id",
       create([](auto& r) { r.mutable_task()->set_task_queue_id("noslash"); }),
       kInvalid, ErrorCode::kInputError, "task.task_queue_id"},
      {"bad task group id",
       create([](auto& r) { r.mutable_task()->set_task_group_id("g"); }),
       kInvalid, ErrorCode::kInputError, "task.task_group_id"},
      {"deadline before created", create([](auto& r) {
         *r.mutable_task()->mutable_deadline() =
             ToProtoTime(absl::Now() - absl::Hours(1));
       }),
       kInvalid, ErrorCode::kInputError, "task.deadline"},
      {"deadline too far", create([](auto& r) {
         *r.mutable_task()->mutable_deadline() =
             ToProtoTime(absl::Now() + absl::Hours(24 * 6));
       }),
       kInvalid, ErrorCode::kInputError, "task.deadline"},
      {"expires before deadline", create([](auto& r) {
         *r.mutable_task()->mutable_expires() =
             ToProtoTime(absl::Now() + absl::Minutes(30));
       }),
       kInvalid, ErrorCode::kInputError, "task.expires"},
      {"created long ago", create([](auto& r) {
         *r.mutable_task()->mutable_created() =
             ToProtoTime(absl::Now() - absl::Hours(2));
       }),
       kInvalid, ErrorCode::kInputError, "task.created"},
      {"too many routes", create([](auto& r) {
         for (int i = 0; i < 65; ++i) r.mutable_task()->add_routes("r");
       }),
       kInvalid, ErrorCode::kInputError, "task.routes"},
      {"unknown priority",
       create([](auto& r) { r.mutable_task()->set_priority("urgent"); }),
       kInvalid, ErrorCode::kInputError, "task.priority"},
      {"unknown requirement",
       create([](auto& r) { r.mutable_task()->set_requirement("any"); }),
       kInvalid, ErrorCode::kInputError, "task.requirement"},
      {"retries out of range",
       create([](auto& r) { r.mutable_task()->set_retries(50); }), kInvalid,
       ErrorCode::kInputError, "task.retries"},
      {"oversized payload", create([](auto& r) {
         r.mutable_task()->set_payload(
             absl::StrCat("{\"x\":\"", std::string(300 * 1024, 'x'), "\"}"));
       }),
       kInvalid, ErrorCode::kInputTooLarge, "task.payload"},
      {"non-object payload",
       create([](auto& r) { r.mutable_task()->set_payload("[1,2,3]"); }),
       kInvalid, ErrorCode::kMalformedPayload, "task.payload"},
      {"payload not JSON",
       create([](auto& r) { r.mutable_task()->set_payload("{oops"); }),
       kInvalid, ErrorCode::kMalformedPayload, "task.payload"},
      {"extra not an object",
       create([](auto& r) { r.mutable_task()->set_extra("1"); }), kInvalid,
       ErrorCode::kInputError, "task.extra"},
      {"self dependency",
       create([](auto& r) { r.mutable_task()->add_dependencies(r.task_id()); }),
       kInvalid, ErrorCode::kInputError, "task.dependencies[0]"},
      {"scope not printable",
       create([](auto& r) { r.mutable_task()->add_scopes("a\x01"); }), kInvalid,
       ErrorCode::kInputError, "task.scopes[0]"},
      {"GetTask bad id",
       [](v1::Queue::Stub& stub) {
         v1::TaskIdRequest request;
         request.set_task_id("short");
         v1::GetTaskResponse response;
         return stub.GetTask(Context().get(), request, &response);
       },
       kInvalid, ErrorCode::kInputError, "task_id"},
      {"GetTask unknown task",
       [unknown_id](v1::Queue::Stub& stub) {
         v1::TaskIdRequest request;
         request.set_task_id(unknown_id);
         v1::GetTaskResponse response;
         return stub.GetTask(Context().get(), request, &response);
       },
       kNotFound, ErrorCode::kResourceNotFound, ""},
      {"GetTaskStatus unknown task",
       task_id_call(&v1::Queue::Stub::GetTaskStatus, unknown_id), kNotFound,
       ErrorCode::kResourceNotFound, ""},
      {"CancelTask unknown task",
       task_id_call(&v1::Queue::Stub::CancelTask, unknown_id), kNotFound,
       ErrorCode::kResourceNotFound, ""},
      {"ScheduleTask empty id",
       task_id_call(&v1::Queue::Stub::ScheduleTask, ""), kInvalid,
       ErrorCode::kInputError, "task_id"},
      {"RerunTask on a running task",
       task_id_call(&v1::Queue::Stub::RerunTask, running_id), kPrecondition,
       ErrorCode::kRequestConflict, ""},
      {"ClaimWork max_tasks 0",
       [](v1::Queue::Stub& stub) {
         v1::ClaimWorkRequest request;
         request.set_task_queue_id(kQueue);
         request.set_worker_group("g");
         request.set_worker_id("w");
         v1::ClaimWorkResponse response;
         return stub.ClaimWork(Context().get(), request, &response);
       },
       kInvalid, ErrorCode::kInputError, "max_tasks"},
      {"ClaimWork bad queue",
       [](v1::Queue::Stub& stub) {
         v1::ClaimWorkRequest request;
         request.set_task_queue_id("a/b/c");
         request.set_worker_group("g");
         request.set_worker_id("w");
         request.set_max_tasks(1);
         v1::ClaimWorkResponse response;
         return stub.ClaimWork(Context().get(), request, &response);
       },
       kInvalid, ErrorCode::kInputError, "task_queue_id"},
      {"ReportFailed on a completed run",
       run_call(&v1::Queue::Stub::ReportFailed, completed_req.task_id(), 0),
       kPrecondition, ErrorCode::kRequestConflict, ""},
      {"ReportCompleted on a run that does not exist",
       run_call(&v1::Queue::Stub::ReportCompleted, running_id, 7), kNotFound,
       ErrorCode::kResourceNotFound, ""},
      {"ReportCompleted negative run id",
       run_call(&v1::Queue::Stub::ReportCompleted, running_id, -1), kInvalid,
       ErrorCode::kInputError, "run_id"},
      {"ReclaimTask by another worker",
       [this, running_id](v1::Queue::Stub& stub) {
         v1::ReclaimTaskResponse response;
         return stub.ReclaimTask(Context().get(), Run(running_id, 0, "w2"),
                                 &response);
       },
       kPrecondition, ErrorCode::kRequestConflict, ""},
      {"ReclaimTask without worker",
       [running_id](v1::Queue::Stub& stub) {
         v1::RunRequest request;
         request.set_task_id(running_id);
         v1::ReclaimTaskResponse response;
         return stub.ReclaimTask(Context().get(), request, &response);
       },
       kInvalid, ErrorCode::kInputError, "worker_group"},
      {"ReportException unknown reason",
       [running_id](v1::Queue::Stub& stub) {
         v1::ReportExceptionRequest request;
         request.set_task_id(running_id);
         request.set_reason("bored");
         v1::TaskStatusResponse response;
         return stub.ReportException(Context().get(), request, &response);
       },
       kInvalid, ErrorCode::kInputError, "reason"},
      {"GetTaskQueueCounts bad queue",
       [](v1::Queue::Stub& stub) {
         v1::TaskQueueRequest request;
         request.set_task_queue_id("nope");
         v1::TaskQueueCounts response;
         return stub.GetTaskQueueCounts(Context().get(), request, &response);
       },
       kInvalid, ErrorCode::kInputError, "task_queue_id"},
      {"ListTaskQueues limit too big",
       [](v1::Queue::Stub& stub) {
         v1::ListTaskQueuesRequest request;
         request.set_limit(5000);
         v1::ListTaskQueuesResponse response;
         return stub.ListTaskQueues(Context().get(), request, &response);
       },
       kInvalid, ErrorCode::kInputError, "limit"},
  };
  ASSERT_GE(cases.size(), 30u);

  auto snapshot = [&] {
    std::string out;
    for (const std::string& id :
         {pending_req.task_id(), completed_req.task_id()}) {
      auto status = Status(id);
      EXPECT_TRUE(status.ok());
      // Runs carry times that do not change unless something is written.
      out += status->SerializeAsString();
    }
    v1::ListTaskQueuesRequest list;
    v1::ListTaskQueuesResponse listed;
    EXPECT_TRUE(stub().ListTaskQueues(Context().get(), list, &listed).ok());
    for (const auto& q : listed.task_queues()) {
      out += absl::StrCat(q.task_queue_id(), ":", q.pending(), ":", q.claimed(),
                          ";");
    }
    return out;
  };
  const std::string before = snapshot();

  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    grpc::Status status = c.call(stub());
    EXPECT_EQ(status.error_code(), c.grpc_code) << status.error_message();
    absl::Status decoded = rpc::FromGrpcStatus(status);
    ErrorInfo info = GetErrorInfo(decoded);
    EXPECT_EQ(ErrorCodeName(info.code), ErrorCodeName(c.code));
    EXPECT_FALSE(info.message.empty());
    if (!c.field.empty()) {
      EXPECT_EQ(info.details["field"], c.field) << info.message;
      EXPECT_EQ(info.details.count("value"), 1u);
    }
  }

  EXPECT_EQ(snapshot(), before);
  // Only the two fixture tasks exist in the queue.
  v1::TaskQueueRequest queue;
  queue.set_task_queue_id(kQueue);
  v1::TaskQueueCounts counts;
  ASSERT_TRUE(stub().GetTaskQueueCounts(Context().get(), queue, &counts).ok());
  EXPECT_EQ(counts.pending(), 0);
  EXPECT_EQ(counts.claimed(), 1);
}

TEST_F(QueueServiceTest, LongPollIsWokenByCreateTask) {
  QueueServerOptions options = TestOptions();
  // No safety poll within the test: only a wake-up can deliver the task.
  options.service.claim.safety_poll_interval = absl::Seconds(60);
  options.service.claim.poll_timeout = absl::Seconds(30);
  StopReplica(*replica_);
  replica_ = StartReplica(options);
  ASSERT_NE(replica_, nullptr);
  // A second replica on the same database: its creates reach the first
  // only through LISTEN/NOTIFY.
  extra_.push_back(StartReplica(options));
  ASSERT_NE(extra_.back(), nullptr);
  Replica& other = *extra_.back();

  for (bool via_other_replica : {false, true}) {
    SCOPED_TRACE(via_other_replica ? "NOTIFY from another replica"
                                   : "same replica");
    std::atomic<bool> done{false};
    Clock::time_point claimed_at;
    absl::StatusOr<std::vector<v1::ClaimedTask>> claimed;
    std::thread claimer([&] {
      claimed = Claim(stub(), "long-poller", 1);
      claimed_at = Clock::now();
      done = true;
    });
    // Wait until the call is parked (its first attempt found nothing).
    for (int i = 0;
         i < 500 && replica_->server->queue_service().parked_claims() == 0;
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(replica_->server->queue_service().parked_claims(), 1u);
    EXPECT_FALSE(done.load());

    v1::CreateTaskRequest request = NewTaskRequest();
    v1::CreateTaskResponse response;
    grpc::Status status = (via_other_replica ? *other.stub : stub())
                              .CreateTask(Context().get(), request, &response);
    Clock::time_point created_at = Clock::now();
    ASSERT_TRUE(status.ok()) << status.error_message();
    claimer.join();
    ASSERT_TRUE(claimed.ok()) << claimed.status();
    ASSERT_EQ(claimed->size(), 1u);
    EXPECT_EQ((*claimed)[0].task_id(), request.task_id());
    auto latency = std::chrono::duration_cast<std::chrono::microseconds>(
        claimed_at - created_at);
    std::cout << "[ latency  ] create -> claim "
              << (via_other_replica ? "(other replica, NOTIFY): "
                                    : "(same replica): ")
              << latency.count() << " us" << std::endl;
    // Generous for a loaded machine, yet far below the 60 s safety poll.
    EXPECT_LT(latency, std::chrono::seconds(2));
  }
}

TEST_F(QueueServiceTest, LongPollAnswersEmptyAtThePollTimeout) {
  auto start = Clock::now();
  auto claimed = Claim(stub(), "idle", 5);
  auto waited = Clock::now() - start;
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  EXPECT_TRUE(claimed->empty());
  EXPECT_GE(waited, std::chrono::milliseconds(1900));  // poll_timeout 2 s.
  EXPECT_LT(waited, std::chrono::seconds(10));
}

TEST_F(QueueServiceTest, ClientCancelReleasesTheParkedCall) {
  grpc::ClientContext context;
  v1::ClaimWorkRequest request;
  request.set_task_queue_id(kQueue);
  request.set_worker_group("g");
  request.set_worker_id("canceler");
  request.set_max_tasks(1);
  v1::ClaimWorkResponse response;
  grpc::Status status;
  std::thread caller(
      [&] { status = stub().ClaimWork(&context, request, &response); });
  auto& service = replica_->server->queue_service();
  for (int i = 0; i < 500 && service.parked_claims() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(service.parked_claims(), 1u);
  context.TryCancel();
  caller.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 500 && service.parked_claims() != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(service.parked_claims(), 0u);
  // A task created now stays pending for the next claimer.
  v1::TaskStatus created = Create(NewTaskRequest());
  absl::SleepFor(absl::Milliseconds(200));
  auto status_now = Status(created.task_id());
  ASSERT_TRUE(status_now.ok());
  EXPECT_EQ(status_now->state(), "pending");
}

TEST_F(QueueServiceTest, ConcurrentClaimersClaimEachTaskExactlyOnce) {
  constexpr int kTasks = 150;
  constexpr int kClaimers = 12;
  constexpr int kCreators = 3;
  std::mutex mu;
  std::map<std::string, int> claims;  // task id -> times claimed
  std::atomic<int> claimed_total{0};
  std::atomic<int> errors{0};

  std::vector<std::thread> threads;
  for (int c = 0; c < kClaimers; ++c) {
    threads.emplace_back([&, c] {
      auto channel = grpc::CreateChannel(replica_->server->grpc_target(),
                                         grpc::InsecureChannelCredentials());
      auto stub = v1::Queue::NewStub(channel);
      absl::Time give_up = absl::Now() + absl::Seconds(120);
      while (claimed_total.load() < kTasks && absl::Now() < give_up) {
        auto got = Claim(*stub, absl::StrCat("claimer-", c), 1 + c % 4);
        if (!got.ok()) {
          errors++;
          continue;
        }
        std::lock_guard<std::mutex> lock(mu);
        for (const auto& t : *got) {
          claims[t.task_id()]++;
          claimed_total++;
        }
      }
    });
  }
  std::vector<std::string> created(kTasks);
  for (int c = 0; c < kCreators; ++c) {
    threads.emplace_back([&, c] {
      for (int i = c; i < kTasks; i += kCreators) {
        v1::CreateTaskRequest request = NewTaskRequest();
        created[i] = request.task_id();
        v1::CreateTaskResponse response;
        grpc::Status status =
            stub().CreateTask(Context().get(), request, &response);
        if (!status.ok()) errors++;
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(claimed_total.load(), kTasks);
  ASSERT_EQ(claims.size(), static_cast<size_t>(kTasks));
  for (const std::string& id : created) {
    auto it = claims.find(id);
    ASSERT_NE(it, claims.end()) << id << " never claimed";
    EXPECT_EQ(it->second, 1) << id << " claimed " << it->second << " times";
  }
  v1::TaskQueueRequest queue;
  queue.set_task_queue_id(kQueue);
  v1::TaskQueueCounts counts;
  ASSERT_TRUE(stub().GetTaskQueueCounts(Context().get(), queue, &counts).ok());
  EXPECT_EQ(counts.pending(), 0);
  EXPECT_EQ(counts.claimed(), kTasks);
}

TEST_F(QueueServiceTest, ReclaimExtendsTheClaimAndConflictsAfterCancel) {
  v1::CreateTaskRequest request = NewTaskRequest();
  Create(request);
  auto claimed = Claim(stub(), "w1", 1);
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 1u);
  int64_t first_until = (*claimed)[0].taken_until().seconds();

  absl::SleepFor(absl::Milliseconds(1100));
  v1::ReclaimTaskResponse reclaimed;
  ASSERT_TRUE(
      stub()
          .ReclaimTask(Context().get(), Run(request.task_id(), 0), &reclaimed)
          .ok());
  EXPECT_GT(reclaimed.taken_until().seconds(), first_until);
  EXPECT_EQ(reclaimed.status().state(), "running");

  v1::TaskIdRequest id;
  id.set_task_id(request.task_id());
  v1::TaskStatusResponse canceled;
  ASSERT_TRUE(stub().CancelTask(Context().get(), id, &canceled).ok());
  EXPECT_EQ(canceled.status().state(), "exception");
  EXPECT_EQ(canceled.status().runs(0).reason_resolved(), "canceled");

  grpc::Status status = stub().ReclaimTask(
      Context().get(), Run(request.task_id(), 0), &reclaimed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(GetErrorInfo(rpc::FromGrpcStatus(status)).code,
            ErrorCode::kRequestConflict);
  v1::TaskStatusResponse reported;
  status = stub().ReportCompleted(Context().get(), Run(request.task_id(), 0),
                                  &reported);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  // Canceling again is harmless.
  ASSERT_TRUE(stub().CancelTask(Context().get(), id, &canceled).ok());
  EXPECT_EQ(canceled.status().runs_size(), 1);
}

TEST_F(QueueServiceTest, ExpiredClaimIsRetriedUntilRetriesRunOut) {
  QueueServerOptions options = TestOptions();
  options.service.claim.claim_timeout = absl::Seconds(1);
  StopReplica(*replica_);
  replica_ = StartReplica(options);
  ASSERT_NE(replica_, nullptr);

  v1::CreateTaskRequest request = NewTaskRequest();
  request.mutable_task()->set_retries(1);
  Create(request);
  auto claimed = Claim(stub(), "w1", 1);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  EXPECT_EQ((*claimed)[0].run_id(), 0);

  // The resolver expires the claim and schedules run 1.
  v1::TaskStatus status =
      WaitForStatus(request.task_id(),
                    [](const v1::TaskStatus& s) { return s.runs_size() == 2; });
  ASSERT_EQ(status.runs_size(), 2);
  EXPECT_EQ(status.runs(0).state(), "exception");
  EXPECT_EQ(status.runs(0).reason_resolved(), "claim-expired");
  EXPECT_EQ(status.runs(1).state(), "pending");
  EXPECT_EQ(status.runs(1).reason_created(), "retry");
  EXPECT_EQ(status.retries_left(), 0);

  // The late worker's report of run 0 is a conflict.
  v1::TaskStatusResponse reported;
  grpc::Status late = stub().ReportCompleted(
      Context().get(), Run(request.task_id(), 0), &reported);
  EXPECT_EQ(late.error_code(), grpc::StatusCode::FAILED_PRECONDITION);

  claimed = Claim(stub(), "w2", 1);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  EXPECT_EQ((*claimed)[0].run_id(), 1);

  // Retries exhausted: the second expiry resolves the task for good.
  status = WaitForStatus(request.task_id(), [](const v1::TaskStatus& s) {
    return s.state() == "exception";
  });
  EXPECT_EQ(status.runs_size(), 2);
  EXPECT_EQ(status.runs(1).reason_resolved(), "claim-expired");
}

TEST_F(QueueServiceTest, RestartKeepsEverything) {
  v1::CreateTaskRequest pending_req = NewTaskRequest();
  v1::CreateTaskRequest running_req = NewTaskRequest();
  v1::CreateTaskRequest done_req = NewTaskRequest();
  running_req.mutable_task()->set_priority("highest");
  done_req.mutable_task()->set_priority("high");
  Create(pending_req);
  Create(running_req);
  Create(done_req);
  auto claimed = Claim(stub(), "w1", 2);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 2u);
  // Priority order: highest, then high.
  EXPECT_EQ((*claimed)[0].task_id(), running_req.task_id());
  EXPECT_EQ((*claimed)[1].task_id(), done_req.task_id());
  v1::TaskStatusResponse done;
  ASSERT_TRUE(
      stub()
          .ReportCompleted(Context().get(), Run(done_req.task_id(), 0), &done)
          .ok());

  std::map<std::string, std::string> before;
  for (const auto* r : {&pending_req, &running_req, &done_req}) {
    auto status = Status(r->task_id());
    ASSERT_TRUE(status.ok());
    before[r->task_id()] = status->SerializeAsString();
  }

  StopReplica(*replica_);
  replica_ = StartReplica(TestOptions());
  ASSERT_NE(replica_, nullptr);

  for (const auto* r : {&pending_req, &running_req, &done_req}) {
    auto status = Status(r->task_id());
    ASSERT_TRUE(status.ok()) << status.status();
    EXPECT_EQ(status->SerializeAsString(), before[r->task_id()]);
    v1::TaskIdRequest id;
    id.set_task_id(r->task_id());
    v1::GetTaskResponse got;
    ASSERT_TRUE(stub().GetTask(Context().get(), id, &got).ok());
    EXPECT_EQ(got.task().metadata().name(), "test task");
  }
  // Work continues where it stopped.
  v1::TaskStatusResponse completed;
  ASSERT_TRUE(stub()
                  .ReportCompleted(Context().get(),
                                   Run(running_req.task_id(), 0), &completed)
                  .ok());
  EXPECT_EQ(completed.status().state(), "completed");
  claimed = Claim(stub(), "w1", 5);
  ASSERT_TRUE(claimed.ok() && claimed->size() == 1u);
  EXPECT_EQ((*claimed)[0].task_id(), pending_req.task_id());
}

TEST_F(QueueServiceTest, RerunAndScheduleThroughGrpc) {
  v1::CreateTaskRequest request = NewTaskRequest();
  Create(request);
  v1::TaskIdRequest id;
  id.set_task_id(request.task_id());
  v1::TaskStatusResponse response;
  ASSERT_TRUE(stub().CancelTask(Context().get(), id, &response).ok());
  ASSERT_TRUE(stub().RerunTask(Context().get(), id, &response).ok());
  ASSERT_EQ(response.status().runs_size(), 2);
  EXPECT_EQ(response.status().runs(1).reason_created(), "rerun");
  EXPECT_EQ(response.status().state(), "pending");

  // A dependent stays unscheduled until forced.
  v1::CreateTaskRequest dependent = NewTaskRequest();
  dependent.mutable_task()->add_dependencies(request.task_id());
  v1::TaskStatus created = Create(dependent);
  EXPECT_EQ(created.state(), "unscheduled");
  ASSERT_EQ(created.blocking_dependencies_size(), 1);
  id.set_task_id(dependent.task_id());
  ASSERT_TRUE(stub().ScheduleTask(Context().get(), id, &response).ok());
  EXPECT_EQ(response.status().state(), "pending");
}

// A unary call by method name with raw protobuf bytes (for services whose
// generated stubs this project does not build: health).
absl::StatusOr<std::string> RawUnary(std::shared_ptr<grpc::Channel> channel,
                                     const std::string& method,
                                     const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  auto context = Context(absl::Seconds(10));
  grpc::Slice slice(request);
  grpc::ByteBuffer send(&slice, 1);
  auto call = stub.PrepareUnaryCall(context.get(), method, send, &cq);
  call->StartCall();
  grpc::ByteBuffer received;
  grpc::Status status;
  call->Finish(&received, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  cq.Next(&tag, &ok);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  std::vector<grpc::Slice> slices;
  received.Dump(&slices);
  std::string out;
  for (const auto& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

// One request/response exchange on a bidi stream (server reflection).
absl::StatusOr<std::string> RawBidiOnce(std::shared_ptr<grpc::Channel> channel,
                                        const std::string& method,
                                        const std::string& request) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  auto context = Context(absl::Seconds(10));
  auto call = stub.PrepareCall(context.get(), method, &cq);
  void* tag;
  bool ok;
  auto step = [&](intptr_t want) {
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  if (!step(1)) return absl::InternalError("start failed");
  grpc::Slice slice(request);
  grpc::ByteBuffer send(&slice, 1);
  call->Write(send, reinterpret_cast<void*>(2));
  if (!step(2)) return absl::InternalError("write failed");
  grpc::ByteBuffer received;
  call->Read(&received, reinterpret_cast<void*>(3));
  if (!step(3)) return absl::InternalError("read failed");
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  std::vector<grpc::Slice> slices;
  received.Dump(&slices);
  std::string out;
  for (const auto& s : slices) {
    out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return out;
}

TEST_F(QueueServiceTest, ASecondServerOnAnAddressInUseDoesNotStart) {
  QueueServerOptions options = TestOptions();
  options.listen = "127.0.0.1:" + std::to_string(replica_->server->grpc_port());
  QueueServer second(options, replica_->store.get(), /*notifier=*/nullptr,
                     &clock_, &authorizer_);
  absl::Status started = second.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(GetErrorInfo(started).code, ErrorCode::kInternalError);
  EXPECT_NE(started.message().find(options.listen), std::string::npos)
      << started;
  // The first server still answers.
  Create(NewTaskRequest());
}

TEST_F(QueueServiceTest, HealthReflectionAndMetrics) {
  QueueServerOptions options = TestOptions();
  options.http_listen = "127.0.0.1:0";
  options.queue_metrics_ttl = absl::ZeroDuration();
  StopReplica(*replica_);
  replica_ = StartReplica(options);
  ASSERT_NE(replica_, nullptr);

  // grpc.health.v1.HealthCheckRequest{} -> HealthCheckResponse{status:
  // SERVING (1)}, i.e. the bytes 08 01.
  auto health = RawUnary(replica_->channel, "/grpc.health.v1.Health/Check", "");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, std::string("\x08\x01", 2));

  // ServerReflectionRequest{list_services: ""} (field 7).
  auto reflection = RawBidiOnce(
      replica_->channel,
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      std::string("\x3a\x00", 2));
  ASSERT_TRUE(reflection.ok()) << reflection.status();
  EXPECT_NE(reflection->find("drover.v1.Queue"), std::string::npos);

  Create(NewTaskRequest());
  Create(NewTaskRequest());
  v1::TaskIdRequest bad;
  bad.set_task_id("bad");
  v1::GetTaskResponse ignored;
  EXPECT_FALSE(stub().GetTask(Context().get(), bad, &ignored).ok());

  httplib::Client http("127.0.0.1", replica_->server->http_port());
  auto healthz = http.Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  const std::string& text = metrics->body;
  EXPECT_NE(text.find("drover_rpc_requests_total{method=\"/drover.v1.Queue/"
                      "CreateTask\",code=\"OK\"} 2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("drover_rpc_requests_total{method=\"/drover.v1.Queue/"
                      "GetTask\",code=\"INVALID_ARGUMENT\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("drover_rpc_errors_total{method=\"/drover.v1.Queue/"
                      "GetTask\",error=\"InputError\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("drover_rpc_duration_seconds_count{method=\"/"
                      "drover.v1.Queue/CreateTask\",code=\"OK\"} 2"),
            std::string::npos);
  EXPECT_NE(text.find(absl::StrCat("drover_queue_pending_tasks{task_queue_id="
                                   "\"",
                                   kQueue, "\"} 2")),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace drover::queue::server
