// QueueClient over real gRPC on loopback. The server here is a scripted
// stand-in for drover-queue: the behaviours under test (retrying
// UNAVAILABLE, honouring deadlines, sending metadata, decoding error
// details) need a server that fails on purpose, which the real one does not
// do on demand. tests/cli_e2e_test.cc covers the real server.
#include "client/queue_client.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "client/graph_submit.h"
#include "common/rpc/grpc_status.h"
#include "common/status.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace drover::client {
namespace {

class ScriptedQueue final : public v1::Queue::Service {
 public:
  // How many leading calls of each method answer UNAVAILABLE.
  std::atomic<int> unavailable_first{0};
  std::atomic<int> calls{0};
  absl::Duration claim_delay = absl::ZeroDuration();

  std::multimap<std::string, std::string> LastMetadata() {
    return Copy(last_metadata_);
  }

  grpc::Status GetTaskStatus(grpc::ServerContext* context,
                             const v1::TaskIdRequest* request,
                             v1::TaskStatusResponse* response) override {
    Record(context);
    if (calls.fetch_add(1) < unavailable_first) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting");
    }
    response->mutable_status()->set_task_id(request->task_id());
    response->mutable_status()->set_state("pending");
    return grpc::Status::OK;
  }

  grpc::Status RerunTask(grpc::ServerContext* context, const v1::TaskIdRequest*,
                         v1::TaskStatusResponse*) override {
    Record(context);
    calls.fetch_add(1);
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "restarting");
  }

  grpc::Status CancelTask(grpc::ServerContext* context,
                          const v1::TaskIdRequest* request,
                          v1::TaskStatusResponse*) override {
    Record(context);
    calls.fetch_add(1);
    return rpc::ToGrpcStatus(
        InputError("task_id", request->task_id(), "task_id is not a slug"));
  }

  // CreateTaskGraph: every call is recorded; each takes graph_delay, but
  // the fail_graph_call-th call (1-based; 0: none) answers InvalidArgument
  // at once.
  struct GraphCall {
    std::string graph_id;
    std::vector<std::string> task_ids;
    bool commit = false;
    int others_in_flight = 0;  // calls running when this one arrived
    absl::Time started, ended;
  };
  std::atomic<int> fail_graph_call{0};
  absl::Duration graph_delay = absl::ZeroDuration();

  std::vector<GraphCall> GraphCalls() { return Copy(graph_calls_); }

  grpc::Status CreateTaskGraph(grpc::ServerContext* context,
                               const v1::CreateTaskGraphRequest* request,
                               v1::CreateTaskGraphResponse* response) override {
    Record(context);
    int n = calls.fetch_add(1) + 1;
    GraphCall call;
    call.graph_id = request->graph_id();
    for (const auto& t : request->tasks()) call.task_ids.push_back(t.task_id());
    call.commit = request->commit();
    call.others_in_flight = graph_in_flight_.fetch_add(1);
    call.started = absl::Now();
    const bool fail = n == fail_graph_call.load();
    if (!fail) absl::SleepFor(graph_delay);
    graph_in_flight_.fetch_sub(1);
    call.ended = absl::Now();
    {
      std::lock_guard<std::mutex> lock(mu_);
      graph_calls_.push_back(call);
    }
    if (fail) {
      return rpc::ToGrpcStatus(InputError("tasks.task_id", call.task_ids[0],
                                          "scripted failure"));
    }
    response->set_tasks(request->tasks_size());
    return grpc::Status::OK;
  }

  grpc::Status ClaimWork(grpc::ServerContext* context,
                         const v1::ClaimWorkRequest*,
                         v1::ClaimWorkResponse*) override {
    Record(context);
    calls.fetch_add(1);
    absl::Time until = absl::Now() + claim_delay;
    while (absl::Now() < until && !context->IsCancelled()) {
      absl::SleepFor(absl::Milliseconds(10));
    }
    return grpc::Status::OK;
  }

 private:
  template <typename T>
  T Copy(const T& member) {
    std::lock_guard<std::mutex> lock(mu_);
    return member;
  }

  void Record(grpc::ServerContext* context) {
    std::lock_guard<std::mutex> lock(mu_);
    last_metadata_.clear();
    for (const auto& [key, value] : context->client_metadata()) {
      last_metadata_.emplace(std::string(key.data(), key.size()),
                             std::string(value.data(), value.size()));
    }
  }

  std::mutex mu_;
  std::multimap<std::string, std::string> last_metadata_;
  std::vector<GraphCall> graph_calls_;
  std::atomic<int> graph_in_flight_{0};
};

