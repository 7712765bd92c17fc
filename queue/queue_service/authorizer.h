// Authorizer: the single hook every RPC handler calls before doing any work.
//
// The auth layer (queue/auth) implements it: it reads the caller's
// credentials from the call metadata and checks the scopes the method
// requires (which may depend on the request, e.g. a task's own scopes for
// CreateTask). Until then AllowAllAuthorizer lets every call through.
#ifndef DROVER_QUEUE_QUEUE_SERVICE_AUTHORIZER_H_
#define DROVER_QUEUE_QUEUE_SERVICE_AUTHORIZER_H_

#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"

namespace drover::queue::queue_service {

class Authorizer {
 public:
  virtual ~Authorizer() = default;

  // Decides whether the caller of `context` may call `method` (the full
  // gRPC method path, e.g. "/drover.v1.Queue/CreateTask") with `request`.
  // Called on an executor thread, never on a gRPC callback thread, so it may
  // block (e.g. read the database). Must be thread-safe.
  //
  // Errors: AuthenticationFailed when the credentials are missing or
  // invalid, InsufficientScopes (details list the scope sets that would have
  // sufficed) when they do not cover the method, InternalError otherwise.
  virtual absl::Status Authorize(grpc::CallbackServerContext* context,
                                 std::string_view method,
                                 const google::protobuf::Message& request) = 0;
};

// Lets every call through. A placeholder until queue/auth lands.
class AllowAllAuthorizer final : public Authorizer {
 public:
  absl::Status Authorize(
      grpc::CallbackServerContext* /*context*/, std::string_view /*method*/,
      const google::protobuf::Message& /*request*/) override {
    return absl::OkStatus();
  }
};

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_AUTHORIZER_H_
