#include "client/secrets_client.h"

#include <utility>

namespace drover::client {

SecretsClient::SecretsClient(std::shared_ptr<const Connection> connection,
                             CallOptions defaults)
    : connection_(std::move(connection)),
      stub_(v1::Secrets::NewStub(connection_->channel())),
      defaults_(defaults) {}

template <typename Request, typename Response>
absl::StatusOr<Response> SecretsClient::Call(
    StubMethod<Request, Response> method, const Request& request,
    const Options& options, Idempotency idempotency) const {
  return CallUnary<Response>(
      *connection_, options.value_or(defaults_), idempotency,
      [&](grpc::ClientContext* context, Response* response) {
        return (stub_.get()->*method)(context, request, response);
      });
}

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
