// ScopeAuthorizer: authentication and authorization of every RPC, the
// queue_service::Authorizer every Drover service calls before doing work.
//
// For one call it
//  1. reads the credentials from the gRPC metadata: drover-client-id +
//     drover-access-token (a permanent client), or drover-certificate
//     (temporary credentials, optionally with a drover-client-id that must
//     name the same client), plus an optional drover-authorized-scopes JSON
//     array; nothing at all means an anonymous caller;
//  2. authenticates: a permanent client is looked up in AuthState's cache
//     (normally no database read), its token checked against the keyed
//     hash in constant time, and refused when disabled or expired;
//     a certificate is verified with the server's public keys and the
//     clock, without any database read;
//  3. expands the caller's scopes through the cached role table (an
//     anonymous caller holds assume:anonymous), and narrows them to the
//     (expanded) authorized scopes when those were sent: the result is the
//     intersection, so authorized scopes can only remove;
//  4. checks the method's rule (rpc_scopes.h): who may call it, then the
//     scope expression it requires for this request.
//
// Errors (gRPC code): AuthenticationFailed (UNAUTHENTICATED) for missing,
// malformed, unknown, wrong, disabled or expired credentials and for
// callers the rule does not admit (anonymous callers of authenticated
// methods, temporary credentials where permanent ones are required);
// InsufficientScopes (PERMISSION_DENIED) listing the scope sets that would
// have sufficed; InputError for a malformed drover-authorized-scopes value
// or a request field that cannot form a scope; the lookup errors of the
// rule (e.g. ResourceNotFound for the task of ScheduleTask); InternalError
// for a method without a rule (denied) or when the database fails.
//
// Thread-safe; may block on the database (it runs on executor threads).
#ifndef DROVER_QUEUE_AUTH_SCOPE_AUTHORIZER_H_
#define DROVER_QUEUE_AUTH_SCOPE_AUTHORIZER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/token_hash.h"
#include "grpcpp/server_context.h"
#include "queue/auth/auth_state.h"
#include "queue/auth/auth_store.h"
#include "queue/auth/certificate.h"
#include "queue/auth/scopes.h"
#include "queue/queue_service/authorizer.h"
#include "queue/store/store.h"

namespace drover::queue::auth {

inline constexpr std::string_view kClientIdMetadata = "drover-client-id";
inline constexpr std::string_view kAccessTokenMetadata = "drover-access-token";
inline constexpr std::string_view kCertificateMetadata = "drover-certificate";
inline constexpr std::string_view kAuthorizedScopesMetadata =
    "drover-authorized-scopes";
// The role whose scopes callers without credentials hold.
inline constexpr std::string_view kAnonymousRole = "anonymous";

// The credential metadata of one call, each present only when sent.
struct PresentedCredentials {
  std::optional<std::string> client_id;
  std::optional<std::string> access_token;
  std::optional<std::string> certificate;
  std::optional<std::string> authorized_scopes;
};

// Reads the four drover-* keys. Errors: AuthenticationFailed when one of
// them is sent more than once.
absl::StatusOr<PresentedCredentials> ReadCredentialMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// Who is calling, once authenticated.
struct Caller {
  enum class Kind { kAnonymous, kPermanent, kTemporary };
  Kind kind = Kind::kAnonymous;
  // "" for anonymous callers.
  std::string client_id;
  // Temporary credentials: who issued them.
  std::string issuer;
  // Permanent: the client's expiry; temporary: the certificate's.
  std::optional<absl::Time> expires;
  // Effective scopes for this call: expanded, and narrowed when
  // authorized scopes were sent. Never null.
  std::shared_ptr<const ScopeSet> scopes;
  bool narrowed = false;
};

class ScopeAuthorizer final : public queue_service::Authorizer {
 public:
  // Every pointer must outlive the authorizer. `tasks` may be null (then
  // rules that look up a task fail with InternalError).
  ScopeAuthorizer(AuthState* state, AuthStore* store,
                  const CertificateVerifier* verifier,
                  crypto::TokenHasher hasher, store::Store* tasks,
                  const Clock* clock);

  // Steps 1-3 above for the given credentials.
  absl::StatusOr<Caller> Authenticate(const PresentedCredentials& presented);

  // Steps 1-4; returns the caller for services that need to know who it is.
  absl::StatusOr<Caller> AuthorizeCall(
      const grpc::ServerContextBase& context, std::string_view method,
      const google::protobuf::Message& request);
  // Steps 2-4 on already-read credentials.
  absl::StatusOr<Caller> AuthorizeCredentials(
      const PresentedCredentials& presented, std::string_view method,
      const google::protobuf::Message& request);

  // queue_service::Authorizer.
  absl::Status Authorize(grpc::CallbackServerContext* context,
                         std::string_view method,
                         const google::protobuf::Message& request) override;

 private:
  absl::StatusOr<std::shared_ptr<const ScopeSet>> Narrow(
      const RoleResolver& resolver, std::shared_ptr<const ScopeSet> held,
      const std::string& authorized_json);

  AuthState* const state_;
  AuthStore* const store_;
  const CertificateVerifier* const verifier_;
  const crypto::TokenHasher hasher_;
  store::Store* const tasks_;
  const Clock* const clock_;
};

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_SCOPE_AUTHORIZER_H_
