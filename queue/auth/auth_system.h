// AuthSystem: everything authentication, authorization and secrets need in
// one drover-queue process, built from AuthConfig: the server keys, the
// auth and secrets stores, the cached AuthState, the ScopeAuthorizer every
// service calls, the Auth and Secrets services (on an executor of their
// own), the task-credentials issuer ClaimWork uses, the first-start
// bootstrap of the root client, the static clients, and a sweeper thread
// deleting expired secrets and clients.
//
// Wiring (queue/server/serve.cc): open it after the queue store, before
// the QueueServer; pass authorizer() to the QueueServer, register
// auth_service() and secrets_service(), hand task_credentials() to the
// Queue service and server_credentials() to the listener. Destroy it after
// the QueueServer has stopped.
#ifndef DROVER_QUEUE_AUTH_AUTH_SYSTEM_H_
#define DROVER_QUEUE_AUTH_AUTH_SYSTEM_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/crypto/keyring.h"
#include "common/crypto/signing_key.h"
#include "common/crypto/token_hash.h"
#include "grpcpp/security/server_credentials.h"
#include "queue/auth/auth_config.h"
#include "queue/auth/auth_service.h"
#include "queue/auth/auth_state.h"
#include "queue/auth/auth_store.h"
#include "queue/auth/certificate.h"
#include "queue/auth/key_rotation.h"
#include "queue/auth/scope_authorizer.h"
#include "queue/auth/task_credentials_issuer.h"
#include "queue/queue_service/executor.h"
#include "queue/secrets/secrets_service.h"
#include "queue/secrets/secrets_store.h"
#include "queue/store/store.h"

namespace drover::queue::auth {

// The keys a server runs with.
struct ServerKeys {
  crypto::KeyRing keyring;
  std::shared_ptr<const crypto::SigningKey> signing_key;
  // The signing key's public half first, then any trusted older ones.
  std::vector<crypto::VerifyKey> verify_keys;
  crypto::TokenHasher token_hasher;
};

// Default locations under the data directory.
std::string KeysDirectory(const std::string& data_dir);
std::string DefaultRootCredentialsFile(const std::string& data_dir);

// Loads the keys AuthConfig names (or the defaults under
// <data_dir>/keys), generating missing default ones when `generate`.
// Generated files are written with mode 0600 and never overwritten.
// Errors: InputError naming the setting (missing without generation,
// unreadable, wrong format or permissions), KeyRing::Load's.
absl::StatusOr<ServerKeys> LoadServerKeys(const AuthConfig& config,
                                          const std::string& data_dir,
                                          bool generate);

struct AuthSystemOptions {
  AuthConfig config;
  std::string data_dir;
  std::string connection_string;
  // An embedded PostgreSQL (decides what --generate-keys=auto means).
  bool embedded_database = false;
  int pool_size = 4;
  // Threads of the Auth and Secrets services' executor.
  int rpc_threads = 4;
  size_t rpc_queue = 1024;
  // Run the expiry sweeper thread.
  bool run_sweeper = true;
};

class AuthSystem {
 public:
  // Loads keys, opens the stores (the schema must be migrated), starts the
  // AuthState, applies the static clients, bootstraps the root client on a
  // fresh database (telling `out` where its credentials are; the token is
  // only written to that file) and starts the sweeper. `tasks` (for scope
  // rules naming a task's scheduler and group) and `clock` must outlive
  // the system. Errors: the keys', the stores' and the bootstrap's.
  static absl::StatusOr<std::unique_ptr<AuthSystem>> Open(
      AuthSystemOptions options, store::Store* tasks, const Clock* clock,
      std::ostream& out);

  // Stops the sweeper and the AuthState thread and drains the executor.
  // The gRPC server using the services must have stopped before.
  ~AuthSystem();

  AuthSystem(const AuthSystem&) = delete;
  AuthSystem& operator=(const AuthSystem&) = delete;

  ScopeAuthorizer* authorizer() { return authorizer_.get(); }
  AuthService* auth_service() { return auth_service_.get(); }
  secrets::SecretsService* secrets_service() { return secrets_service_.get(); }
  const queue_service::TaskCredentialsIssuer* task_credentials() const {
    return task_credentials_.get();
  }
  const std::shared_ptr<grpc::ServerCredentials>& server_credentials() const {
    return server_credentials_;
  }

  AuthStore& store() { return *store_; }
  AuthState& state() { return *state_; }
  secrets::SecretsStore& secrets_store() { return *secrets_store_; }
  const ServerKeys& keys() const { return keys_; }
  const CertificateIssuer& certificate_issuer() const { return *issuer_; }
  // Where the root credentials were (or would have been) written.
  const std::string& root_credentials_file() const { return root_file_; }
  // True when this Open created the root client.
  bool bootstrapped() const { return bootstrapped_; }

  // One sweeper pass: deletes expired secrets and clients in batches.
  // Returns rows deleted. Errors: the stores'.
  absl::StatusOr<int> SweepOnce();

 private:
  AuthSystem(AuthSystemOptions options, ServerKeys keys, const Clock* clock);
  absl::Status Bootstrap(std::ostream& out);
  absl::Status ApplyStaticClients();
  void SweepLoop();

  const AuthSystemOptions options_;
  ServerKeys keys_;
  const Clock* const clock_;
  std::string root_file_;
  bool bootstrapped_ = false;

  std::shared_ptr<grpc::ServerCredentials> server_credentials_;
  std::unique_ptr<AuthStore> store_;
  std::unique_ptr<secrets::SecretsStore> secrets_store_;
  std::unique_ptr<AuthState> state_;
  std::unique_ptr<CertificateVerifier> verifier_;
  std::unique_ptr<CertificateIssuer> issuer_;
  std::unique_ptr<ScopeAuthorizer> authorizer_;
  std::unique_ptr<ServerTaskCredentialsIssuer> task_credentials_;
  std::unique_ptr<queue_service::BoundedExecutor> executor_;
  std::unique_ptr<AuthService> auth_service_;
  std::unique_ptr<secrets::SecretsService> secrets_service_;

  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread sweeper_;
};

// `drover-queue rotate-keys`: re-encrypts every encrypted column under the
// newest configured key (never generating keys), printing progress and a
// summary to `out`. The auth module's own columns (secrets.value) are
// always included; `more_columns` are those of other modules (the worker
// manager's workers.reregistration_secret), opened by the caller, rotated
// in the same batched, resumable way and counted in the same summary.
// Errors: the keys'; the stores'; RequestConflict when rows remain under
// old keys or could not be decrypted (naming them).
absl::Status RotateKeysCommand(
    const AuthConfig& config, const std::string& data_dir,
    const std::string& connection_string, const Clock* clock, std::ostream& out,
    const std::vector<EncryptedColumn*>& more_columns = {});

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_AUTH_SYSTEM_H_
