// Authentication and authorization end to end: real PostgreSQL, real keys,
// the real services over gRPC on loopback (AuthTestEnv), and, where the
// build has them, the Artifacts service too.
//
//  - the authorization matrix: every RPC of every service, found through
//    the service descriptors, against every kind of bad credentials;
//  - task credentials from ClaimWork/ReclaimTask;
//  - clients, roles, temporary credentials, authorized scopes, and change
//    propagation between replicas;
//  - secrets, encrypted at rest: a pg_dump holds no plaintext, a moved or
//    altered ciphertext fails to decrypt, key rotation leaves nothing under
//    an old key id;
//  - bootstrap, static clients and TLS.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/auth_client.h"
#include "client/connection.h"
#include "common/crypto/encoding.h"
#include "common/crypto/secret_file.h"
#include "common/rpc/grpc_status.h"
#include "common/slugid.h"
#include "common/status.h"
#include "drover/v1/auth.grpc.pb.h"
#include "drover/v1/queue.grpc.pb.h"
#include "drover/v1/secrets.grpc.pb.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pqxx/pqxx"
#include "queue/auth/key_rotation.h"
#include "queue/auth/rpc_scopes.h"
#include "queue/auth/testing/auth_test_env.h"
#include "queue/queue_service/conversions.h"

#ifdef DROVER_TEST_ARTIFACTS
#include "drover/v1/artifacts.grpc.pb.h"
#include "queue/artifacts/artifact_store.h"
#include "queue/artifacts/artifacts_service.h"
#include "queue/blobstore/filesystem/filesystem_blob_store.h"
#endif

namespace drover::queue::auth {
namespace {

namespace fs = std::filesystem;
using queue_service::ToProtoTime;
using testing::AuthTestEnv;
using testing::AuthTestEnvOptions;
using testing::NewContext;
using testing::TestCredentials;

absl::Status ToStatus(const grpc::Status& status) {
  return rpc::FromGrpcStatus(status);
}

bool IsDenial(grpc::StatusCode code) {
  return code == grpc::StatusCode::UNAUTHENTICATED ||
         code == grpc::StatusCode::PERMISSION_DENIED;
}

v1::CreateTaskRequest NewTask(const std::string& queue,
                              std::vector<std::string> scopes = {}) {
  v1::CreateTaskRequest request;
  request.set_task_id(NewSlugId());
  v1::TaskDefinition* task = request.mutable_task();
  task->set_task_queue_id(queue);
  const absl::Time now = absl::Now();
  *task->mutable_created() = ToProtoTime(now);
  *task->mutable_deadline() = ToProtoTime(now + absl::Hours(1));
  task->set_payload(R"({"command":["true"]})");
  task->mutable_metadata()->set_name("auth test");
  task->mutable_metadata()->set_description("made by auth_server_test");
  task->mutable_metadata()->set_owner("tests@example.com");
  task->mutable_metadata()->set_source("https://example.com/auth");
  for (std::string& scope : scopes) task->add_scopes(std::move(scope));
  return request;
}

// One call of any method, by its descriptor, through the generic stub (so
// the matrix needs no code per RPC). Server-streaming methods are read to
// their end.
grpc::Status CallMethod(const std::shared_ptr<grpc::Channel>& channel,
                        const google::protobuf::MethodDescriptor& method,
                        const google::protobuf::Message& request,
                        const TestCredentials& credentials) {
  const std::string path =
      "/" + method.service()->full_name() + "/" + method.name();
  grpc::GenericStub stub(channel);
  auto context = NewContext(credentials, absl::Seconds(20));
  const std::string bytes = request.SerializeAsString();
  grpc::Slice slice(bytes);
  grpc::ByteBuffer buffer(&slice, 1);
  grpc::CompletionQueue cq;
  grpc::Status status;
  auto wait = [&cq]() {
    void* tag = nullptr;
    bool ok = false;
    cq.Next(&tag, &ok);
    return ok;
  };
  if (!method.server_streaming() && !method.client_streaming()) {
    auto call = stub.PrepareUnaryCall(context.get(), path, buffer, &cq);
    call->StartCall();
    grpc::ByteBuffer response;
    call->Finish(&response, &status, reinterpret_cast<void*>(1));
    wait();
  } else {
    auto call = stub.PrepareCall(context.get(), path, &cq);
    call->StartCall(reinterpret_cast<void*>(1));
    wait();
    call->WriteLast(buffer, grpc::WriteOptions(), reinterpret_cast<void*>(2));
    wait();
    grpc::ByteBuffer response;
    for (int i = 0; i < 1000; ++i) {
      call->Read(&response, reinterpret_cast<void*>(3));
      if (!wait()) break;
    }
    call->Finish(&status, reinterpret_cast<void*>(4));
    wait();
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
  return status;
}

// A certificate's claims with different scopes but the original signature.
std::string TamperScopes(const std::string& certificate,
                         const std::vector<std::string>& scopes) {
  std::optional<std::string> bytes = crypto::Base64UrlDecode(certificate);
  EXPECT_TRUE(bytes.has_value());
  v1::SignedCertificate signed_certificate;
  EXPECT_TRUE(signed_certificate.ParseFromString(bytes.value_or("")));
  v1::CertificateClaims claims;
  EXPECT_TRUE(claims.ParseFromString(signed_certificate.claims()));
  claims.clear_scopes();
  for (const std::string& scope : scopes) claims.add_scopes(scope);
  signed_certificate.set_claims(claims.SerializeAsString());
  return crypto::Base64UrlEncode(signed_certificate.SerializeAsString());
}

class AuthServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = AuthTestEnv::Create(Options());
    if (!env.ok() && env.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << "cannot run here: " << env.status();
    }
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(env).value();
    auth_ = v1::Auth::NewStub(env_->channel());
    queue_ = v1::Queue::NewStub(env_->channel());
    secrets_ = v1::Secrets::NewStub(env_->channel());
  }

  void TearDown() override { env_.reset(); }

  virtual AuthTestEnvOptions Options() { return {}; }

  const TestCredentials& root() const { return env_->root(); }

  TestCredentials MustCreateClient(const std::string& id,
                                   const std::vector<std::string>& scopes) {
    auto created = env_->CreateClient(id, scopes);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.value_or(TestCredentials{});
  }

  absl::StatusOr<v1::CurrentScopesResponse> WhoAmI(
      const TestCredentials& credentials, v1::Auth::Stub* stub = nullptr) {
    v1::CurrentScopesResponse response;
    grpc::Status status = (stub ? stub : auth_.get())
                              ->CurrentScopes(NewContext(credentials).get(),
                                              {}, &response);
    if (!status.ok()) return ToStatus(status);
    return response;
  }

  absl::StatusOr<v1::TaskStatus> CreateTask(
      const v1::CreateTaskRequest& request,
      const TestCredentials& credentials) {
    v1::CreateTaskResponse response;
    grpc::Status status = queue_->CreateTask(NewContext(credentials).get(),
                                             request, &response);
    if (!status.ok()) return ToStatus(status);
    return response.status();
  }

  absl::Status SetSecret(const std::string& name, const std::string& value,
                         const TestCredentials& credentials,
                         std::optional<absl::Time> expires = std::nullopt) {
    v1::SetSecretRequest request;
    request.set_name(name);
    request.set_value(value);
    if (expires) *request.mutable_expires() = ToProtoTime(*expires);
    v1::SetSecretResponse response;
    return ToStatus(secrets_->SetSecret(NewContext(credentials).get(), request,
                                        &response));
  }

  absl::StatusOr<std::string> GetSecret(const std::string& name,
                                        const TestCredentials& credentials) {
    v1::SecretNameRequest request;
    request.set_name(name);
    v1::GetSecretResponse response;
    grpc::Status status =
        secrets_->GetSecret(NewContext(credentials).get(), request, &response);
    if (!status.ok()) return ToStatus(status);
    return response.value();
  }

