// AuthClient: the drover.v1.Auth service (clients, roles, scope expansion,
// "who am I", temporary credentials), one method per RPC.
//
// Each method returns the response or the server's error decoded into an
// absl::Status that keeps {code, message, details} (common/status.h).
//
// Retries: UNAVAILABLE is retried (client/call.h) for the reads (GetClient,
// ListClients, GetRole, ListRoles, ExpandScopes, CurrentScopes) and for the
// writes that leave the same state when repeated (UpdateClient,
// DisableClient, EnableClient, UpdateRole). Creating, deleting, resetting
// a token and minting credentials are not retried: a repeat after a lost
// answer would fail (exists / not found) or hand out a second secret.
//
// Thread-safe.
#ifndef DROVER_CLIENT_AUTH_CLIENT_H_
#define DROVER_CLIENT_AUTH_CLIENT_H_

#include "absl/status/statusor.h"
#include "client/call.h"
#include "client/connection.h"
#include "client/service_client.h"
#include "drover/v1/auth.grpc.pb.h"

namespace drover::client {

class AuthClient : public ServiceClient<v1::Auth> {
 public:
  // Takes the shared connection and the CallOptions of the calls that
  // pass none of their own (ServiceClient's constructor).
  using ServiceClient::ServiceClient;

  absl::StatusOr<v1::CreateClientResponse> CreateClient(
      const v1::CreateClientRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ResetAccessTokenResponse> ResetAccessToken(
      const v1::ClientIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ClientResponse> UpdateClient(
      const v1::UpdateClientRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ClientResponse> DisableClient(
      const v1::ClientIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ClientResponse> EnableClient(
      const v1::ClientIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::DeleteClientResponse> DeleteClient(
      const v1::ClientIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ClientResponse> GetClient(
      const v1::ClientIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListClientsResponse> ListClients(
      const v1::ListClientsRequest& request, Options options = {}) const;
  absl::StatusOr<v1::RoleResponse> CreateRole(
      const v1::CreateRoleRequest& request, Options options = {}) const;
  absl::StatusOr<v1::RoleResponse> UpdateRole(
      const v1::UpdateRoleRequest& request, Options options = {}) const;
  absl::StatusOr<v1::DeleteRoleResponse> DeleteRole(
      const v1::RoleIdRequest& request, Options options = {}) const;
  absl::StatusOr<v1::RoleResponse> GetRole(const v1::RoleIdRequest& request,
                                           Options options = {}) const;
  absl::StatusOr<v1::ListRolesResponse> ListRoles(
      const v1::ListRolesRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ExpandScopesResponse> ExpandScopes(
      const v1::ExpandScopesRequest& request, Options options = {}) const;
  absl::StatusOr<v1::CurrentScopesResponse> CurrentScopes(
      const v1::CurrentScopesRequest& request = {}, Options options = {}) const;
  absl::StatusOr<v1::CreateTemporaryCredentialsResponse>
  CreateTemporaryCredentials(
      const v1::CreateTemporaryCredentialsRequest& request,
      Options options = {}) const;
};

}  // namespace drover::client

#endif  // DROVER_CLIENT_AUTH_CLIENT_H_