std::vector<v1::GraphTask> GraphOf(int n) {
  std::vector<v1::GraphTask> tasks(n);
  for (int i = 0; i < n; ++i) tasks[i].set_task_id("task-" + std::to_string(i));
  return tasks;
}

class QueueClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  QueueClient MakeClient(Credentials credentials = {}) {
    ConnectionOptions options;
    options.url = "127.0.0.1:" + std::to_string(port_);
    options.credentials = std::move(credentials);
    auto connection = Connection::Create(options);
    EXPECT_TRUE(connection.ok()) << connection.status();
    CallOptions defaults;
    defaults.timeout = absl::Seconds(10);
    defaults.retry.initial_backoff = absl::Milliseconds(5);
    defaults.retry.max_backoff = absl::Milliseconds(20);
    return QueueClient(*connection, defaults);
  }

  v1::TaskIdRequest Id(const std::string& id) {
    v1::TaskIdRequest request;
    request.set_task_id(id);
    return request;
  }

  ScriptedQueue service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(QueueClientTest, RetriesUnavailableOnIdempotentCalls) {
  service_.unavailable_first = 2;
  QueueClient client = MakeClient();
  auto got = client.GetTaskStatus(Id("abc"));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->status().task_id(), "abc");
  EXPECT_EQ(service_.calls.load(), 3);
}

TEST_F(QueueClientTest, GivesUpAfterMaxAttempts) {
  service_.unavailable_first = 100;
  QueueClient client = MakeClient();
  CallOptions options = client.defaults();
  options.retry.max_attempts = 3;
  auto got = client.GetTaskStatus(Id("abc"), options);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(got.status().message(), "restarting");
  EXPECT_EQ(service_.calls.load(), 3);
}

TEST_F(QueueClientTest, NeverRetriesNonIdempotentCalls) {
  QueueClient client = MakeClient();
  auto got = client.RerunTask(Id("abc"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.calls.load(), 1);
}

TEST_F(QueueClientTest, DecodesServerErrorDetailsWithoutRetrying) {
  QueueClient client = MakeClient();
  auto got = client.CancelTask(Id("not-a-slug"));
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), absl::StatusCode::kInvalidArgument);
  ErrorInfo info = GetErrorInfo(got.status());
  EXPECT_EQ(info.code, ErrorCode::kInputError);
  EXPECT_EQ(info.message, "task_id is not a slug");
  EXPECT_EQ(info.details["field"], "task_id");
  EXPECT_EQ(info.details["value"], "not-a-slug");
  EXPECT_EQ(service_.calls.load(), 1);
}

TEST_F(QueueClientTest, SendsCredentialsAsMetadata) {
  Credentials credentials;
  credentials.client_id = "user/alice";
  credentials.access_token = "tok";
  credentials.authorized_scopes = {"queue:get-task-status:*", "x"};
  QueueClient client = MakeClient(credentials);
  ASSERT_TRUE(client.GetTaskStatus(Id("abc")).ok());
  auto metadata = service_.LastMetadata();
  EXPECT_EQ(metadata.count("drover-client-id"), 1u);
  EXPECT_EQ(metadata.find("drover-client-id")->second, "user/alice");
  EXPECT_EQ(metadata.find("drover-access-token")->second, "tok");
  EXPECT_EQ(metadata.find("drover-authorized-scopes")->second,
            R"(["queue:get-task-status:*","x"])");
  EXPECT_EQ(metadata.count("drover-certificate"), 0u);

  Credentials temporary;
  temporary.certificate = "c2lnbmVk";
  QueueClient temp_client = MakeClient(temporary);
  ASSERT_TRUE(temp_client.GetTaskStatus(Id("abc")).ok());
  metadata = service_.LastMetadata();
  EXPECT_EQ(metadata.find("drover-certificate")->second, "c2lnbmVk");
  EXPECT_EQ(metadata.count("drover-client-id"), 0u);
  EXPECT_EQ(metadata.count("drover-access-token"), 0u);
  EXPECT_EQ(metadata.count("drover-authorized-scopes"), 0u);
}

