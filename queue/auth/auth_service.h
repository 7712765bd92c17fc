// AuthService: the drover.v1.Auth gRPC service (clients, roles, scope
// expansion, "who am I", temporary credentials) on the callback API.
//
// Every RPC is authorised by the ScopeAuthorizer first (the scopes of
// docs/api-scopes.md); the work runs on a BoundedExecutor. Access tokens
// are generated here, shown once (CreateClient, ResetAccessToken) and
// stored only as keyed hashes. Writes refresh this process's AuthState at
// once; other replicas follow through the generation counters.
//
// Input limits: client ids as ValidateClientId; descriptions at most
// kMaxDescriptionLength bytes; at most kMaxScopesPerEntity scopes per
// client or role; roles as ValidateRole; temporary credentials live 1 s to
// 31 days (default 1 day); a new client's expiry must be in the future.
#ifndef DROVER_QUEUE_AUTH_AUTH_SERVICE_H_
#define DROVER_QUEUE_AUTH_AUTH_SERVICE_H_

#include <string_view>

#include "common/clock.h"
#include "common/crypto/token_hash.h"
#include "drover/v1/auth.grpc.pb.h"
#include "queue/auth/auth_state.h"
#include "queue/auth/auth_store.h"
#include "queue/auth/certificate.h"
#include "queue/auth/scope_authorizer.h"
#include "queue/auth/service_util.h"
#include "queue/queue_service/executor.h"

namespace drover::queue::auth {

inline constexpr size_t kMaxDescriptionLength = 4096;
inline constexpr size_t kMaxScopesPerEntity = 1000;
inline constexpr absl::Duration kDefaultTemporaryLifetime = absl::Hours(24);

// Client ids: ValidateClientId (field named); descriptions; scope lists.
absl::Status ValidateDescription(std::string_view field,
                                 const std::string& description);
absl::Status ValidateScopeList(
    std::string_view field,
    const google::protobuf::RepeatedPtrField<std::string>& scopes);

class AuthService final : public v1::Auth::CallbackService {
 public:
  // Every pointer must outlive the service; the executor must be drained
  // before the service is destroyed.
  AuthService(AuthStore* store, AuthState* state, ScopeAuthorizer* authorizer,
              const CertificateIssuer* certificates,
              crypto::TokenHasher hasher, const Clock* clock,
              queue_service::BoundedExecutor* executor);

  grpc::ServerUnaryReactor* CreateClient(
      grpc::CallbackServerContext* context,
      const v1::CreateClientRequest* request,
      v1::CreateClientResponse* response) override;
  grpc::ServerUnaryReactor* ResetAccessToken(
      grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
      v1::ResetAccessTokenResponse* response) override;
  grpc::ServerUnaryReactor* UpdateClient(
      grpc::CallbackServerContext* context,
      const v1::UpdateClientRequest* request,
      v1::ClientResponse* response) override;
  grpc::ServerUnaryReactor* DisableClient(
      grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
      v1::ClientResponse* response) override;
  grpc::ServerUnaryReactor* EnableClient(
      grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
      v1::ClientResponse* response) override;
  grpc::ServerUnaryReactor* DeleteClient(
      grpc::CallbackServerContext* context, const v1::ClientIdRequest* request,
      v1::DeleteClientResponse* response) override;
  grpc::ServerUnaryReactor* GetClient(grpc::CallbackServerContext* context,
                                      const v1::ClientIdRequest* request,
                                      v1::ClientResponse* response) override;
  grpc::ServerUnaryReactor* ListClients(
      grpc::CallbackServerContext* context,
      const v1::ListClientsRequest* request,
      v1::ListClientsResponse* response) override;
  grpc::ServerUnaryReactor* CreateRole(grpc::CallbackServerContext* context,
                                       const v1::CreateRoleRequest* request,
                                       v1::RoleResponse* response) override;
  grpc::ServerUnaryReactor* UpdateRole(grpc::CallbackServerContext* context,
                                       const v1::UpdateRoleRequest* request,
                                       v1::RoleResponse* response) override;
  grpc::ServerUnaryReactor* DeleteRole(
      grpc::CallbackServerContext* context, const v1::RoleIdRequest* request,
      v1::DeleteRoleResponse* response) override;
  grpc::ServerUnaryReactor* GetRole(grpc::CallbackServerContext* context,
                                    const v1::RoleIdRequest* request,
                                    v1::RoleResponse* response) override;
  grpc::ServerUnaryReactor* ListRoles(grpc::CallbackServerContext* context,
                                      const v1::ListRolesRequest* request,
                                      v1::ListRolesResponse* response) override;
  grpc::ServerUnaryReactor* ExpandScopes(
      grpc::CallbackServerContext* context,
      const v1::ExpandScopesRequest* request,
      v1::ExpandScopesResponse* response) override;
  grpc::ServerUnaryReactor* CurrentScopes(
      grpc::CallbackServerContext* context,
      const v1::CurrentScopesRequest* request,
      v1::CurrentScopesResponse* response) override;
  grpc::ServerUnaryReactor* CreateTemporaryCredentials(
      grpc::CallbackServerContext* context,
      const v1::CreateTemporaryCredentialsRequest* request,
      v1::CreateTemporaryCredentialsResponse* response) override;

 private:
  // The API form, with the expansion of its scopes.
  absl::StatusOr<v1::Client> ToProto(const ClientRecord& client) const;
  absl::StatusOr<v1::Role> ToProto(const RoleRecord& role) const;
  // Shared by DisableClient and EnableClient.
  absl::Status SetDisabled(const v1::ClientIdRequest& request, bool disabled,
                           v1::ClientResponse* response);

  AuthStore* const store_;
  AuthState* const state_;
  const CertificateIssuer* const certificates_;
  const crypto::TokenHasher hasher_;
  const Clock* const clock_;
  AuthorizedRunner runner_;
};

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_AUTH_SERVICE_H_
