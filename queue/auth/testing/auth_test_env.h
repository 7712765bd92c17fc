// AuthTestEnv: drover-queue's serving side with real authentication, for
// tests: a fresh migrated PostgreSQL database (store test fixture), keys
// generated into a private temporary data directory, and one or more
// "replicas" on that database, each with its own PgStore, pending
// notifier, AuthSystem (Auth and Secrets services, ScopeAuthorizer, task
// credentials) and QueueServer on 127.0.0.1 (optionally over TLS), wired
// the way queue/server/serve.cc wires them. The first replica bootstraps
// the root client; its credentials are root_client_id()/root_token().
#ifndef DROVER_QUEUE_AUTH_TESTING_AUTH_TEST_ENV_H_
#define DROVER_QUEUE_AUTH_TESTING_AUTH_TEST_ENV_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server.h"
#include "queue/auth/auth_system.h"
#include "queue/server/queue_server.h"
#include "queue/store/pg_pending_notifier.h"
#include "queue/store/pg_store.h"
#include "queue/store/testing/test_database.h"

namespace drover::queue::auth::testing {

// Credentials as a test sends them; empty fields are not sent.
struct TestCredentials {
  std::string client_id;
  std::string access_token;
  std::string certificate;
  // A JSON array, sent as drover-authorized-scopes.
  std::string authorized_scopes;
};

// Adds the drover-* metadata of `credentials` to `context`.
void Attach(const TestCredentials& credentials, grpc::ClientContext* context);

// A context with a 30 s deadline carrying `credentials`.
std::unique_ptr<grpc::ClientContext> NewContext(
    const TestCredentials& credentials,
    absl::Duration timeout = absl::Seconds(30));

struct AuthTestEnvOptions {
  // Applied to every replica; data dir, generate_keys and TLS files are
  // filled in by the environment unless set.
  AuthConfig config;
  // Serve gRPC over TLS with a certificate for 127.0.0.1/localhost signed
  // by a CA the environment makes with the openssl CLI (ca_file()).
  bool tls = false;
  // Changes the server options of every replica (poll timeouts, ...).
  std::function<void(server::QueueServerOptions&)> adjust_server;
  // Called with each replica's QueueServer before it starts (extra
  // services).
  std::function<void(server::QueueServer&, AuthSystem&)> before_start;
};

class AuthTestEnv {
 public:
  // Errors: absl Unavailable when PostgreSQL (or, for TLS, openssl) is not
  // available here (callers skip the test with the reason); anything else
  // is a failure.
  static absl::StatusOr<std::unique_ptr<AuthTestEnv>> Create(
      AuthTestEnvOptions options = {});
  ~AuthTestEnv();

  // Starts another replica on the same database and keys; returns its
  // index.
  absl::StatusOr<int> AddReplica();

  std::shared_ptr<grpc::Channel> channel(int replica = 0) const;
  // "127.0.0.1:<port>".
  std::string target(int replica = 0) const;
  AuthSystem& auth(int replica = 0);
  server::QueueServer& server(int replica = 0);
  store::PgStore& store(int replica = 0);

  const TestCredentials& root() const { return root_; }
  const std::string& connection_string() const;
  const std::string& data_dir() const { return data_dir_; }
  // TLS: the CA's PEM file, and a second CA that did not sign the server.
  const std::string& ca_file() const { return ca_file_; }
  const std::string& other_ca_file() const { return other_ca_file_; }
  const Clock& clock() const { return clock_; }

  // Creates a permanent client directly through the first replica's Auth
  // service with root credentials; returns its credentials.
  absl::StatusOr<TestCredentials> CreateClient(
      const std::string& client_id, const std::vector<std::string>& scopes);

 private:
  struct Replica;
  AuthTestEnv() = default;
  absl::Status MakeTlsFiles();

  AuthTestEnvOptions options_;
  SystemClock clock_;
  std::unique_ptr<store::testing::TestDatabase> db_;
  std::string dir_;
  std::string data_dir_;
  std::string ca_file_;
  std::string other_ca_file_;
  TestCredentials root_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

}  // namespace drover::queue::auth::testing

#endif  // DROVER_QUEUE_AUTH_TESTING_AUTH_TEST_ENV_H_