TEST_F(QueueClientTest, ACredentialsProviderIsAskedOnEveryCall) {
  // Renewed task credentials: each call carries the provider's current
  // certificate, not the one the connection was made with.
  std::mutex mu;
  std::string certificate = "Zmlyc3Q";
  ConnectionOptions options;
  options.url = "127.0.0.1:" + std::to_string(port_);
  options.credentials.certificate = certificate;
  options.credentials_provider = [&] {
    std::lock_guard<std::mutex> lock(mu);
    Credentials current;
    current.certificate = certificate;
    return current;
  };
  auto connection = Connection::Create(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  QueueClient client(*connection);
  ASSERT_TRUE(client.GetTaskStatus(Id("abc")).ok());
  EXPECT_EQ(service_.LastMetadata().find("drover-certificate")->second,
            "Zmlyc3Q");
  {
    std::lock_guard<std::mutex> lock(mu);
    certificate = "cmVuZXdlZA";
  }
  ASSERT_TRUE(client.GetTaskStatus(Id("abc")).ok());
  EXPECT_EQ(service_.LastMetadata().find("drover-certificate")->second,
            "cmVuZXdlZA");
  EXPECT_EQ((*connection)->credentials().certificate, "cmVuZXdlZA");
}

TEST_F(QueueClientTest, AnonymousCallsCarryNoCredentials) {
  QueueClient client = MakeClient();
  ASSERT_TRUE(client.GetTaskStatus(Id("abc")).ok());
  auto metadata = service_.LastMetadata();
  for (const char* key : {"drover-client-id", "drover-access-token",
                          "drover-certificate", "drover-authorized-scopes"}) {
    EXPECT_EQ(metadata.count(key), 0u) << key;
  }
}

TEST_F(QueueClientTest, HonoursTheCallDeadline) {
  service_.claim_delay = absl::Seconds(5);
  QueueClient client = MakeClient();
  CallOptions options = client.defaults();
  options.timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  auto got = client.ClaimWork(v1::ClaimWorkRequest(), options);
  absl::Duration took = absl::Now() - start;
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_F(QueueClientTest, UnreachableServerIsUnavailableAfterRetries) {
  // Stop our server and reuse its port: nothing listens there any more.
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
  QueueClient client = MakeClient();
  CallOptions options = client.defaults();
  options.retry.max_attempts = 3;
  auto got = client.GetTaskStatus(Id("abc"), options);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnavailable)
      << got.status();
}

TEST(ConnectionTest, RejectsInconsistentOptions) {
  ConnectionOptions options;
  options.url = "127.0.0.1:1";
  options.ca_file = "/etc/hostname";
  auto plain_with_ca = Connection::Create(options);
  ASSERT_FALSE(plain_with_ca.ok());
  EXPECT_EQ(GetErrorInfo(plain_with_ca.status()).details["field"], "ca-file");

  options.url = "https://127.0.0.1:1";
  options.ca_file = "/nonexistent/ca.pem";
  auto missing_ca = Connection::Create(options);
  ASSERT_FALSE(missing_ca.ok());
  ErrorInfo info = GetErrorInfo(missing_ca.status());
  EXPECT_EQ(info.details["field"], "ca-file");
  EXPECT_EQ(info.details["value"], "/nonexistent/ca.pem");

  options.url = "queue";
  options.ca_file.clear();
  auto bad_url = Connection::Create(options);
  ASSERT_FALSE(bad_url.ok());
  EXPECT_EQ(GetErrorInfo(bad_url.status()).details["field"], "url");

  options.url = "https://127.0.0.1:1";
  auto tls = Connection::Create(options);
  ASSERT_TRUE(tls.ok()) << tls.status();
  EXPECT_TRUE((*tls)->endpoint().tls);
}

TEST(ConnectionTest, ReadsUrlAndCaFromTheEnvironment) {
  auto options = ConnectionOptionsFromEnvironment(
      FixedEnvironment({{"DROVER_URL", "https://q.example:9"},
                        {"DROVER_CA_FILE", "/tmp/ca.pem"},
                        {"HOME", "/nonexistent"}}));
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->url, "https://q.example:9");
  EXPECT_EQ(options->ca_file, "/tmp/ca.pem");
  EXPECT_TRUE(options->credentials.Anonymous());

  auto defaults = ConnectionOptionsFromEnvironment(
      FixedEnvironment({{"HOME", "/nonexistent"}}));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(defaults->url, std::string(kDefaultUrl));
}

