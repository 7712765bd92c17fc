#include "queue/auth/scope_authorizer.h"

#include <utility>
#include <vector>

#include "common/status.h"
#include "queue/auth/rpc_scopes.h"

namespace drover::queue::auth {
namespace {

absl::Status AuthenticationFailed(std::string message,
                                  ErrorDetails details = {}) {
  return MakeError(ErrorCode::kAuthenticationFailed, message,
                   std::move(details));
}

std::string_view StripSlash(std::string_view method) {
  if (!method.empty() && method.front() == '/') method.remove_prefix(1);
  return method;
}

std::string Rfc3339Seconds(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<PresentedCredentials> ReadCredentialMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  PresentedCredentials presented;
  struct Key {
    std::string_view name;
    std::optional<std::string>* out;
  };
  const Key keys[] = {
      {kClientIdMetadata, &presented.client_id},
      {kAccessTokenMetadata, &presented.access_token},
      {kCertificateMetadata, &presented.certificate},
      {kAuthorizedScopesMetadata, &presented.authorized_scopes},
  };
  for (const Key& key : keys) {
    auto [first, last] =
        metadata.equal_range(grpc::string_ref(key.name.data(), key.name.size()));
    if (first == last) continue;
    if (std::next(first) != last) {
      // Two values would leave it open which one was checked.
      return AuthenticationFailed(
          "the " + std::string(key.name) + " metadata was sent more than once",
          {{"metadata", std::string(key.name)}});
    }
    *key.out = std::string(first->second.data(), first->second.size());
  }
  return presented;
}

ScopeAuthorizer::ScopeAuthorizer(AuthState* state, AuthStore* store,
                                 const CertificateVerifier* verifier,
                                 crypto::TokenHasher hasher,
                                 store::Store* tasks, const Clock* clock)
    : state_(state),
      store_(store),
      verifier_(verifier),
      hasher_(std::move(hasher)),
      tasks_(tasks),
      clock_(clock) {}

absl::StatusOr<Caller> ScopeAuthorizer::Authenticate(
    const PresentedCredentials& presented) {
  // One role table for the whole call.
  std::shared_ptr<const RoleResolver> resolver = state_->resolver();
  Caller caller;
  std::vector<std::string> scopes;
  if (presented.certificate.has_value()) {
    if (presented.access_token.has_value()) {
      return AuthenticationFailed(
          "send either drover-access-token or drover-certificate, not both");
    }
    DROVER_ASSIGN_OR_RETURN(CertificateClaims claims,
                            verifier_->Verify(*presented.certificate));
    if (presented.client_id.has_value() &&
        *presented.client_id != claims.client_id) {
      return AuthenticationFailed(
          "drover-client-id does not name the client of the certificate",
          {{"client_id", *presented.client_id},
           {"certificate_client_id", claims.client_id}});
    }
    caller.kind = Caller::Kind::kTemporary;
    caller.client_id = std::move(claims.client_id);
    caller.issuer = std::move(claims.issuer);
    caller.expires = claims.expiry;
    scopes = std::move(claims.scopes);
  } else if (presented.access_token.has_value()) {
    if (!presented.client_id.has_value()) {
      return AuthenticationFailed(
          "drover-access-token was sent without drover-client-id");
    }
    const std::string& client_id = *presented.client_id;
    if (!ValidateClientId("drover-client-id", client_id).ok()) {
      return AuthenticationFailed("unknown client or wrong access token",
                                  {{"client_id", client_id.substr(0, 256)}});
    }
    absl::StatusOr<std::shared_ptr<const ClientRecord>> client =
        state_->FindClient(client_id);
    if (!client.ok() &&
        !HasErrorCode(client.status(), ErrorCode::kResourceNotFound)) {
      return client.status();
    }
    // Unknown client and wrong token answer alike, so the answer does not
    // tell which client ids exist.
    if (!client.ok() || !hasher_.Verify(client_id, *presented.access_token,
                                        (*client)->access_token_hash)) {
      return AuthenticationFailed("unknown client or wrong access token",
                                  {{"client_id", client_id}});
    }
    const ClientRecord& record = **client;
    if (record.disabled) {
      return AuthenticationFailed("client " + client_id + " is disabled",
                                  {{"client_id", client_id}});
    }
    if (record.expires <= clock_->Now()) {
      return AuthenticationFailed(
          "client " + client_id + " expired at " + Rfc3339Seconds(record.expires),
          {{"client_id", client_id}, {"expires", Rfc3339Seconds(record.expires)}});
    }
    state_->NoteUsed(record);
    caller.kind = Caller::Kind::kPermanent;
    caller.client_id = client_id;
    caller.expires = record.expires;
    scopes = record.scopes;
  } else if (presented.client_id.has_value()) {
    return AuthenticationFailed(
        "drover-client-id was sent without drover-access-token or "
        "drover-certificate",
        {{"client_id", *presented.client_id}});
  } else {
    scopes = {"assume:" + std::string(kAnonymousRole)};
  }
  DROVER_ASSIGN_OR_RETURN(caller.scopes, resolver->Expand(scopes));
  if (presented.authorized_scopes.has_value()) {
    DROVER_ASSIGN_OR_RETURN(caller.scopes,
                            Narrow(*resolver, std::move(caller.scopes),
                                   *presented.authorized_scopes));
    caller.narrowed = true;
  }
  return caller;
}

absl::StatusOr<std::shared_ptr<const ScopeSet>> ScopeAuthorizer::Narrow(
    const RoleResolver& resolver, std::shared_ptr<const ScopeSet> held,
    const std::string& authorized_json) {
  DROVER_ASSIGN_OR_RETURN(
      std::vector<std::string> authorized,
      ParseScopeList(authorized_json, kAuthorizedScopesMetadata));
  DROVER_ASSIGN_OR_RETURN(std::shared_ptr<const ScopeSet> expanded,
                          resolver.Expand(authorized));
  return std::make_shared<const ScopeSet>(
      IntersectScopes(held->scopes(), expanded->scopes()));
}

absl::StatusOr<Caller> ScopeAuthorizer::AuthorizeCredentials(
    const PresentedCredentials& presented, std::string_view method,
    const google::protobuf::Message& request) {
  const RpcScopeRule* rule = FindRpcScopeRule(method);
  if (rule == nullptr) {
    return MakeError(ErrorCode::kInternalError,
                     "no scope rule for method " + std::string(method) +
                         "; refusing the call",
                     {{"method", std::string(method)}});
  }
  DROVER_ASSIGN_OR_RETURN(Caller caller, Authenticate(presented));
  if (rule->caller != CallerRequirement::kAnyone &&
      caller.kind == Caller::Kind::kAnonymous) {
    return AuthenticationFailed(
        std::string(StripSlash(method)) +
            " needs credentials (drover-client-id and drover-access-token, "
            "or drover-certificate)",
        {{"method", std::string(StripSlash(method))}});
  }
  if (rule->caller == CallerRequirement::kPermanentClient &&
      caller.kind != Caller::Kind::kPermanent) {
    return AuthenticationFailed(
        std::string(StripSlash(method)) +
            " needs permanent credentials (a client id and access token); "
            "temporary credentials cannot mint more",
        {{"method", std::string(StripSlash(method))},
         {"client_id", caller.client_id}});
  }
  ScopeContext context;
  context.caller_client_id = caller.client_id;
  context.task =
      [this](const std::string& task_id) -> absl::StatusOr<TaskScopeInfo> {
    if (tasks_ == nullptr) {
      return InternalError("this server cannot look up tasks for scopes");
    }
    DROVER_ASSIGN_OR_RETURN(store::Task task, tasks_->GetTask(task_id));
    return TaskScopeInfo{task.scheduler_id, task.task_group_id,
                         task.task_queue_id};
  };
  context.task_group_scheduler =
      [this](const std::string& task_group_id) -> absl::StatusOr<std::string> {
    if (tasks_ == nullptr) {
      return InternalError("this server cannot look up task groups for scopes");
    }
    DROVER_ASSIGN_OR_RETURN(store::TaskGroupInfo group,
                            tasks_->GetTaskGroup(task_group_id));
    return group.scheduler_id;
  };
  context.client_scopes = [this](const std::string& client_id)
      -> absl::StatusOr<std::vector<std::string>> {
    DROVER_ASSIGN_OR_RETURN(ClientRecord client, store_->GetClient(client_id));
    return client.scopes;
  };
  context.role_scopes = [this](const std::string& role_id)
      -> absl::StatusOr<std::vector<std::string>> {
    DROVER_ASSIGN_OR_RETURN(RoleRecord role, store_->GetRole(role_id));
    return role.scopes;
  };
  DROVER_ASSIGN_OR_RETURN(ScopeExpression required,
                          RequiredScopes(method, request, context));
  if (!caller.scopes->Satisfies(required)) {
    return InsufficientScopesError(StripSlash(method), required,
                                   *caller.scopes);
  }
  return caller;
}

absl::StatusOr<Caller> ScopeAuthorizer::AuthorizeCall(
    const grpc::ServerContextBase& context, std::string_view method,
    const google::protobuf::Message& request) {
  DROVER_ASSIGN_OR_RETURN(PresentedCredentials presented,
                          ReadCredentialMetadata(context.client_metadata()));
  return AuthorizeCredentials(presented, method, request);
}

absl::Status ScopeAuthorizer::Authorize(
    grpc::CallbackServerContext* context, std::string_view method,
    const google::protobuf::Message& request) {
  return AuthorizeCall(*context, method, request).status();
}

}  // namespace drover::queue::auth
