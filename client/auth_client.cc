#include "client/auth_client.h"

namespace drover::client {

absl::StatusOr<v1::CreateClientResponse> AuthClient::CreateClient(
    const v1::CreateClientRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::CreateClient, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::ResetAccessTokenResponse> AuthClient::ResetAccessToken(
    const v1::ClientIdRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::ResetAccessToken, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::ClientResponse> AuthClient::UpdateClient(
    const v1::UpdateClientRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::UpdateClient, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ClientResponse> AuthClient::DisableClient(
    const v1::ClientIdRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::DisableClient, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ClientResponse> AuthClient::EnableClient(
    const v1::ClientIdRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::EnableClient, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::DeleteClientResponse> AuthClient::DeleteClient(
    const v1::ClientIdRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::DeleteClient, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::ClientResponse> AuthClient::GetClient(
    const v1::ClientIdRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::GetClient, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListClientsResponse> AuthClient::ListClients(
    const v1::ListClientsRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::ListClients, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::RoleResponse> AuthClient::CreateRole(
    const v1::CreateRoleRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::CreateRole, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::RoleResponse> AuthClient::UpdateRole(
    const v1::UpdateRoleRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::UpdateRole, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::DeleteRoleResponse> AuthClient::DeleteRole(
    const v1::RoleIdRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::DeleteRole, request, options,
              Idempotency::kNotIdempotent);
}

absl::StatusOr<v1::RoleResponse> AuthClient::GetRole(
    const v1::RoleIdRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::GetRole, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListRolesResponse> AuthClient::ListRoles(
    const v1::ListRolesRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::ListRoles, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ExpandScopesResponse> AuthClient::ExpandScopes(
    const v1::ExpandScopesRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::ExpandScopes, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::CurrentScopesResponse> AuthClient::CurrentScopes(
    const v1::CurrentScopesRequest& request, Options options) const {
  return Call(&v1::Auth::Stub::CurrentScopes, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::CreateTemporaryCredentialsResponse>
AuthClient::CreateTemporaryCredentials(
    const v1::CreateTemporaryCredentialsRequest& request,
    Options options) const {
  return Call(&v1::Auth::Stub::CreateTemporaryCredentials, request, options,
              Idempotency::kNotIdempotent);
}

}  // namespace drover::client
