#include "queue/auth/auth_service.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/status.h"
#include "queue/queue_service/conversions.h"

namespace drover::queue::auth {
namespace {

using queue_service::FromProtoTime;
using queue_service::ToProtoTime;

constexpr std::string_view kCreateClient = "/drover.v1.Auth/CreateClient";
constexpr std::string_view kResetAccessToken =
    "/drover.v1.Auth/ResetAccessToken";
constexpr std::string_view kUpdateClient = "/drover.v1.Auth/UpdateClient";
constexpr std::string_view kDisableClient = "/drover.v1.Auth/DisableClient";
constexpr std::string_view kEnableClient = "/drover.v1.Auth/EnableClient";
constexpr std::string_view kDeleteClient = "/drover.v1.Auth/DeleteClient";
constexpr std::string_view kGetClient = "/drover.v1.Auth/GetClient";
constexpr std::string_view kListClients = "/drover.v1.Auth/ListClients";
constexpr std::string_view kCreateRole = "/drover.v1.Auth/CreateRole";
constexpr std::string_view kUpdateRole = "/drover.v1.Auth/UpdateRole";
constexpr std::string_view kDeleteRole = "/drover.v1.Auth/DeleteRole";
constexpr std::string_view kGetRole = "/drover.v1.Auth/GetRole";
constexpr std::string_view kListRoles = "/drover.v1.Auth/ListRoles";
constexpr std::string_view kExpandScopes = "/drover.v1.Auth/ExpandScopes";
constexpr std::string_view kCurrentScopes = "/drover.v1.Auth/CurrentScopes";
constexpr std::string_view kCreateTemporaryCredentials =
    "/drover.v1.Auth/CreateTemporaryCredentials";

std::vector<std::string> ToVector(
    const google::protobuf::RepeatedPtrField<std::string>& values) {
  return {values.begin(), values.end()};
}

template <typename Repeated>
void Assign(Repeated* out, const std::vector<std::string>& values) {
  out->Clear();
  for (const std::string& v : values) *out->Add() = v;
}

// A role id: printable ASCII, 1..256 (ValidateRole without scopes).
absl::Status ValidateRoleId(const std::string& role_id) {
  return StripFieldPrefix(ValidateRole({role_id, {}}, "role"), "role.");
}

absl::Status ValidateListPrefix(const std::string& prefix) {
  if (prefix.size() > kMaxClientIdLength) {
    return InputError("prefix", prefix,
                      "prefix is longer than " +
                          std::to_string(kMaxClientIdLength) + " characters");
  }
  return absl::OkStatus();
}

// A future expiry from the request. Errors: InputError naming `field`.
absl::StatusOr<absl::Time> FutureExpiry(const google::protobuf::Timestamp& ts,
                                        std::string_view field,
                                        absl::Time now) {
  DROVER_ASSIGN_OR_RETURN(absl::Time expires, FromProtoTime(ts, field));
  if (expires <= now) {
    return InputError(field, queue_service::Rfc3339(expires),
                      "must be in the future");
  }
  return std::min(expires, NeverExpires());
}

}  // namespace

absl::Status ValidateDescription(std::string_view field,
                                 const std::string& description) {
  if (description.size() > kMaxDescriptionLength) {
    return InputError(field, description,
                      "description is longer than " +
                          std::to_string(kMaxDescriptionLength) + " bytes");
  }
  return absl::OkStatus();
}

absl::Status ValidateScopeList(
    std::string_view field,
    const google::protobuf::RepeatedPtrField<std::string>& scopes) {
  if (static_cast<size_t>(scopes.size()) > kMaxScopesPerEntity) {
    return InputError(field, std::to_string(scopes.size()),
                      "at most " + std::to_string(kMaxScopesPerEntity) +
                          " scopes are allowed");
  }
  return ValidateScopes(field, ToVector(scopes));
}

AuthService::AuthService(AuthStore* store, AuthState* state,
                         ScopeAuthorizer* authorizer,
                         const CertificateIssuer* certificates,
                         crypto::TokenHasher hasher, const Clock* clock,
                         queue_service::BoundedExecutor* executor)
    : store_(store),
      state_(state),
      certificates_(certificates),
      hasher_(std::move(hasher)),
      clock_(clock),
      runner_(authorizer, executor) {}

absl::StatusOr<v1::Client> AuthService::ToProto(
    const ClientRecord& client) const {
  v1::Client out;
  out.set_client_id(client.client_id);
  out.set_description(client.description);
  Assign(out.mutable_scopes(), client.scopes);
  DROVER_ASSIGN_OR_RETURN(auto expanded,
                          state_->resolver()->Expand(client.scopes));
  Assign(out.mutable_expanded_scopes(), expanded->scopes());
  *out.mutable_created() = ToProtoTime(client.created);
  *out.mutable_expires() = ToProtoTime(client.expires);
  *out.mutable_last_modified() = ToProtoTime(client.last_modified);
  if (client.last_used.has_value()) {
    *out.mutable_last_date_used() = ToProtoTime(*client.last_used);
  }
  *out.mutable_last_rotated() = ToProtoTime(client.last_rotated);
  out.set_disabled(client.disabled);
  out.set_delete_on_expiration(client.delete_on_expiration);
  return out;
}

absl::StatusOr<v1::Role> AuthService::ToProto(const RoleRecord& role) const {
  v1::Role out;
  out.set_role_id(role.role_id);
  out.set_description(role.description);
  Assign(out.mutable_scopes(), role.scopes);
  DROVER_ASSIGN_OR_RETURN(
      auto expanded, state_->resolver()->Expand({"assume:" + role.role_id}));
  Assign(out.mutable_expanded_scopes(), expanded->scopes());
  *out.mutable_created() = ToProtoTime(role.created);
  *out.mutable_last_modified() = ToProtoTime(role.last_modified);
  return out;
}

grpc::ServerUnaryReactor* AuthService::CreateClient(
    grpc::CallbackServerContext* context,
    const v1::CreateClientRequest* request,
    v1::CreateClientResponse* response) {
  return runner_.Run(context, kCreateClient, *request, [=, this](
                                                           const Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateClientId("client_id", request->client_id()));
    DROVER_RETURN_IF_ERROR(
        ValidateDescription("description", request->description()));
    DROVER_RETURN_IF_ERROR(ValidateScopeList("scopes", request->scopes()));
    if (!request->has_expires()) {
      return InputError("expires", "", "expires is required");
    }
    DROVER_ASSIGN_OR_RETURN(
        absl::Time expires,
        FutureExpiry(request->expires(), "expires", clock_->Now()));
    const std::string token = crypto::GenerateAccessToken();
    ClientRecord client;
    client.client_id = request->client_id();
    client.description = request->description();
    client.access_token_hash = hasher_.Hash(client.client_id, token);
    client.scopes = ToVector(request->scopes());
    client.expires = expires;
    client.delete_on_expiration = request->delete_on_expiration();
    DROVER_ASSIGN_OR_RETURN(ClientRecord created, store_->CreateClient(client));
    // Drops a cached "no such client" from before.
    state_->ClientsChanged();
    DROVER_ASSIGN_OR_RETURN(*response->mutable_client(), ToProto(created));
    response->set_access_token(token);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuthService::ResetAccessToken(
    grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
    v1::ResetAccessTokenResponse* response) {
  return runner_.Run(context, kResetAccessToken, *request,
                     [=, this](const Caller&) {
                       DROVER_RETURN_IF_ERROR(ValidateClientId(
                           "client_id", request->client_id()));
                       const std::string token = crypto::GenerateAccessToken();
                       DROVER_ASSIGN_OR_RETURN(
                           ClientRecord client,
                           store_->SetAccessTokenHash(
                               request->client_id(),
                               hasher_.Hash(request->client_id(), token)));
                       state_->ClientsChanged();
                       DROVER_ASSIGN_OR_RETURN(*response->mutable_client(),
                                               ToProto(client));
                       response->set_access_token(token);
                       return absl::OkStatus();
                     });
}

grpc::ServerUnaryReactor* AuthService::UpdateClient(
    grpc::CallbackServerContext* context,
    const v1::UpdateClientRequest* request, v1::ClientResponse* response) {
  return runner_.Run(context, kUpdateClient, *request, [=, this](
                                                           const Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateClientId("client_id", request->client_id()));
    DROVER_RETURN_IF_ERROR(
        ValidateDescription("description", request->description()));
    DROVER_RETURN_IF_ERROR(ValidateScopeList("scopes", request->scopes()));
    ClientUpdate update;
    update.client_id = request->client_id();
    update.description = request->description();
    update.scopes = ToVector(request->scopes());
    update.delete_on_expiration = request->delete_on_expiration();
    if (request->has_expires()) {
      DROVER_ASSIGN_OR_RETURN(
          update.expires,
          FutureExpiry(request->expires(), "expires", clock_->Now()));
    }
    DROVER_ASSIGN_OR_RETURN(ClientRecord client, store_->UpdateClient(update));
    state_->ClientsChanged();
    DROVER_ASSIGN_OR_RETURN(*response->mutable_client(), ToProto(client));
    return absl::OkStatus();
  });
}

absl::Status AuthService::SetDisabled(const v1::ClientIdRequest& request,
                                      bool disabled,
                                      v1::ClientResponse* response) {
  DROVER_RETURN_IF_ERROR(ValidateClientId("client_id", request.client_id()));
  DROVER_ASSIGN_OR_RETURN(ClientRecord client,
                          store_->SetDisabled(request.client_id(), disabled));
  state_->ClientsChanged();
  DROVER_ASSIGN_OR_RETURN(*response->mutable_client(), ToProto(client));
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* AuthService::DisableClient(
    grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
    v1::ClientResponse* response) {
  return runner_.Run(context, kDisableClient, *request,
                     [=, this](const Caller&) {
                       return SetDisabled(*request, true, response);
                     });
}

grpc::ServerUnaryReactor* AuthService::EnableClient(
    grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
    v1::ClientResponse* response) {
  return runner_.Run(context, kEnableClient, *request,
                     [=, this](const Caller&) {
                       return SetDisabled(*request, false, response);
                     });
}

grpc::ServerUnaryReactor* AuthService::DeleteClient(
    grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
    v1::DeleteClientResponse* /*response*/) {
  return runner_.Run(context, kDeleteClient, *request,
                     [=, this](const Caller&) {
                       DROVER_RETURN_IF_ERROR(ValidateClientId(
                           "client_id", request->client_id()));
                       DROVER_RETURN_IF_ERROR(
                           store_->DeleteClient(request->client_id()));
                       state_->ClientsChanged();
                       return absl::OkStatus();
                     });
}

grpc::ServerUnaryReactor* AuthService::GetClient(
    grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
    v1::ClientResponse* response) {
  return runner_.Run(context, kGetClient, *request, [=, this](const Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateClientId("client_id", request->client_id()));
    DROVER_ASSIGN_OR_RETURN(ClientRecord client,
                            store_->GetClient(request->client_id()));
    DROVER_ASSIGN_OR_RETURN(*response->mutable_client(), ToProto(client));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuthService::ListClients(
    grpc::CallbackServerContext* context,
    const v1::ListClientsRequest* request, v1::ListClientsResponse* response) {
  return runner_.Run(context, kListClients, *request, [=, this](const Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateListPrefix(request->prefix()));
    DROVER_ASSIGN_OR_RETURN(int limit, ListLimit(request->limit()));
    DROVER_ASSIGN_OR_RETURN(
        std::string after,
        DecodeContinuationToken(request->continuation_token()));
    DROVER_ASSIGN_OR_RETURN(
        store::Page<ClientRecord> page,
        store_->ListClients(request->prefix(), after, limit));
    for (const ClientRecord& client : page.items) {
      DROVER_ASSIGN_OR_RETURN(*response->add_clients(), ToProto(client));
    }
    response->set_continuation_token(
        EncodeContinuationToken(page.continuation_token));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuthService::CreateRole(
    grpc::CallbackServerContext* context, const v1::CreateRoleRequest* request,
    v1::RoleResponse* response) {
  return runner_.Run(context, kCreateRole, *request, [=, this](const Caller&) {
    RoleRecord role{request->role_id(), request->description(),
                    ToVector(request->scopes())};
    DROVER_RETURN_IF_ERROR(StripFieldPrefix(
        ValidateRole({role.role_id, role.scopes}, "role"), "role."));
    DROVER_RETURN_IF_ERROR(
        ValidateDescription("description", request->description()));
    DROVER_RETURN_IF_ERROR(ValidateScopeList("scopes", request->scopes()));
    DROVER_ASSIGN_OR_RETURN(RoleRecord created, store_->CreateRole(role));
    DROVER_RETURN_IF_ERROR(state_->RolesChanged());
    DROVER_ASSIGN_OR_RETURN(*response->mutable_role(), ToProto(created));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuthService::UpdateRole(
    grpc::CallbackServerContext* context, const v1::UpdateRoleRequest* request,
    v1::RoleResponse* response) {
  return runner_.Run(context, kUpdateRole, *request, [=, this](const Caller&) {
    RoleRecord role{request->role_id(), request->description(),
                    ToVector(request->scopes())};
    DROVER_RETURN_IF_ERROR(StripFieldPrefix(
        ValidateRole({role.role_id, role.scopes}, "role"), "role."));
    DROVER_RETURN_IF_ERROR(
        ValidateDescription("description", request->description()));
    DROVER_RETURN_IF_ERROR(ValidateScopeList("scopes", request->scopes()));
    DROVER_ASSIGN_OR_RETURN(RoleRecord updated, store_->UpdateRole(role));
    DROVER_RETURN_IF_ERROR(state_->RolesChanged());
    DROVER_ASSIGN_OR_RETURN(*response->mutable_role(), ToProto(updated));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuthService::DeleteRole(
    grpc::CallbackServerContext* context, const v1::RoleIdRequest* request,
    v1::DeleteRoleResponse* /*response*/) {
  return runner_.Run(context, kDeleteRole, *request, [=, this](const Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateRoleId(request->role_id()));
    DROVER_RETURN_IF_ERROR(store_->DeleteRole(request->role_id()));
    return state_->RolesChanged();
  });
}

grpc::ServerUnaryReactor* AuthService::GetRole(
    grpc::CallbackServerContext* context, const v1::RoleIdRequest* request,
    v1::RoleResponse* response) {
  return runner_.Run(context, kGetRole, *request, [=, this](const Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateRoleId(request->role_id()));
    DROVER_ASSIGN_OR_RETURN(RoleRecord role,
                            store_->GetRole(request->role_id()));
    DROVER_ASSIGN_OR_RETURN(*response->mutable_role(), ToProto(role));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuthService::ListRoles(
    grpc::CallbackServerContext* context, const v1::ListRolesRequest* request,
    v1::ListRolesResponse* response) {
  return runner_.Run(context, kListRoles, *request, [=, this](const Caller&) {
    DROVER_RETURN_IF_ERROR(ValidateListPrefix(request->prefix()));
    DROVER_ASSIGN_OR_RETURN(int limit, ListLimit(request->limit()));
    DROVER_ASSIGN_OR_RETURN(
        std::string after,
        DecodeContinuationToken(request->continuation_token()));
    DROVER_ASSIGN_OR_RETURN(store::Page<RoleRecord> page,
                            store_->ListRoles(request->prefix(), after, limit));
    for (const RoleRecord& role : page.items) {
      DROVER_ASSIGN_OR_RETURN(*response->add_roles(), ToProto(role));
    }
    response->set_continuation_token(
        EncodeContinuationToken(page.continuation_token));
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AuthService::ExpandScopes(
    grpc::CallbackServerContext* context,
    const v1::ExpandScopesRequest* request,
    v1::ExpandScopesResponse* response) {
  return runner_.Run(context, kExpandScopes, *request,
                     [=, this](const Caller&) {
                       DROVER_RETURN_IF_ERROR(
                           ValidateScopeList("scopes", request->scopes()));
                       DROVER_ASSIGN_OR_RETURN(
                           auto expanded, state_->resolver()->Expand(
                                              ToVector(request->scopes())));
                       Assign(response->mutable_scopes(), expanded->scopes());
                       return absl::OkStatus();
                     });
}

grpc::ServerUnaryReactor* AuthService::CurrentScopes(
    grpc::CallbackServerContext* context,
    const v1::CurrentScopesRequest* request,
    v1::CurrentScopesResponse* response) {
  return runner_.Run(context, kCurrentScopes, *request,
                     [=](const Caller& caller) {
                       response->set_client_id(caller.client_id);
                       Assign(response->mutable_scopes(),
                              caller.scopes->scopes());
                       const bool temporary =
                           caller.kind == Caller::Kind::kTemporary;
                       response->set_temporary(temporary);
                       response->set_issuer(caller.issuer);
                       if (caller.expires.has_value()) {
                         *response->mutable_expires() =
                             ToProtoTime(*caller.expires);
                       }
                       return absl::OkStatus();
                     });
}

grpc::ServerUnaryReactor* AuthService::CreateTemporaryCredentials(
    grpc::CallbackServerContext* context,
    const v1::CreateTemporaryCredentialsRequest* request,
    v1::CreateTemporaryCredentialsResponse* response) {
  return runner_.Run(
      context, kCreateTemporaryCredentials, *request,
      [=, this](const Caller& caller) {
        absl::Duration lifetime = kDefaultTemporaryLifetime;
        if (request->has_lifetime()) {
          const auto& d = request->lifetime();
          lifetime = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
          if (lifetime < absl::Seconds(1) ||
              lifetime > kMaxCertificateLifetime) {
            return InputError("lifetime", absl::FormatDuration(lifetime),
                              "lifetime must be within 1s..31 days");
          }
        }
        CertificateRequest certificate;
        certificate.client_id = request->client_id().empty()
                                    ? caller.client_id
                                    : request->client_id();
        DROVER_RETURN_IF_ERROR(
            ValidateClientId("client_id", certificate.client_id));
        certificate.issuer = caller.client_id;
        if (request->scopes().empty()) {
          certificate.scopes = caller.scopes->scopes();
        } else {
          DROVER_RETURN_IF_ERROR(
              ValidateScopeList("scopes", request->scopes()));
          certificate.scopes = NormalizeScopes(ToVector(request->scopes()));
        }
        const absl::Time now = clock_->Now();
        certificate.start = now;
        certificate.expiry = now + lifetime;
        DROVER_ASSIGN_OR_RETURN(std::string encoded,
                                certificates_->Issue(certificate));
        response->set_certificate(std::move(encoded));
        response->set_client_id(certificate.client_id);
        Assign(response->mutable_scopes(), certificate.scopes);
        *response->mutable_start() = ToProtoTime(certificate.start);
        *response->mutable_expiry() = ToProtoTime(certificate.expiry);
        return absl::OkStatus();
      });
}

}  // namespace drover::queue::auth