  std::unique_ptr<AuthTestEnv> env_;
  std::unique_ptr<v1::Auth::Stub> auth_;
  std::unique_ptr<v1::Queue::Stub> queue_;
  std::unique_ptr<v1::Secrets::Stub> secrets_;
};

// ---- the authorization matrix ------------------------------------------------

class AuthorizationMatrixTest : public AuthServerTest {
 protected:
  AuthTestEnvOptions Options() override {
    AuthTestEnvOptions options;
#ifdef DROVER_TEST_ARTIFACTS
    options.before_start = [this](server::QueueServer& server,
                                  AuthSystem& auth) {
      artifacts::ArtifactStoreOptions store_options;
      store_options.connection_string = auth.store().connection_string();
      auto store = artifacts::ArtifactStore::Open(store_options, &clock_);
      ASSERT_TRUE(store.ok()) << store.status();
      artifact_store_ = std::move(store).value();
      blob_dir_ = fs::temp_directory_path() / ("drover-matrix-" + NewSlugId());
      blobstore::filesystem::FilesystemBlobStoreOptions blob_options;
      blob_options.root = blob_dir_;
      blob_options.base_url = "http://127.0.0.1:9";
      blob_options.signing_key = std::string(32, 'k');
      auto blobs = blobstore::filesystem::FilesystemBlobStore::Create(
          blob_options, &clock_);
      ASSERT_TRUE(blobs.ok()) << blobs.status();
      blobs_ = std::move(blobs).value();
      artifacts_executor_ =
          std::make_unique<queue_service::BoundedExecutor>(2, 64);
      artifacts_service_ = std::make_unique<artifacts::ArtifactsService>(
          artifacts::ArtifactsServiceOptions{}, artifact_store_.get(),
          blobs_.get(), &clock_, auth.authorizer(), artifacts_executor_.get());
      server.AddService(artifacts_service_.get());
    };
#endif
    return options;
  }

  void TearDown() override {
#ifdef DROVER_TEST_ARTIFACTS
    if (artifacts_service_) artifacts_service_->BeginShutdown();
#endif
    env_.reset();
#ifdef DROVER_TEST_ARTIFACTS
    if (artifacts_executor_) artifacts_executor_->Shutdown();
    artifacts_service_.reset();
    artifacts_executor_.reset();
    blobs_.reset();
    artifact_store_.reset();
    std::error_code ec;
    if (!blob_dir_.empty()) fs::remove_all(blob_dir_, ec);
#endif
  }

