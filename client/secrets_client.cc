#include "client/secrets_client.h"

namespace drover::client {

absl::StatusOr<v1::SetSecretResponse> SecretsClient::SetSecret(
    const v1::SetSecretRequest& request, Options options) const {
  return Call(&v1::Secrets::Stub::SetSecret, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::GetSecretResponse> SecretsClient::GetSecret(
    const v1::SecretNameRequest& request, Options options) const {
  return Call(&v1::Secrets::Stub::GetSecret, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::RemoveSecretResponse> SecretsClient::RemoveSecret(
    const v1::SecretNameRequest& request, Options options) const {
  return Call(&v1::Secrets::Stub::RemoveSecret, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::ListSecretsResponse> SecretsClient::ListSecrets(
    const v1::ListSecretsRequest& request, Options options) const {
  return Call(&v1::Secrets::Stub::ListSecrets, request, options,
              Idempotency::kIdempotent);
}

}  // namespace drover::client
