// SecretsClient: the drover.v1.Secrets service (named JSON values,
// encrypted at rest by the server), one method per RPC.
//
// Each method returns the response or the server's error decoded into an
// absl::Status that keeps {code, message, details}; GetSecret of an
// expired secret fails with ResourceExpired.
//
// Retries: UNAVAILABLE is retried for every method; SetSecret (a replace)
// and the reads leave the same state when repeated. RemoveSecret is not
// retried: a repeat after a lost answer would report ResourceNotFound.
//
// Thread-safe.
#ifndef DROVER_CLIENT_SECRETS_CLIENT_H_
#define DROVER_CLIENT_SECRETS_CLIENT_H_

#include "absl/status/statusor.h"
#include "client/call.h"
#include "client/connection.h"
#include "client/service_client.h"
#include "drover/v1/secrets.grpc.pb.h"

namespace drover::client {

class SecretsClient : public ServiceClient<v1::Secrets> {
 public:
  // Takes the shared connection and the CallOptions of the calls that
  // pass none of their own (ServiceClient's constructor).
  using ServiceClient::ServiceClient;

  absl::StatusOr<v1::SetSecretResponse> SetSecret(
      const v1::SetSecretRequest& request, Options options = {}) const;
  absl::StatusOr<v1::GetSecretResponse> GetSecret(
      const v1::SecretNameRequest& request, Options options = {}) const;
  absl::StatusOr<v1::RemoveSecretResponse> RemoveSecret(
      const v1::SecretNameRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListSecretsResponse> ListSecrets(
      const v1::ListSecretsRequest& request, Options options = {}) const;
};

}  // namespace drover::client

#endif  // DROVER_CLIENT_SECRETS_CLIENT_H_
