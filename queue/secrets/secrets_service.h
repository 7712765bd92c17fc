// SecretsService: the drover.v1.Secrets gRPC service: named JSON values,
// encrypted at rest with the server's KeyRing (XChaCha20-Poly1305, the
// associated data binding each value to its row), guarded by
// secrets:set:<name> / secrets:get:<name> (docs/api-scopes.md).
//
// Input: names are 1..256 printable ASCII characters without spaces;
// values are JSON texts of at most kMaxSecretValueBytes; an expiry, when
// given, must be in the future. GetSecret of an expired secret answers
// ResourceExpired; the sweeper (SweepExpiredSecrets) deletes it later.
// ListSecrets lists names only, never values, and leaves expired ones out.
//
// Work runs on a BoundedExecutor after the ScopeAuthorizer allowed it.
#ifndef DROVER_QUEUE_SECRETS_SECRETS_SERVICE_H_
#define DROVER_QUEUE_SECRETS_SECRETS_SERVICE_H_

#include <string_view>

#include "common/clock.h"
#include "common/crypto/keyring.h"
#include "drover/v1/secrets.grpc.pb.h"
#include "queue/auth/scope_authorizer.h"
#include "queue/auth/service_util.h"
#include "queue/queue_service/executor.h"
#include "queue/secrets/secrets_store.h"

namespace drover::queue::secrets {

inline constexpr size_t kMaxSecretNameLength = 256;
inline constexpr size_t kMaxSecretValueBytes = 64 * 1024;

// Errors: InputError("name") for an empty, too long or non-printable name
// or one with a space.
absl::Status ValidateSecretName(std::string_view name);

class SecretsService final : public v1::Secrets::CallbackService {
 public:
  // Every pointer must outlive the service; the executor must be drained
  // before the service is destroyed.
  SecretsService(SecretsStore* store, const crypto::KeyRing* keyring,
                 auth::ScopeAuthorizer* authorizer, const Clock* clock,
                 queue_service::BoundedExecutor* executor);

  grpc::ServerUnaryReactor* SetSecret(grpc::CallbackServerContext* context,
                                      const v1::SetSecretRequest* request,
                                      v1::SetSecretResponse* response) override;
  grpc::ServerUnaryReactor* GetSecret(grpc::CallbackServerContext* context,
                                      const v1::SecretNameRequest* request,
                                      v1::GetSecretResponse* response) override;
  grpc::ServerUnaryReactor* RemoveSecret(
      grpc::CallbackServerContext* context,
      const v1::SecretNameRequest* request,
      v1::RemoveSecretResponse* response) override;
  grpc::ServerUnaryReactor* ListSecrets(
      grpc::CallbackServerContext* context,
      const v1::ListSecretsRequest* request,
      v1::ListSecretsResponse* response) override;

 private:
  SecretsStore* const store_;
  const crypto::KeyRing* const keyring_;
  const Clock* const clock_;
  auth::AuthorizedRunner runner_;
};

}  // namespace drover::queue::secrets

#endif  // DROVER_QUEUE_SECRETS_SECRETS_SERVICE_H_
