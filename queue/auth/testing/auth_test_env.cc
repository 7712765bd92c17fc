#include "queue/auth/testing/auth_test_env.h"

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/grpc_status.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "drover/v1/auth.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "nlohmann/json.hpp"
#include "queue/queue_service/conversions.h"

namespace drover::queue::auth::testing {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Runs a shell command; its output goes to `log`.
bool Run(const std::string& command, const std::string& log) {
  return std::system((command + " >>" + log + " 2>&1").c_str()) == 0;
}

}  // namespace

void Attach(const TestCredentials& credentials, grpc::ClientContext* context) {
  if (!credentials.client_id.empty()) {
    context->AddMetadata("drover-client-id", credentials.client_id);
  }
  if (!credentials.access_token.empty()) {
    context->AddMetadata("drover-access-token", credentials.access_token);
  }
  if (!credentials.certificate.empty()) {
    context->AddMetadata("drover-certificate", credentials.certificate);
  }
  if (!credentials.authorized_scopes.empty()) {
    context->AddMetadata("drover-authorized-scopes",
                         credentials.authorized_scopes);
  }
}

std::unique_ptr<grpc::ClientContext> NewContext(
    const TestCredentials& credentials, absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(timeout));
  Attach(credentials, context.get());
  return context;
}

struct AuthTestEnv::Replica {
  std::unique_ptr<store::PgStore> store;
  std::unique_ptr<store::PgPendingNotifier> notifier;
  std::unique_ptr<AuthSystem> auth;
  std::unique_ptr<server::QueueServer> server;
  std::shared_ptr<grpc::Channel> channel;

  ~Replica() {
    channel.reset();
    // The server goes first: it calls into the auth system.
    if (server != nullptr) server->Stop();
    server.reset();
    auth.reset();
    notifier.reset();
    store.reset();
  }
};

absl::StatusOr<std::unique_ptr<AuthTestEnv>> AuthTestEnv::Create(
    AuthTestEnvOptions options) {
  std::unique_ptr<AuthTestEnv> env(new AuthTestEnv());
  env->options_ = std::move(options);
  DROVER_ASSIGN_OR_RETURN(env->db_, store::testing::TestDatabase::Create());
  DROVER_ASSIGN_OR_RETURN(fs::path dir,
                          drover::testing::MakeTempDir("drover-auth-test-"));
  env->dir_ = dir.string();
  env->data_dir_ = env->dir_ + "/data";
  if (env->options_.tls) DROVER_RETURN_IF_ERROR(env->MakeTlsFiles());
  DROVER_ASSIGN_OR_RETURN(int first, env->AddReplica());
  (void)first;
  const std::string root_file = env->auth(0).root_credentials_file();
  auto root = nlohmann::json::parse(ReadFile(root_file), nullptr, false);
  if (!root.is_object()) {
    return InternalError("no root credentials were written to " + root_file);
  }
  env->root_.client_id = root.value("clientId", "");
  env->root_.access_token = root.value("accessToken", "");
  return env;
}

