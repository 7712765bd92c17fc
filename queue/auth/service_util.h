// Shared plumbing of the Auth and Secrets services: running an RPC's work
// on the executor after authorising it (keeping the caller for the work),
// and the paging conventions of their List calls.
#ifndef DROVER_QUEUE_AUTH_SERVICE_UTIL_H_
#define DROVER_QUEUE_AUTH_SERVICE_UTIL_H_

#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "queue/auth/scope_authorizer.h"
#include "queue/queue_service/executor.h"

namespace drover::queue::auth {

// Runs unary RPCs: the handler returns at once; authorisation and `work`
// run on the executor and the reactor is finished from there with the
// status turned into a gRPC status (rpc::ToGrpcStatus). Thread-safe.
class AuthorizedRunner {
 public:
  using Work = std::function<absl::Status(const Caller& caller)>;

  // Both must outlive the runner (and the executor be drained before the
  // service owning the runner is destroyed).
  AuthorizedRunner(ScopeAuthorizer* authorizer,
                   queue_service::BoundedExecutor* executor)
      : authorizer_(authorizer), executor_(executor) {}

  // `method` is the full path ("/drover.v1.Auth/CreateClient"); `request`
  // must stay valid until the reactor finishes (gRPC guarantees this for
  // the request of a unary call).
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                std::string_view method,
                                const google::protobuf::Message& request,
                                Work work) const;

 private:
  ScopeAuthorizer* const authorizer_;
  queue_service::BoundedExecutor* const executor_;
};

inline constexpr int kDefaultListLimit = 100;
inline constexpr int kMaxListLimit = 1000;

// 0 means the default. Errors: InputError("limit") outside 0..1000.
absl::StatusOr<int> ListLimit(int limit);

// Continuation tokens are the last key of the previous page, opaque to
// callers (unpadded base64url). Decode errors: InputError
// ("continuation_token").
std::string EncodeContinuationToken(std::string_view last_key);
absl::StatusOr<std::string> DecodeContinuationToken(std::string_view token);

// Re-labels the "field" detail of an InputError that starts with `prefix`
// (e.g. "role.scopes[2]" -> "scopes[2]"); other statuses pass unchanged.
absl::Status StripFieldPrefix(const absl::Status& status,
                              std::string_view prefix);

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_SERVICE_UTIL_H_
