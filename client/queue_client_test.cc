// QueueClient over real gRPC on loopback. The server here is a scripted
// stand-in for drover-queue: the behaviours under test (retrying
// UNAVAILABLE, honouring deadlines, sending metadata, decoding error
// details) need a server that fails on purpose, which the real one does not
// do on demand. tests/cli_e2e_test.cc covers the real server.
#include "client/queue_client.h"

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

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
    std::lock_guard<std::mutex> lock(mu_);
    return last_metadata_;
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
};

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

}  // namespace
}  // namespace drover::client