  SystemClock clock_;
#ifdef DROVER_TEST_ARTIFACTS
  std::unique_ptr<artifacts::ArtifactStore> artifact_store_;
  std::unique_ptr<blobstore::filesystem::FilesystemBlobStore> blobs_;
  std::unique_ptr<queue_service::BoundedExecutor> artifacts_executor_;
  std::unique_ptr<artifacts::ArtifactsService> artifacts_service_;
  fs::path blob_dir_;
#endif
};

TEST_F(AuthorizationMatrixTest, EveryRpcOfEveryServiceRefusesBadCredentials) {
  // Callers without credentials get nothing at all here (by default they
  // may read public artifacts; that is tested separately).
  {
    v1::UpdateRoleRequest request;
    request.set_role_id("anonymous");
    v1::RoleResponse response;
    ASSERT_TRUE(auth_->UpdateRole(NewContext(root()).get(), request, &response)
                    .ok());
  }
  // Things the requests name exist, so a missing scope is never mistaken
  // for a missing task, client, role or secret.
  v1::CreateTaskRequest task_request = NewTask("matrix/queue");
  const std::string task_id = task_request.task_id();
  const std::string group_id = NewSlugId();
  task_request.mutable_task()->set_task_group_id(group_id);
  ASSERT_TRUE(CreateTask(task_request, root()).ok());
  const TestCredentials victim = MustCreateClient("matrix/victim", {"a:b"});
  {
    v1::CreateRoleRequest request;
    request.set_role_id("matrix-role");
    request.add_scopes("a:b");
    v1::RoleResponse response;
    ASSERT_TRUE(auth_->CreateRole(NewContext(root()).get(), request, &response)
                    .ok());
  }
  ASSERT_TRUE(SetSecret("matrix/secret", R"("s3cret")", root()).ok());

  // The callers. None may get anything done.
  const TestCredentials limited =
      MustCreateClient("matrix/limited", {"queue:unrelated"});
  const TestCredentials disabled =
      MustCreateClient("matrix/disabled", {"*"});
  {
    v1::ClientIdRequest request;
    request.set_client_id("matrix/disabled");
    v1::ClientResponse response;
    ASSERT_TRUE(
        auth_->DisableClient(NewContext(root()).get(), request, &response)
            .ok());
  }
  // An expired permanent client (the API refuses to create one, so the
  // store makes it).
  TestCredentials expired_client{"matrix/expired", crypto::GenerateAccessToken()};
  {
    ClientRecord record;
    record.client_id = expired_client.client_id;
    record.access_token_hash = env_->auth().keys().token_hasher.Hash(
        expired_client.client_id, expired_client.access_token);
    record.scopes = {"*"};
    record.expires = absl::Now() - absl::Minutes(1);
    ASSERT_TRUE(env_->auth().store().CreateClient(record).ok());
  }
  FakeClock past(absl::Now() - absl::Hours(48));
  CertificateIssuer past_issuer(env_->auth().keys().signing_key, past);
  auto expired_certificate = past_issuer.Issue(
      {"matrix/temp", "root", {"*"}, past.Now(), past.Now() + absl::Hours(1)});
  ASSERT_TRUE(expired_certificate.ok()) << expired_certificate.status();
  auto limited_certificate = env_->auth().certificate_issuer().Issue(
      {"matrix/temp", "root", {"queue:unrelated"}, absl::Now(),
       absl::Now() + absl::Hours(1)});
  ASSERT_TRUE(limited_certificate.ok());
  SystemClock now_clock;
  CertificateIssuer other_issuer(
      std::make_shared<const crypto::SigningKey>(
          crypto::SigningKey::Generate()),
      now_clock);
  auto foreign_certificate = other_issuer.Issue(
      {"matrix/temp", "root", {"*"}, absl::Now(), absl::Now() + absl::Hours(1)});
  ASSERT_TRUE(foreign_certificate.ok());

  struct Case {
    std::string name;
    TestCredentials credentials;
    // Rows about scopes cannot deny methods that need none.
    bool scopes_only = false;
  };
  const std::vector<Case> cases = {
      {"no credentials", {}},
      {"wrong token", {"matrix/limited", crypto::GenerateAccessToken()}},
      {"unknown client", {"matrix/nobody", crypto::GenerateAccessToken()}},
      {"disabled client", disabled},
      {"expired client", expired_client},
      {"client id without token", {"matrix/limited"}},
      {"expired temporary credentials", {"", "", *expired_certificate}},
      {"tampered certificate",
       {"", "", TamperScopes(*limited_certificate, {"*"})}},
      {"certificate signed by another key",
       {"", "", *foreign_certificate}},
      {"garbage certificate", {"", "", "not-a-certificate"}},
      {"certificate and token together",
       {"matrix/limited", limited.access_token, *limited_certificate}},
      {"insufficient scopes", limited, true},
      {"insufficient scopes (temporary)", {"", "", *limited_certificate}, true},
      {"authorized scopes beyond the caller's",
       {limited.client_id, limited.access_token, "", R"(["*"])"},
       true},
  };

  // A request per method that would get past authorization for root (the
  // control below checks that); methods without one get an empty request.
  std::map<std::string, std::function<std::unique_ptr<google::protobuf::Message>()>>
      requests;
  auto add = [&](const std::string& method, auto build) {
    requests[method] = [build]() -> std::unique_ptr<google::protobuf::Message> {
      auto message = std::make_unique<decltype(build())>(build());
      return message;
    };
  };
  add("drover.v1.Queue.CreateTask", [&] {
    v1::CreateTaskRequest r = NewTask("matrix/queue", {"secrets:get:x"});
    return r;
  });
  for (const char* m : {"GetTask", "GetTaskStatus", "ScheduleTask",
                        "CancelTask", "RerunTask"}) {
    add(std::string("drover.v1.Queue.") + m, [task_id] {
      v1::TaskIdRequest r;
      r.set_task_id(task_id);
      return r;
    });
  }
  add("drover.v1.Queue.CreateTaskGraph", [&] {
    v1::CreateTaskGraphRequest r;
    v1::CreateTaskRequest task = NewTask("matrix/queue", {"secrets:get:x"});
    v1::GraphTask* g = r.add_tasks();
    g->set_task_id(task.task_id());
    *g->mutable_task() = task.task();
    r.set_commit(true);
    return r;
  });
  add("drover.v1.Queue.ChangeTaskPriority", [task_id] {
    v1::ChangeTaskPriorityRequest r;
    r.set_task_id(task_id);
    r.set_priority("highest");
    return r;
  });
  // Group RPCs name the existing group (changes look up its scheduler).
  for (const char* m : {"GetTaskGroup", "SealTaskGroup", "CancelTaskGroup"}) {
    add(std::string("drover.v1.Queue.") + m, [group_id] {
      v1::TaskGroupRequest r;
      r.set_task_group_id(group_id);
      return r;
    });
  }
  add("drover.v1.Queue.ListTaskGroup", [group_id] {
    v1::ListTaskGroupRequest r;
    r.set_task_group_id(group_id);
    return r;
  });
  add("drover.v1.Queue.ChangeTaskGroupPriority", [group_id] {
    v1::ChangeTaskGroupPriorityRequest r;
    r.set_task_group_id(group_id);
    r.set_priority("high");
    return r;
  });
  add("drover.v1.Queue.ListDependentTasks", [task_id] {
    v1::ListDependentTasksRequest r;
    r.set_task_id(task_id);
    return r;
  });
  add("drover.v1.Queue.ClaimWork", [] {
    v1::ClaimWorkRequest r;
    r.set_task_queue_id("matrix/queue");
    r.set_worker_group("g");
    r.set_worker_id("w");
    r.set_max_tasks(1);
    return r;
  });
  for (const char* m : {"ReclaimTask", "ReportCompleted", "ReportFailed"}) {
    add(std::string("drover.v1.Queue.") + m, [task_id] {
      v1::RunRequest r;
      r.set_task_id(task_id);
      r.set_worker_group("g");
      r.set_worker_id("w");
      return r;
    });
  }
  add("drover.v1.Queue.ReportException", [task_id] {
    v1::ReportExceptionRequest r;
    r.set_task_id(task_id);
    r.set_reason("worker-shutdown");
    return r;
  });
  add("drover.v1.Queue.GetTaskQueueCounts", [] {
    v1::TaskQueueRequest r;
    r.set_task_queue_id("matrix/queue");
    return r;
  });
  for (const char* m : {"ResetAccessToken", "DisableClient", "EnableClient",
                        "DeleteClient", "GetClient"}) {
    add(std::string("drover.v1.Auth.") + m, [] {
      v1::ClientIdRequest r;
      r.set_client_id("matrix/victim");
      return r;
    });
  }
  add("drover.v1.Auth.CreateClient", [] {
    v1::CreateClientRequest r;
    r.set_client_id("matrix/new");
    r.add_scopes("a:b");
    *r.mutable_expires() = ToProtoTime(absl::Now() + absl::Hours(1));
    return r;
  });
  add("drover.v1.Auth.UpdateClient", [] {
    v1::UpdateClientRequest r;
    r.set_client_id("matrix/victim");
    r.add_scopes("a:c");
    return r;
  });
  add("drover.v1.Auth.CreateRole", [] {
    v1::CreateRoleRequest r;
    r.set_role_id("matrix-new-role");
    r.add_scopes("a:b");
    return r;
  });
  add("drover.v1.Auth.UpdateRole", [] {
    v1::UpdateRoleRequest r;
    r.set_role_id("matrix-role");
    r.add_scopes("a:c");
    return r;
  });
  for (const char* m : {"DeleteRole", "GetRole"}) {
    add(std::string("drover.v1.Auth.") + m, [] {
      v1::RoleIdRequest r;
      r.set_role_id("matrix-role");
      return r;
    });
  }
  add("drover.v1.Auth.ExpandScopes", [] {
    v1::ExpandScopesRequest r;
    r.add_scopes("assume:matrix-role");
    return r;
  });
  add("drover.v1.Auth.CreateTemporaryCredentials", [] {
    v1::CreateTemporaryCredentialsRequest r;
    r.add_scopes("queue:create-task:*");
    return r;
  });
  add("drover.v1.Secrets.SetSecret", [] {
    v1::SetSecretRequest r;
    r.set_name("matrix/secret");
    r.set_value("1");
    return r;
  });
  for (const char* m : {"GetSecret", "RemoveSecret"}) {
    add(std::string("drover.v1.Secrets.") + m, [] {
      v1::SecretNameRequest r;
      r.set_name("matrix/secret");
      return r;
    });
  }
#ifdef DROVER_TEST_ARTIFACTS
  add("drover.v1.Artifacts.CreateArtifact", [task_id] {
    v1::CreateArtifactRequest r;
    r.set_task_id(task_id);
    r.set_name("private/out.txt");
    r.mutable_error()->set_reason("file-missing-on-worker");
    return r;
  });
  for (const char* m : {"FinishArtifact", "GetArtifact"}) {
    add(std::string("drover.v1.Artifacts.") + m, [task_id] {
      v1::ArtifactRequest r;
      r.set_task_id(task_id);
      r.set_name("private/out.txt");
      return r;
    });
  }
  add("drover.v1.Artifacts.GetLatestArtifact", [task_id] {
    v1::LatestArtifactRequest r;
    r.set_task_id(task_id);
    r.set_name("private/out.txt");
    return r;
  });
  add("drover.v1.Artifacts.ListArtifacts", [task_id] {
    v1::ListArtifactsRequest r;
    r.set_task_id(task_id);
    return r;
  });
  add("drover.v1.Artifacts.ListLatestArtifacts", [task_id] {
    v1::ListLatestArtifactsRequest r;
    r.set_task_id(task_id);
    return r;
  });
  add("drover.v1.Artifacts.AppendLog", [task_id] {
    v1::AppendLogRequest r;
    r.set_task_id(task_id);
    r.set_data("log line\n");
    return r;
  });
  add("drover.v1.Artifacts.TailLog", [task_id] {
    v1::TailLogRequest r;
    r.set_task_id(task_id);
    r.set_no_follow(true);
    return r;
  });
#endif

  std::vector<std::string> services = {"drover.v1.Queue", "drover.v1.Auth",
                                       "drover.v1.Secrets"};
#ifdef DROVER_TEST_ARTIFACTS
  services.push_back("drover.v1.Artifacts");
#endif
  struct Method {
    const google::protobuf::MethodDescriptor* descriptor;
    std::unique_ptr<google::protobuf::Message> request;
    bool needs_no_scopes;
  };
  std::vector<Method> methods;
  for (const std::string& name : services) {
    const auto* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            name);
    ASSERT_NE(service, nullptr) << name;
    for (int i = 0; i < service->method_count(); ++i) {
      const auto* method = service->method(i);
      Method m{method, nullptr, false};
      auto it = requests.find(method->full_name());
      if (it != requests.end()) {
        m.request = it->second();
      } else {
        m.request.reset(google::protobuf::MessageFactory::generated_factory()
                            ->GetPrototype(method->input_type())
                            ->New());
      }
      const std::string path = service->full_name() + "/" + method->name();
      auto required = RequiredScopes(path, *m.request, ScopeContext{});
      m.needs_no_scopes =
          required.ok() && required->kind() == ScopeExpression::Kind::kAllOf &&
          required->terms().empty();
      methods.push_back(std::move(m));
    }
  }
  std::set<std::string> scopeless;
  for (const Method& m : methods) {
    if (m.needs_no_scopes) scopeless.insert(m.descriptor->full_name());
  }
  // Only "who am I" is open to every authenticated caller.
  EXPECT_EQ(scopeless, std::set<std::string>{"drover.v1.Auth.CurrentScopes"});