TEST(BackoffTest, GrowsAndCaps) {
  RetryPolicy policy;
  policy.initial_backoff = absl::Milliseconds(100);
  policy.multiplier = 2;
  policy.max_backoff = absl::Milliseconds(500);
  EXPECT_EQ(BackoffBeforeRetry(policy, 1), absl::Milliseconds(100));
  EXPECT_EQ(BackoffBeforeRetry(policy, 2), absl::Milliseconds(200));
  EXPECT_EQ(BackoffBeforeRetry(policy, 3), absl::Milliseconds(400));
  EXPECT_EQ(BackoffBeforeRetry(policy, 4), absl::Milliseconds(500));
  EXPECT_EQ(BackoffBeforeRetry(policy, 40), absl::Milliseconds(500));
  for (int i = 0; i < 100; ++i) {
    absl::Duration j = Jitter(absl::Milliseconds(400));
    EXPECT_GE(j, absl::Milliseconds(200));
    EXPECT_LE(j, absl::Milliseconds(400));
  }
}

TEST(BackoffTest, OnlyUnavailableOnIdempotentCallsIsRetried) {
  absl::Status unavailable = absl::UnavailableError("down");
  EXPECT_TRUE(ShouldRetry(unavailable, Idempotency::kIdempotent));
  EXPECT_FALSE(ShouldRetry(unavailable, Idempotency::kNotIdempotent));
  EXPECT_FALSE(ShouldRetry(absl::DeadlineExceededError("slow"),
                           Idempotency::kIdempotent));
  EXPECT_FALSE(
      ShouldRetry(InputError("f", "v", "bad"), Idempotency::kIdempotent));
}

TEST_F(QueueClientTest, SubmitTaskGraphStagesBatchesTwoAtATimeThenCommits) {
  service_.graph_delay = absl::Milliseconds(100);
  QueueClient client = MakeClient();
  int calls_seen = 0;
  GraphSubmitOptions options;
  options.batch = 5;
  options.batches_in_flight = 2;
  options.on_call = [&](int, absl::Duration, bool) { ++calls_seen; };
  auto response = SubmitTaskGraph(client, GraphOf(23), options);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->tasks(), 3);  // the scripted commit's answer

  std::vector<ScriptedQueue::GraphCall> calls = service_.GraphCalls();
  ASSERT_EQ(calls.size(), 5u);  // 4 staged batches of 5, a commit of 3
  EXPECT_EQ(calls_seen, 5);
  const ScriptedQueue::GraphCall& commit = calls.back();
  EXPECT_TRUE(commit.commit);
  EXPECT_EQ(commit.task_ids.size(), 3u);
  EXPECT_EQ(commit.others_in_flight, 0);
  std::vector<std::string> ids;
  int most_at_once = 0;
  for (const auto& call : calls) {
    EXPECT_FALSE(call.graph_id.empty());
    EXPECT_EQ(call.graph_id, commit.graph_id);
    most_at_once = std::max(most_at_once, call.others_in_flight + 1);
    ids.insert(ids.end(), call.task_ids.begin(), call.task_ids.end());
    if (&call != &commit) {
      EXPECT_FALSE(call.commit);
      EXPECT_EQ(call.task_ids.size(), 5u);
      // The commit goes only after every staged batch was answered.
      EXPECT_LE(call.ended, commit.started);
    }
  }
  EXPECT_EQ(most_at_once, 2);
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> expected;
  for (const auto& t : GraphOf(23)) expected.push_back(t.task_id());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(ids, expected);  // every task exactly once
}

