#include "queue/secrets/secrets_service.h"

#include <utility>

#include "common/status.h"
#include "nlohmann/json.hpp"
#include "queue/queue_service/conversions.h"

namespace drover::queue::secrets {
namespace {

using queue_service::FromProtoTime;
using queue_service::Rfc3339;
using queue_service::ToProtoTime;

constexpr std::string_view kSetSecret = "/drover.v1.Secrets/SetSecret";
constexpr std::string_view kGetSecret = "/drover.v1.Secrets/GetSecret";
constexpr std::string_view kRemoveSecret = "/drover.v1.Secrets/RemoveSecret";
constexpr std::string_view kListSecrets = "/drover.v1.Secrets/ListSecrets";

absl::Status ValidateValue(const std::string& value) {
  if (value.size() > kMaxSecretValueBytes) {
    return MakeError(ErrorCode::kInputTooLarge,
                     "the secret value is " + std::to_string(value.size()) +
                         " bytes; at most " +
                         std::to_string(kMaxSecretValueBytes) +
                         " are allowed",
                     {{"field", "value"},
                      {"size", std::to_string(value.size())}});
  }
  if (!nlohmann::json::accept(value)) {
    // The value itself is secret: never echo it.
    return MakeError(ErrorCode::kInputError,
                     "the secret value must be JSON (for a plain string, "
                     "quote it: \"...\")",
                     {{"field", "value"}});
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSecretName(std::string_view name) {
  if (name.empty()) return InputError("name", name, "name must not be empty");
  if (name.size() > kMaxSecretNameLength) {
    return InputError("name", name,
                      "name is longer than " +
                          std::to_string(kMaxSecretNameLength) + " characters");
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(name[i]);
    if (c <= 0x20 || c > 0x7e) {
      return InputError("name", name,
                        "name must be printable ASCII without spaces; "
                        "position " +
                            std::to_string(i) + " is not");
    }
  }
  return absl::OkStatus();
}

SecretsService::SecretsService(SecretsStore* store,
                               const crypto::KeyRing* keyring,
                               auth::ScopeAuthorizer* authorizer,
                               const Clock* clock,
                               queue_service::BoundedExecutor* executor)
    : store_(store),
      keyring_(keyring),
      clock_(clock),
      runner_(authorizer, executor) {}

grpc::ServerUnaryReactor* SecretsService::SetSecret(
    grpc::CallbackServerContext* context, const v1::SetSecretRequest* request,
    v1::SetSecretResponse* /*response*/) {
  return runner_.Run(context, kSetSecret, *request, [=, this](
                                                         const auth::Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateSecretName(request->name()));
    DROVER_RETURN_IF_ERROR(ValidateValue(request->value()));
    std::optional<absl::Time> expires;
    if (request->has_expires()) {
      DROVER_ASSIGN_OR_RETURN(absl::Time t,
                              FromProtoTime(request->expires(), "expires"));
      if (t <= clock_->Now()) {
        return InputError("expires", Rfc3339(t), "must be in the future");
      }
      expires = t;
    }
    const std::string& name = request->name();
    DROVER_ASSIGN_OR_RETURN(
        std::string ciphertext,
        keyring_->Encrypt(request->value(), SecretValueAd(name)));
    return store_->Put(name, ciphertext, keyring_->current_key_id(), expires);
  });
}

grpc::ServerUnaryReactor* SecretsService::GetSecret(
    grpc::CallbackServerContext* context, const v1::SecretNameRequest* request,
    v1::GetSecretResponse* response) {
  return runner_.Run(context, kGetSecret, *request, [=, this](
                                                         const auth::Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateSecretName(request->name()));
    DROVER_ASSIGN_OR_RETURN(SecretRecord secret,
                            store_->Get(request->name()));
    if (secret.expires.has_value() && *secret.expires <= clock_->Now()) {
      return MakeError(ErrorCode::kResourceExpired,
                       "secret " + secret.name + " expired at " +
                           Rfc3339(*secret.expires),
                       {{"name", secret.name},
                        {"expires", Rfc3339(*secret.expires)}});
    }
    DROVER_ASSIGN_OR_RETURN(
        std::string value,
        keyring_->Decrypt(secret.value, SecretValueAd(secret.name)));
    response->set_name(secret.name);
    response->set_value(std::move(value));
    if (secret.expires.has_value()) {
      *response->mutable_expires() = ToProtoTime(*secret.expires);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* SecretsService::RemoveSecret(
    grpc::CallbackServerContext* context, const v1::SecretNameRequest* request,
    v1::RemoveSecretResponse* /*response*/) {
  return runner_.Run(context, kRemoveSecret, *request,
                     [=, this](const auth::Caller&) {
                       DROVER_RETURN_IF_ERROR(
                           ValidateSecretName(request->name()));
                       return store_->Remove(request->name());
                     });
}

grpc::ServerUnaryReactor* SecretsService::ListSecrets(
    grpc::CallbackServerContext* context, const v1::ListSecretsRequest* request,
    v1::ListSecretsResponse* response) {
  return runner_.Run(context, kListSecrets, *request, [=, this](
                                                           const auth::Caller&) {
    if (request->prefix().size() > kMaxSecretNameLength) {
      return InputError("prefix", request->prefix(),
                        "prefix is longer than " +
                            std::to_string(kMaxSecretNameLength) +
                            " characters");
    }
    DROVER_ASSIGN_OR_RETURN(int limit, auth::ListLimit(request->limit()));
    DROVER_ASSIGN_OR_RETURN(
        std::string after,
        auth::DecodeContinuationToken(request->continuation_token()));
    DROVER_ASSIGN_OR_RETURN(store::Page<std::string> page,
                            store_->ListNames(request->prefix(), after, limit));
    for (std::string& name : page.items) response->add_names(std::move(name));
    response->set_continuation_token(
        auth::EncodeContinuationToken(page.continuation_token));
    return absl::OkStatus();
  });
}

}  // namespace drover::queue::secrets