  int calls = 0;
  for (const Case& c : cases) {
    for (const Method& m : methods) {
      if (c.scopes_only && m.needs_no_scopes) continue;
      grpc::Status status =
          CallMethod(env_->channel(), *m.descriptor, *m.request, c.credentials);
      ++calls;
      EXPECT_TRUE(IsDenial(status.error_code()))
          << c.name << " -> " << m.descriptor->full_name() << " answered "
          << status.error_code() << ": " << status.error_message();
    }
  }
  EXPECT_GE(calls, 12 * 33);

  // Nothing changed: the victim still works with its old token, the task
  // is still pending, the secret still holds its value.
  EXPECT_TRUE(WhoAmI(victim).ok());
  EXPECT_EQ(GetSecret("matrix/secret", root()).value_or(""), R"("s3cret")");

  // Control: with root credentials every method gets past authorization
  // (it may still fail on its own terms: a conflict, a missing run, ...).
  for (const Method& m : methods) {
    grpc::Status status =
        CallMethod(env_->channel(), *m.descriptor, *m.request, root());
    EXPECT_FALSE(IsDenial(status.error_code()))
        << "root -> " << m.descriptor->full_name() << ": "
        << status.error_message();
    EXPECT_NE(status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << m.descriptor->full_name() << " is not served";
  }
}

// ---- task credentials ----------------------------------------------------------

TEST_F(AuthServerTest, TaskCredentialsLetATaskActOnlyOnItsRun) {
  const TestCredentials worker = MustCreateClient(
      "worker/w1", {"queue:claim-work:proj/q", "queue:worker-id:g/w1"});
  v1::CreateTaskRequest decision =
      NewTask("proj/q", {"secrets:get:proj/token", "queue:scheduler-id:-",
                         "queue:create-task:lowest:proj/child"});
  ASSERT_TRUE(CreateTask(decision, root()).ok());

  v1::ClaimWorkRequest claim;
  claim.set_task_queue_id("proj/q");
  claim.set_worker_group("g");
  claim.set_worker_id("w1");
  claim.set_max_tasks(1);
  v1::ClaimWorkResponse claimed;
  ASSERT_TRUE(
      queue_->ClaimWork(NewContext(worker).get(), claim, &claimed).ok());
  ASSERT_EQ(claimed.tasks_size(), 1);
  const v1::ClaimedTask& run = claimed.tasks(0);
  ASSERT_FALSE(run.credentials().certificate().empty());
  EXPECT_EQ(run.credentials().client_id().rfind(
                "task-client/" + decision.task_id() + "/0/on/g/w1/until/", 0),
            0u)
      << run.credentials().client_id();
  const TestCredentials task{"", "", run.credentials().certificate()};

  auto whoami = WhoAmI(task);
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_TRUE(whoami->temporary());
  EXPECT_EQ(whoami->issuer(), "drover-queue");
  EXPECT_EQ(whoami->expires().seconds(), run.taken_until().seconds());
  const std::set<std::string> scopes(whoami->scopes().begin(),
                                     whoami->scopes().end());
  const std::string run_path = decision.task_id() + "/0";
  for (const std::string& expected : std::vector<std::string>{
           "secrets:get:proj/token", "queue:create-task:lowest:proj/child",
        "queue:reclaim-task:" + run_path, "queue:resolve-task:" + run_path,
        "queue:create-artifact:" + run_path}) {
    EXPECT_EQ(scopes.count(expected), 1u) << expected;
  }

  // The task may create tasks with its own scopes, and no others.
  v1::CreateTaskRequest child = NewTask("proj/child", {"secrets:get:proj/token"});
  EXPECT_TRUE(CreateTask(child, task).ok());
  v1::CreateTaskRequest greedy = NewTask("proj/child", {"secrets:get:other"});
  EXPECT_TRUE(HasErrorCode(CreateTask(greedy, task).status(),
                           ErrorCode::kInsufficientScopes));

  // Reclaim renews the credentials; the worker's own ones cannot.
  v1::RunRequest reclaim;
  reclaim.set_task_id(decision.task_id());
  reclaim.set_run_id(0);
  reclaim.set_worker_group("g");
  reclaim.set_worker_id("w1");
  v1::ReclaimTaskResponse reclaimed;
  grpc::Status status =
      queue_->ReclaimTask(NewContext(worker).get(), reclaim, &reclaimed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  status = queue_->ReclaimTask(NewContext(task).get(), reclaim, &reclaimed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_FALSE(reclaimed.credentials().certificate().empty());
  EXPECT_NE(reclaimed.credentials().certificate(), task.certificate);
  const TestCredentials renewed{"", "", reclaimed.credentials().certificate()};
  auto renewed_whoami = WhoAmI(renewed);
  ASSERT_TRUE(renewed_whoami.ok());
  EXPECT_EQ(renewed_whoami->expires().seconds(),
            reclaimed.taken_until().seconds());

  // Another run is out of reach.
  v1::CreateTaskRequest other = NewTask("proj/q");
  ASSERT_TRUE(CreateTask(other, root()).ok());
  ASSERT_TRUE(
      queue_->ClaimWork(NewContext(worker).get(), claim, &claimed).ok());
  v1::RunRequest other_run;
  other_run.set_task_id(other.task_id());
  other_run.set_run_id(0);
  v1::TaskStatusResponse resolved;
  status = queue_->ReportCompleted(NewContext(renewed).get(), other_run,
                                   &resolved);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  // Its own run it may resolve.
  v1::RunRequest own_run;
  own_run.set_task_id(decision.task_id());
  own_run.set_run_id(0);
  status = queue_->ReportCompleted(NewContext(renewed).get(), own_run,
                                   &resolved);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(resolved.status().state(), "completed");
  // Temporary credentials cannot mint more.
  v1::CreateTemporaryCredentialsRequest mint;
  v1::CreateTemporaryCredentialsResponse minted;
  status = auth_->CreateTemporaryCredentials(NewContext(renewed).get(), mint,
                                             &minted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// ---- clients, roles, temporary credentials ---------------------------------

// Seal, cancel and re-prioritise a group need scopes naming the group's
// scheduler and the group; the group-only form of earlier versions is not
// enough, and another scheduler's scope never reaches the group.
TEST_F(AuthServerTest, GroupChangesNeedTheGroupsSchedulerAndGroup) {
  const std::string group = NewSlugId();
  v1::CreateTaskRequest task = NewTask("groups/queue");
  task.mutable_task()->set_task_group_id(group);
  task.mutable_task()->set_scheduler_id("sched-a");
  ASSERT_TRUE(CreateTask(task, root()).ok());
  const TestCredentials scheduler = MustCreateClient(
      "groups/sched-a", {"queue:seal-task-group:sched-a/*",
                         "queue:change-task-group-priority:sched-a/" + group});
  const TestCredentials group_only = MustCreateClient(
      "groups/group-only",
      {"queue:seal-task-group:" + group, "queue:cancel-task-group:" + group,
       "queue:change-task-group-priority:high:" + group});
  const TestCredentials other = MustCreateClient(
      "groups/sched-b",
      {"queue:seal-task-group:sched-b/*", "queue:cancel-task-group:sched-b/*"});

  v1::TaskGroupRequest request;
  request.set_task_group_id(group);
  v1::TaskGroupInfo info;
  v1::CancelTaskGroupResponse canceled;
  v1::ChangeTaskGroupPriorityRequest priority;
  priority.set_task_group_id(group);
  priority.set_priority("high");
  v1::ChangeTaskGroupPriorityResponse changed;
  for (const TestCredentials* denied : {&group_only, &other}) {
    EXPECT_EQ(queue_->SealTaskGroup(NewContext(*denied).get(), request, &info)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << denied->client_id;
    EXPECT_EQ(
        queue_->CancelTaskGroup(NewContext(*denied).get(), request, &canceled)
            .error_code(),
        grpc::StatusCode::PERMISSION_DENIED)
        << denied->client_id;
    EXPECT_EQ(queue_
                  ->ChangeTaskGroupPriority(NewContext(*denied).get(), priority,
                                            &changed)
                  .error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << denied->client_id;
  }
  grpc::Status status = queue_->ChangeTaskGroupPriority(
      NewContext(scheduler).get(), priority, &changed);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(changed.changed(), 1);
  status = queue_->SealTaskGroup(NewContext(scheduler).get(), request, &info);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(info.has_sealed());
  // The scheduler was not given cancel.
  status =
      queue_->CancelTaskGroup(NewContext(scheduler).get(), request, &canceled);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(
      status.error_message().find("queue:cancel-task-group:sched-a/" + group),
      std::string::npos)
      << status.error_message();
  // An unknown group is reported as such, not as missing scopes.
  request.set_task_group_id(NewSlugId());
  status = queue_->SealTaskGroup(NewContext(scheduler).get(), request, &info);
  EXPECT_TRUE(
      HasErrorCode(rpc::FromGrpcStatus(status), ErrorCode::kResourceNotFound))
      << status.error_message();
}

TEST_F(AuthServerTest, ClientLifecycleAndTokenChecks) {
  v1::CreateClientRequest create;
  create.set_client_id("user/alice");
  create.set_description("Alice");
  create.add_scopes("assume:project:ci");
  create.add_scopes("queue:get-task:*");
  *create.mutable_expires() = ToProtoTime(absl::Now() + absl::Hours(48));
  v1::CreateClientResponse created;
  ASSERT_TRUE(
      auth_->CreateClient(NewContext(root()).get(), create, &created).ok());
  EXPECT_EQ(created.access_token().size(), 43u);
  const TestCredentials alice{"user/alice", created.access_token()};
  // The database holds a hash, never the token.
  {
    pqxx::connection conn(env_->connection_string());
    pqxx::nontransaction txn(conn);
    auto row = txn.exec_params1(
        "SELECT access_token_hash FROM clients WHERE client_id = $1",
        "user/alice");
    const std::string hash = pqxx::binarystring(row[0]).str();
    EXPECT_EQ(hash.size(), 32u);
    EXPECT_EQ(hash.find(alice.access_token), std::string::npos);
  }
  auto whoami = WhoAmI(alice);
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ(whoami->client_id(), "user/alice");
  EXPECT_FALSE(whoami->temporary());

  // Bad input changes nothing and names the field.
  v1::CreateClientRequest bad = create;
  bad.set_client_id("user/bob");
  bad.add_scopes("bad\nscope");
  grpc::Status status =
      auth_->CreateClient(NewContext(root()).get(), bad, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(GetErrorInfo(ToStatus(status)).details["field"], "scopes[2]");
  bad = create;
  bad.set_client_id("user/bob");
  *bad.mutable_expires() = ToProtoTime(absl::Now() - absl::Hours(1));
  status = auth_->CreateClient(NewContext(root()).get(), bad, &created);
  EXPECT_EQ(GetErrorInfo(ToStatus(status)).details["field"], "expires");
  status = auth_->CreateClient(NewContext(root()).get(), create, &created);
  EXPECT_TRUE(HasErrorCode(ToStatus(status), ErrorCode::kRequestConflict));
  // A caller cannot hand out scopes it does not hold.
  v1::CreateClientRequest escalate = create;
  escalate.set_client_id("user/eve");
  escalate.clear_scopes();
  escalate.add_scopes("*");
  const TestCredentials admin = MustCreateClient(
      "user/admin", {"auth:create-client:user/*", "queue:get-task:*"});
  status = auth_->CreateClient(NewContext(admin).get(), escalate, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  auto info = GetErrorInfo(ToStatus(status));
  EXPECT_EQ(info.code, ErrorCode::kInsufficientScopes);
  EXPECT_NE(info.details["required"].find("*"), std::string::npos)
      << info.details["required"];

  v1::ClientIdRequest id;
  id.set_client_id("user/alice");
  v1::ClientResponse client;
  ASSERT_TRUE(auth_->DisableClient(NewContext(root()).get(), id, &client).ok());
  EXPECT_TRUE(client.client().disabled());
  EXPECT_TRUE(HasErrorCode(WhoAmI(alice).status(),
                           ErrorCode::kAuthenticationFailed));
  ASSERT_TRUE(auth_->EnableClient(NewContext(root()).get(), id, &client).ok());
  EXPECT_TRUE(WhoAmI(alice).ok());

  v1::ResetAccessTokenResponse reset;
  ASSERT_TRUE(
      auth_->ResetAccessToken(NewContext(root()).get(), id, &reset).ok());
  EXPECT_TRUE(HasErrorCode(WhoAmI(alice).status(),
                           ErrorCode::kAuthenticationFailed));
  const TestCredentials alice2{"user/alice", reset.access_token()};
  EXPECT_TRUE(WhoAmI(alice2).ok());
  // A token is bound to its client id.
  EXPECT_FALSE(WhoAmI({"user/admin", reset.access_token()}).ok());

  v1::UpdateClientRequest update;
  update.set_client_id("user/alice");
  update.set_description("Alice, narrowed");
  update.add_scopes("queue:get-task:*");
  ASSERT_TRUE(
      auth_->UpdateClient(NewContext(root()).get(), update, &client).ok());
  EXPECT_EQ(client.client().description(), "Alice, narrowed");
  auto narrowed = WhoAmI(alice2);
  ASSERT_TRUE(narrowed.ok());
  EXPECT_EQ(std::vector<std::string>(narrowed->scopes().begin(),
                                     narrowed->scopes().end()),
            std::vector<std::string>({"queue:get-task:*"}));

  v1::ListClientsRequest list;
  list.set_prefix("user/");
  list.set_limit(1);
  std::vector<std::string> listed;
  for (int page = 0; page < 10; ++page) {
    v1::ListClientsResponse response;
    ASSERT_TRUE(
        auth_->ListClients(NewContext(root()).get(), list, &response).ok());
    for (const auto& c : response.clients()) listed.push_back(c.client_id());
    if (response.continuation_token().empty()) break;
    list.set_continuation_token(response.continuation_token());
  }
  EXPECT_EQ(listed, std::vector<std::string>({"user/admin", "user/alice"}));

  v1::DeleteClientResponse deleted;
  ASSERT_TRUE(auth_->DeleteClient(NewContext(root()).get(), id, &deleted).ok());
  EXPECT_TRUE(HasErrorCode(WhoAmI(alice2).status(),
                           ErrorCode::kAuthenticationFailed));
  status = auth_->GetClient(NewContext(root()).get(), id, &client);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AuthServerTest, PermanentClientsAreCachedNotReadPerCall) {
  const TestCredentials alice = MustCreateClient("user/alice", {"a:b"});
  ASSERT_TRUE(WhoAmI(alice).ok());
  // Creating alice bumped the clients generation; the refresh thread may
  // empty the cache once more when it gets to that notice (within its poll
  // interval, 1 s). After that, calls must not read the database.
  absl::SleepFor(absl::Milliseconds(1500));
  ASSERT_TRUE(WhoAmI(alice).ok());
  const uint64_t reads = env_->auth().state().client_reads();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(WhoAmI(alice).ok());
  EXPECT_EQ(env_->auth().state().client_reads(), reads);
  // last_used is recorded (once), not written per call.
  auto stored = env_->auth().store().GetClient("user/alice");
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->last_used.has_value());
}

TEST_F(AuthServerTest, TemporaryCredentialsAndAuthorizedScopes) {
  const TestCredentials alice =
      MustCreateClient("user/alice", {"queue:get-task:*", "secrets:get:a/*"});
  v1::CreateTemporaryCredentialsRequest request;
  request.add_scopes("secrets:get:a/b");
  request.mutable_lifetime()->set_seconds(3600);
  v1::CreateTemporaryCredentialsResponse minted;
  ASSERT_TRUE(auth_->CreateTemporaryCredentials(NewContext(alice).get(),
                                                request, &minted)
                  .ok());
  EXPECT_EQ(minted.client_id(), "user/alice");
  EXPECT_EQ(minted.expiry().seconds() - minted.start().seconds(), 3600);
  const TestCredentials temp{"user/alice", "", minted.certificate()};
  auto whoami = WhoAmI(temp);
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_TRUE(whoami->temporary());
  EXPECT_EQ(whoami->issuer(), "user/alice");
  EXPECT_EQ(std::vector<std::string>(whoami->scopes().begin(),
                                     whoami->scopes().end()),
            std::vector<std::string>({"secrets:get:a/b"}));
  // A certificate is checked against the client id sent with it.
  EXPECT_TRUE(HasErrorCode(WhoAmI({"user/bob", "", minted.certificate()})
                               .status(),
                           ErrorCode::kAuthenticationFailed));
  // More than the issuer holds: refused.
  request.add_scopes("secrets:get:b/c");
  grpc::Status status = auth_->CreateTemporaryCredentials(
      NewContext(alice).get(), request, &minted);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  request.clear_scopes();
  request.mutable_lifetime()->set_seconds(32 * 24 * 3600);
  status = auth_->CreateTemporaryCredentials(NewContext(alice).get(), request,
                                             &minted);
  EXPECT_EQ(GetErrorInfo(ToStatus(status)).details["field"], "lifetime");

  // Authorized scopes narrow a call, never widen it.
  TestCredentials narrowed = root();
  narrowed.authorized_scopes = R"(["queue:get-task:*"])";
  auto root_narrowed = WhoAmI(narrowed);
  ASSERT_TRUE(root_narrowed.ok());
  EXPECT_EQ(std::vector<std::string>(root_narrowed->scopes().begin(),
                                     root_narrowed->scopes().end()),
            std::vector<std::string>({"queue:get-task:*"}));
  EXPECT_TRUE(HasErrorCode(CreateTask(NewTask("proj/x"), narrowed).status(),
                           ErrorCode::kInsufficientScopes));
  narrowed.authorized_scopes = "[not json";
  status = auth_->CurrentScopes(NewContext(narrowed).get(), {},
                                &*root_narrowed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(GetErrorInfo(ToStatus(status)).details["field"],
            "drover-authorized-scopes");
}

TEST_F(AuthServerTest, AnonymousCallersHoldTheAnonymousRole) {
  v1::ExpandScopesRequest expand;
  expand.add_scopes("assume:anonymous");
  v1::ExpandScopesResponse expanded;
  ASSERT_TRUE(
      auth_->ExpandScopes(NewContext(root()).get(), expand, &expanded).ok());
  EXPECT_NE(std::find(expanded.scopes().begin(), expanded.scopes().end(),
                      "queue:get-artifact:public/*"),
            expanded.scopes().end());
  // Anonymous callers cannot even ask who they are...
  EXPECT_TRUE(HasErrorCode(WhoAmI({}).status(),
                           ErrorCode::kAuthenticationFailed));
  // ...and get what the role grants, no more.
  v1::TaskIdRequest get;
  get.set_task_id(NewSlugId());
  v1::GetTaskResponse task;
  grpc::Status status = queue_->GetTask(NewContext({}).get(), get, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  v1::UpdateRoleRequest update;
  update.set_role_id("anonymous");
  update.add_scopes("queue:get-task:*");
  v1::RoleResponse role;
  ASSERT_TRUE(auth_->UpdateRole(NewContext(root()).get(), update, &role).ok());
  status = queue_->GetTask(NewContext({}).get(), get, &task);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND)
      << status.error_message();
}

TEST_F(AuthServerTest, RoleAndClientChangesReachOtherReplicas) {
  auto second = env_->AddReplica();
  ASSERT_TRUE(second.ok()) << second.status();
  auto auth2 = v1::Auth::NewStub(env_->channel(*second));
  const TestCredentials ci = MustCreateClient("ci/bot", {"assume:project:ci"});
  auto before = WhoAmI(ci, auth2.get());
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->scopes_size(), 1);

  v1::CreateRoleRequest role;
  role.set_role_id("project:ci");
  role.add_scopes("secrets:get:ci/*");
  role.add_scopes("assume:project:ci");  // A cycle is harmless.
  v1::RoleResponse created;
  ASSERT_TRUE(auth_->CreateRole(NewContext(root()).get(), role, &created).ok());
  EXPECT_NE(std::find(created.role().expanded_scopes().begin(),
                      created.role().expanded_scopes().end(),
                      "secrets:get:ci/*"),
            created.role().expanded_scopes().end());
  auto sees_role = [&]() {
    auto whoami = WhoAmI(ci, auth2.get());
    return whoami.ok() &&
           std::find(whoami->scopes().begin(), whoami->scopes().end(),
                     "secrets:get:ci/*") != whoami->scopes().end();
  };
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!sees_role() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(sees_role()) << "the other replica never saw the new role";

  // Parameterised roles.
  v1::CreateRoleRequest param;
  param.set_role_id("repo:*");
  param.add_scopes("secrets:get:repo/<..>/token");
  ASSERT_TRUE(auth_->CreateRole(NewContext(root()).get(), param, &created).ok());
  v1::ExpandScopesRequest expand;
  expand.add_scopes("assume:repo:drover");
  v1::ExpandScopesResponse expanded;
  ASSERT_TRUE(
      auth_->ExpandScopes(NewContext(root()).get(), expand, &expanded).ok());
  EXPECT_NE(std::find(expanded.scopes().begin(), expanded.scopes().end(),
                      "secrets:get:repo/drover/token"),
            expanded.scopes().end());
  // A role set that would never stop expanding is refused.
  v1::CreateRoleRequest runaway;
  runaway.set_role_id("grow*");
  runaway.add_scopes("assume:grow<..>x");
  grpc::Status status =
      auth_->CreateRole(NewContext(root()).get(), runaway, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << status.error_message();

  // Disabling in one replica refuses in the other at once or within the
  // refresh interval.
  v1::ClientIdRequest id;
  id.set_client_id("ci/bot");
  v1::ClientResponse client;
  ASSERT_TRUE(auth_->DisableClient(NewContext(root()).get(), id, &client).ok());
  give_up = absl::Now() + absl::Seconds(10);
  while (WhoAmI(ci, auth2.get()).ok() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(HasErrorCode(WhoAmI(ci, auth2.get()).status(),
                           ErrorCode::kAuthenticationFailed));
}

// ---- secrets and encrypted columns -------------------------------------------

TEST_F(AuthServerTest, SecretsRoundTripExpiryScopesAndPaging) {
  const TestCredentials reader =
      MustCreateClient("svc/reader", {"secrets:get:proj/*"});
  ASSERT_TRUE(SetSecret("proj/a", R"({"user":"x","password":"y"})", root()).ok());
  ASSERT_TRUE(SetSecret("proj/b", R"("plain string")", root()).ok());
  ASSERT_TRUE(SetSecret("other/c", "42", root()).ok());
  EXPECT_EQ(GetSecret("proj/a", reader).value_or(""),
            R"({"user":"x","password":"y"})");
  EXPECT_TRUE(HasErrorCode(GetSecret("other/c", reader).status(),
                           ErrorCode::kInsufficientScopes));
  EXPECT_TRUE(HasErrorCode(SetSecret("proj/a", "1", reader),
                           ErrorCode::kInsufficientScopes));
  // Replaced, not duplicated.
  ASSERT_TRUE(SetSecret("proj/a", "2", root()).ok());
  EXPECT_EQ(GetSecret("proj/a", reader).value_or(""), "2");

  absl::Status bad = SetSecret("proj/bad", "not json", root());
  EXPECT_EQ(GetErrorInfo(bad).details["field"], "value");
  EXPECT_EQ(GetErrorInfo(bad).message.find("not json"), std::string::npos);
  EXPECT_EQ(GetErrorInfo(SetSecret("has space", "1", root())).details["field"],
            "name");
  EXPECT_TRUE(HasErrorCode(SetSecret("proj/big", std::string(70000, '1'), root()),
                           ErrorCode::kInputTooLarge));
  EXPECT_TRUE(HasErrorCode(GetSecret("proj/bad", root()).status(),
                           ErrorCode::kResourceNotFound));

  ASSERT_TRUE(SetSecret("proj/soon", "1", root(),
                        absl::Now() + absl::Milliseconds(1500))
                  .ok());
  EXPECT_TRUE(GetSecret("proj/soon", root()).ok());
  absl::SleepFor(absl::Milliseconds(1600));
  EXPECT_TRUE(HasErrorCode(GetSecret("proj/soon", root()).status(),
                           ErrorCode::kResourceExpired));
  auto swept = env_->auth().SweepOnce();
  ASSERT_TRUE(swept.ok());
  EXPECT_GE(*swept, 1);
  EXPECT_TRUE(HasErrorCode(GetSecret("proj/soon", root()).status(),
                           ErrorCode::kResourceNotFound));

  v1::ListSecretsRequest list;
  list.set_prefix("proj/");
  list.set_limit(1);
  std::vector<std::string> names;
  for (int page = 0; page < 10; ++page) {
    v1::ListSecretsResponse response;
    ASSERT_TRUE(
        secrets_->ListSecrets(NewContext(root()).get(), list, &response).ok());
    for (const auto& name : response.names()) names.push_back(name);
    if (response.continuation_token().empty()) break;
    list.set_continuation_token(response.continuation_token());
  }
  EXPECT_EQ(names, std::vector<std::string>({"proj/a", "proj/b"}));

  v1::SecretNameRequest remove;
  remove.set_name("proj/b");
  v1::RemoveSecretResponse removed;
  ASSERT_TRUE(
      secrets_->RemoveSecret(NewContext(root()).get(), remove, &removed).ok());
  grpc::Status status =
      secrets_->RemoveSecret(NewContext(root()).get(), remove, &removed);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
}

std::string FindPgDump() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path candidate = entry.path() / "bin" / "pg_dump";
    if (fs::exists(candidate)) return candidate.string();
  }
  return "";
}

TEST_F(AuthServerTest, PgDumpHoldsNoSecretInPlaintext) {
  const std::string pg_dump = FindPgDump();
  if (pg_dump.empty()) GTEST_SKIP() << "pg_dump is not installed";
  const std::vector<std::string> markers = {
      "hunter2-CORRECT-HORSE-9f3a", "sk_live_MARKER_51HqLyjWDarjtT1",
      "-----BEGIN OPENSSH PRIVATE KEY----- MARKER"};
  for (size_t i = 0; i < markers.size(); ++i) {
    ASSERT_TRUE(SetSecret("dump/" + std::to_string(i),
                          nlohmann::json{{"value", markers[i]}}.dump(),
                          root())
                    .ok());
  }
  const std::string out =
      (fs::temp_directory_path() / ("drover-dump-" + NewSlugId())).string();
  const std::string command = pg_dump + " --dbname='" +
                              env_->connection_string() + "' > " + out +
                              " 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  const std::string dump = text.str();
  fs::remove(out);
  // It is the right database: the secrets' names are there.
  ASSERT_NE(dump.find("dump/0"), std::string::npos) << dump.substr(0, 2000);
  for (const std::string& marker : markers) {
    EXPECT_EQ(dump.find(marker), std::string::npos) << marker;
    // bytea is dumped as hex: the plaintext must not be there either.
    EXPECT_EQ(dump.find(crypto::HexEncode(marker)), std::string::npos)
        << marker;
  }
  // Nor any access token.
  EXPECT_EQ(dump.find(root().access_token), std::string::npos);
}

TEST_F(AuthServerTest, MovedOrAlteredCiphertextFailsToDecrypt) {
  ASSERT_TRUE(SetSecret("a", R"("alpha")", root()).ok());
  ASSERT_TRUE(SetSecret("b", R"("bravo")", root()).ok());
  ASSERT_TRUE(SetSecret("c", R"("charlie")", root()).ok());
  pqxx::connection conn(env_->connection_string());
  {
    pqxx::work txn(conn);
    txn.exec(
        "UPDATE secrets SET value = (SELECT value FROM secrets WHERE name = "
        "'a') WHERE name = 'b'");
    txn.commit();
  }
  auto moved = GetSecret("b", root());
  EXPECT_TRUE(HasErrorCode(moved.status(), ErrorCode::kInternalError))
      << moved.status();
  EXPECT_EQ(moved.status().message().find("alpha"), std::string::npos);
  {
    pqxx::work txn(conn);
    std::string value = pqxx::binarystring(
                            txn.exec1("SELECT value FROM secrets WHERE name = "
                                      "'c'")[0])
                            .str();
    value[value.size() / 2] ^= 0x01;
    txn.exec_params("UPDATE secrets SET value = $1 WHERE name = 'c'",
                    pqxx::binarystring(value));
    txn.commit();
  }
  EXPECT_TRUE(HasErrorCode(GetSecret("c", root()).status(),
                           ErrorCode::kInternalError));
  EXPECT_EQ(GetSecret("a", root()).value_or(""), R"("alpha")");
}

TEST_F(AuthServerTest, RotationLeavesNoRowUnderAnOldKey) {
  for (int i = 0; i < 7; ++i) {
    ASSERT_TRUE(
        SetSecret("rot/" + std::to_string(i), std::to_string(i), root()).ok());
  }
  const crypto::KeyRing& old_ring = env_->auth().keys().keyring;
  ASSERT_EQ(old_ring.current_key_id(), "k1");
  auto old_keys = crypto::ReadSecretFile(env_->data_dir() + "/keys/crypto-keys");
  ASSERT_TRUE(old_keys.ok()) << old_keys.status();
  auto k2 = crypto::KeyRing::GenerateEntry("k2");
  ASSERT_TRUE(k2.ok());
  auto new_ring =
      crypto::KeyRing::Parse(*old_keys + "\n" + *k2 + "\n", "test-keys");
  ASSERT_TRUE(new_ring.ok()) << new_ring.status();
  secrets::SecretsStore& store = env_->auth().secrets_store();

  // Interrupted after one batch: part done, and a second run carries on.
  auto first = store.RotateBatch(*new_ring, "", 3);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->reencrypted, 3);
  auto counts = store.CountByKeyId();
  ASSERT_TRUE(counts.ok());
  EXPECT_EQ((*counts)["k2"], 3);
  EXPECT_EQ((*counts)["k1"], 4);

  // The same keys as configuration would give them: entries only.
  AuthConfig config;
  std::string entries;
  std::istringstream lines(*old_keys);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != '#') entries += line + ",";
  }
  config.crypto_keys.keys = entries + *k2;
  config.batch = 2;
  std::ostringstream out;
  SystemClock clock;
  absl::Status rotated = RotateKeysCommand(config, env_->data_dir(),
                                           env_->connection_string(), &clock,
                                           out);
  ASSERT_TRUE(rotated.ok()) << rotated << "\n" << out.str();
  EXPECT_NE(out.str().find("every encrypted value is under key k2"),
            std::string::npos)
      << out.str();

  pqxx::connection conn(env_->connection_string());
  pqxx::nontransaction txn(conn);
  int rows = 0;
  for (const auto& row : txn.exec("SELECT name, value, key_id FROM secrets")) {
    ++rows;
    const std::string name = row[0].c_str();
    const std::string value = pqxx::binarystring(row[1]).str();
    EXPECT_EQ(std::string(row[2].c_str()), "k2") << name;
    auto key_id = crypto::KeyIdOf(value);
    ASSERT_TRUE(key_id.ok());
    EXPECT_EQ(*key_id, "k2") << name;
    auto plain = new_ring->Decrypt(value, secrets::SecretValueAd(name));
    ASSERT_TRUE(plain.ok()) << plain.status();
    EXPECT_EQ(*plain, name.substr(4));
    // The old ring alone can no longer read it.
    EXPECT_FALSE(old_ring.Decrypt(value, secrets::SecretValueAd(name)).ok());
  }
  EXPECT_EQ(rows, 7);
}

// ---- bootstrap, static clients, TLS -----------------------------------------

TEST_F(AuthServerTest, BootstrapRunsOncePerDatabase) {
  const std::string file = env_->auth().root_credentials_file();
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(env_->auth().bootstrapped());
  auto root_whoami = WhoAmI(root());
  ASSERT_TRUE(root_whoami.ok());
  EXPECT_EQ(std::vector<std::string>(root_whoami->scopes().begin(),
                                     root_whoami->scopes().end()),
            std::vector<std::string>({"*"}));
  // Keys were generated private.
  for (const char* key : {"crypto-keys", "signing-key", "token-hash-key"}) {
    const std::string path = env_->data_dir() + "/keys/" + key;
    ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
    EXPECT_EQ(st.st_mode & 0077, 0u) << path;
  }
  auto second = env_->AddReplica();
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(env_->auth(*second).bootstrapped());
  // Same keys: root's token works on the second replica too.
  auto auth2 = v1::Auth::NewStub(env_->channel(*second));
  EXPECT_TRUE(WhoAmI(root(), auth2.get()).ok());
}

TEST_F(AuthServerTest, StaticClientsComeFromConfigurationOnly) {
  const std::string file = env_->data_dir() + "/static-clients.json";
  const std::string token = crypto::GenerateAccessToken();
  ASSERT_TRUE(crypto::WriteSecretFile(
                  file,
                  nlohmann::json::array({{{"clientId", "static/ops"},
                                          {"accessToken", token},
                                          {"scopes", {"queue:get-task:*"}},
                                          {"description", "ops"}}})
                      .dump(),
                  true)
                  .ok());
  AuthSystemOptions options;
  options.config.static_clients_file = file;
  options.config.generate_keys = KeyGeneration::kNever;
  options.data_dir = env_->data_dir();
  options.connection_string = env_->connection_string();
  options.run_sweeper = false;
  std::ostringstream out;
  SystemClock clock;
  auto system =
      AuthSystem::Open(std::move(options), &env_->store(), &clock, out);
  ASSERT_TRUE(system.ok()) << system.status();
  // Visible to the running replica once its cache hears of the change.
  absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (!WhoAmI({"static/ops", token}).ok() && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_TRUE(WhoAmI({"static/ops", token}).ok());
  v1::ClientIdRequest id;
  id.set_client_id("static/ops");
  v1::ClientResponse client;
  grpc::Status status =
      auth_->DisableClient(NewContext(root()).get(), id, &client);
  EXPECT_TRUE(HasErrorCode(ToStatus(status), ErrorCode::kRequestConflict));

  // A token in the file that is too short is refused, naming the entry
  // but never echoing the token.
  ASSERT_TRUE(crypto::WriteSecretFile(
                  file,
                  R"([{"clientId": "static/ops", "accessToken": "short"}])",
                  true)
                  .ok());
  AuthSystemOptions bad;
  bad.config.static_clients_file = file;
  bad.data_dir = env_->data_dir();
  bad.connection_string = env_->connection_string();
  bad.run_sweeper = false;
  auto refused = AuthSystem::Open(std::move(bad), &env_->store(), &clock, out);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(GetErrorInfo(refused.status()).details["field"],
            "static-clients-file[0].accessToken");
}

class TlsAuthServerTest : public AuthServerTest {
 protected:
  AuthTestEnvOptions Options() override {
    AuthTestEnvOptions options;
    options.tls = true;
    return options;
  }
};

TEST_F(TlsAuthServerTest, ClientLibraryVerifiesTheServerCertificate) {
  const std::string url =
      absl::StrCat("https://localhost:", env_->server().grpc_port());
  client::ConnectionOptions options;
  options.url = url;
  options.ca_file = env_->ca_file();
  options.credentials.client_id = root().client_id;
  options.credentials.access_token = root().access_token;
  auto connection = client::Connection::Create(options);
  ASSERT_TRUE(connection.ok()) << connection.status();
  client::CallOptions call;
  call.timeout = absl::Seconds(10);
  call.retry.max_attempts = 1;
  client::AuthClient auth(*connection, call);
  auto whoami = auth.CurrentScopes();
  ASSERT_TRUE(whoami.ok()) << whoami.status();
  EXPECT_EQ(whoami->client_id(), root().client_id);

  // A CA that did not sign the server's certificate: no connection.
  options.ca_file = env_->other_ca_file();
  auto untrusted = client::Connection::Create(options);
  ASSERT_TRUE(untrusted.ok());
  client::AuthClient untrusted_auth(*untrusted, call);
  EXPECT_EQ(untrusted_auth.CurrentScopes().status().code(),
            absl::StatusCode::kUnavailable);
  // Plaintext to a TLS listener: no answer either.
  options.url = absl::StrCat("http://127.0.0.1:", env_->server().grpc_port());
  options.ca_file.clear();
  auto plaintext = client::Connection::Create(options);
  ASSERT_TRUE(plaintext.ok());
  client::AuthClient plaintext_auth(*plaintext, call);
  EXPECT_FALSE(plaintext_auth.CurrentScopes().ok());
}

TEST(ServerCredentialsTest, TlsFlagsMustComeTogether) {
  AuthConfig config;
  config.tls_cert = "/nonexistent/cert.pem";
  // The error names the flag that is missing.
  EXPECT_EQ(GetErrorInfo(ServerCredentials(config).status()).details["field"],
            "tls-key");
  config.tls_key = "/nonexistent/key.pem";
  EXPECT_EQ(GetErrorInfo(ServerCredentials(config).status()).details["field"],
            "tls-cert");
  config = AuthConfig{};
  config.tls_client_ca = "/nonexistent/ca.pem";
  EXPECT_EQ(GetErrorInfo(ServerCredentials(config).status()).details["field"],
            "tls-client-ca");
  EXPECT_TRUE(ServerCredentials(AuthConfig{}).ok());
}

}  // namespace
}  // namespace drover::queue::auth