AuthTestEnv::~AuthTestEnv() {
  // Later replicas first, so the bootstrapping one outlives the rest.
  while (!replicas_.empty()) replicas_.pop_back();
  db_.reset();
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

absl::Status AuthTestEnv::MakeTlsFiles() {
  if (std::system("openssl version >/dev/null 2>&1") != 0) {
    return absl::UnavailableError("the openssl command is not installed");
  }
  const std::string d = dir_;
  const std::string log = d + "/openssl.log";
  const std::string key_options =
      "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::ofstream(d + "/san.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                << "extendedKeyUsage=serverAuth\n";
  const bool ok =
      Run("openssl req -x509 " + key_options + " -keyout " + d +
              "/ca.key -out " + d +
              "/ca.pem -days 2 -subj '/CN=drover test CA'",
          log) &&
      Run("openssl req -x509 " + key_options + " -keyout " + d +
              "/other-ca.key -out " + d +
              "/other-ca.pem -days 2 -subj '/CN=drover other CA'",
          log) &&
      Run("openssl req " + key_options + " -keyout " + d + "/server.key -out " +
              d + "/server.csr -subj '/CN=localhost'",
          log) &&
      Run("openssl x509 -req -in " + d + "/server.csr -CA " + d +
              "/ca.pem -CAkey " + d + "/ca.key -CAcreateserial -out " + d +
              "/server.pem -days 2 -extfile " + d + "/san.cnf",
          log);
  if (!ok) {
    return InternalError("openssl failed making test certificates:\n" +
                         ReadFile(log));
  }
  ca_file_ = d + "/ca.pem";
  other_ca_file_ = d + "/other-ca.pem";
  options_.config.tls_cert = d + "/server.pem";
  options_.config.tls_key = d + "/server.key";
  return absl::OkStatus();
}

absl::StatusOr<int> AuthTestEnv::AddReplica() {
  auto r = std::make_unique<Replica>();
  store::PgStoreOptions store_options;
  store_options.connection_string = db_->connection_string();
  store_options.pool_size = 4;
  DROVER_ASSIGN_OR_RETURN(r->store,
                          store::PgStore::Open(store_options, &clock_));
  r->notifier = std::make_unique<store::PgPendingNotifier>(
      store::PgPendingNotifier::Options{.connection_string =
                                            db_->connection_string()});

  AuthSystemOptions auth_options;
  auth_options.config = options_.config;
  auth_options.config.generate_keys = KeyGeneration::kAlways;
  auth_options.config.refresh_interval = absl::Milliseconds(200);
  auth_options.data_dir = data_dir_;
  auth_options.connection_string = db_->connection_string();
  auth_options.pool_size = 2;
  std::ostringstream out;
  DROVER_ASSIGN_OR_RETURN(
      r->auth,
      AuthSystem::Open(std::move(auth_options), r->store.get(), &clock_, out));

  server::QueueServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  server_options.http_listen = "";
  server_options.rpc_threads = 4;
  server_options.run_resolvers = false;
  server_options.service.claim.poll_timeout = absl::Seconds(1);
  server_options.service.claim.safety_poll_interval = absl::Milliseconds(200);
  server_options.shutdown_grace = absl::Seconds(2);
  server_options.credentials = r->auth->server_credentials();
  if (options_.adjust_server) options_.adjust_server(server_options);
  r->server = std::make_unique<server::QueueServer>(
      server_options, r->store.get(), r->notifier.get(), &clock_,
      r->auth->authorizer());
  r->server->AddService(r->auth->auth_service());
  r->server->AddService(r->auth->secrets_service());
  r->server->queue_service().SetTaskCredentialsIssuer(
      r->auth->task_credentials());
  if (options_.before_start) options_.before_start(*r->server, *r->auth);
  DROVER_RETURN_IF_ERROR(r->server->Start());
  if (options_.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadFile(ca_file_);
    r->channel =
        grpc::CreateChannel(absl::StrCat("localhost:", r->server->grpc_port()),
                            grpc::SslCredentials(ssl));
  } else {
    r->channel = grpc::CreateChannel(r->server->grpc_target(),
                                     grpc::InsecureChannelCredentials());
  }
  replicas_.push_back(std::move(r));
  return static_cast<int>(replicas_.size()) - 1;
}

std::shared_ptr<grpc::Channel> AuthTestEnv::channel(int replica) const {
  return replicas_.at(replica)->channel;
}

std::string AuthTestEnv::target(int replica) const {
  return replicas_.at(replica)->server->grpc_target();
}

AuthSystem& AuthTestEnv::auth(int replica) {
  return *replicas_.at(replica)->auth;
}

server::QueueServer& AuthTestEnv::server(int replica) {
  return *replicas_.at(replica)->server;
}

store::PgStore& AuthTestEnv::store(int replica) {
  return *replicas_.at(replica)->store;
}

const std::string& AuthTestEnv::connection_string() const {
  return db_->connection_string();
}

absl::StatusOr<TestCredentials> AuthTestEnv::CreateClient(
    const std::string& client_id, const std::vector<std::string>& scopes) {
  auto stub = v1::Auth::NewStub(channel(0));
  v1::CreateClientRequest request;
  request.set_client_id(client_id);
  for (const std::string& scope : scopes) request.add_scopes(scope);
  *request.mutable_expires() =
      queue_service::ToProtoTime(clock_.Now() + absl::Hours(24));
  v1::CreateClientResponse response;
  grpc::Status status =
      stub->CreateClient(NewContext(root_).get(), request, &response);
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  TestCredentials credentials;
  credentials.client_id = client_id;
  credentials.access_token = response.access_token();
  return credentials;
}

}  // namespace drover::queue::auth::testing