TEST_F(QueueClientTest, SubmitTaskGraphSendsASmallGraphInOneCall) {
  QueueClient client = MakeClient();
  GraphSubmitOptions options;
  options.batch = 5;
  auto response = SubmitTaskGraph(client, GraphOf(5), options);
  ASSERT_TRUE(response.ok()) << response.status();
  std::vector<ScriptedQueue::GraphCall> calls = service_.GraphCalls();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_TRUE(calls[0].graph_id.empty());
  EXPECT_TRUE(calls[0].commit);
  EXPECT_EQ(calls[0].task_ids.size(), 5u);
}

TEST_F(QueueClientTest, SubmitTaskGraphStopsAtTheFirstFailedBatch) {
  service_.fail_graph_call = 2;
  QueueClient client = MakeClient();
  GraphSubmitOptions options;
  options.batch = 2;
  options.batches_in_flight = 1;
  auto response = SubmitTaskGraph(client, GraphOf(9), options);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(GetErrorInfo(response.status()).code, ErrorCode::kInputError);
  std::vector<ScriptedQueue::GraphCall> calls = service_.GraphCalls();
  ASSERT_EQ(calls.size(), 2u);  // no third batch and no commit
  for (const auto& call : calls) EXPECT_FALSE(call.commit);
}

TEST_F(QueueClientTest, SubmitTaskGraphStopsEveryThreadAtTheFirstFailure) {
  // Three batches go at once; the second fails at once while the others
  // take 300 ms, so the failure is on record before any thread could start
  // another batch. Every later batch and the commit must stay unsent.
  service_.graph_delay = absl::Milliseconds(300);
  service_.fail_graph_call = 2;
  QueueClient client = MakeClient();
  GraphSubmitOptions options;
  options.batch = 2;
  options.batches_in_flight = 3;
  auto response = SubmitTaskGraph(client, GraphOf(21), options);  // 10 + 1
  ASSERT_FALSE(response.ok());
  ErrorInfo error = GetErrorInfo(response.status());
  EXPECT_EQ(error.code, ErrorCode::kInputError);
  EXPECT_NE(error.message.find("scripted failure"), std::string::npos);
  std::vector<ScriptedQueue::GraphCall> calls = service_.GraphCalls();
  // The three first batches; a thread the machine stalled for longer than
  // 300 ms could have sent one more each, never the remaining seven.
  EXPECT_GE(calls.size(), 3u);
  EXPECT_LE(calls.size(), 5u);
  for (const auto& call : calls) EXPECT_FALSE(call.commit);
}

TEST_F(QueueClientTest, SubmitTaskGraphRefusesBadOptionsAndSendsNothing) {
  QueueClient client = MakeClient();
  GraphSubmitOptions options;
  options.batch = 0;
  auto response = SubmitTaskGraph(client, GraphOf(3), options);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(GetErrorInfo(response.status()).code, ErrorCode::kInputError);
  EXPECT_EQ(GetErrorInfo(response.status()).details["field"], "batch");
  options.batch = 10001;
  EXPECT_FALSE(SubmitTaskGraph(client, GraphOf(3), options).ok());
  options.batch = 5;
  options.batches_in_flight = 0;
  response = SubmitTaskGraph(client, GraphOf(3), options);
  ASSERT_FALSE(response.ok());
  EXPECT_EQ(GetErrorInfo(response.status()).details["field"],
            "batches_in_flight");
  EXPECT_TRUE(service_.GraphCalls().empty());
}

}  // namespace
}  // namespace drover::client
