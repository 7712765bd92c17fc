// RunAuthorized: how the Queue and Artifacts services serve a unary RPC.
// The gRPC handler returns at once; on the executor the call is dropped if
// its client already gave up, otherwise authorised and its work run, and
// the reactor is finished from there with the status turned into a gRPC
// status (common/rpc/grpc_status.h).
#ifndef DROVER_QUEUE_QUEUE_SERVICE_AUTHORIZED_CALL_H_
#define DROVER_QUEUE_QUEUE_SERVICE_AUTHORIZED_CALL_H_

#include <functional>
#include <string_view>

#include "absl/status/status.h"
#include "google/protobuf/message.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "queue/queue_service/authorizer.h"
#include "queue/queue_service/executor.h"

namespace drover::queue::queue_service {

// Serves one unary call: `method` is the full path
// ("/drover.v1.Queue/CreateTask") the authorizer checks; `request` must
// stay valid until the reactor finishes, which gRPC guarantees for a unary
// call's request; `work` fills the response and returns the call's status.
// Returns the reactor for the handler to return. When the executor's queue
// is full the call is answered UNAVAILABLE at once, without running
// anything. `executor` and `authorizer` must outlive the call. Thread-safe.
grpc::ServerUnaryReactor* RunAuthorized(
    BoundedExecutor& executor, Authorizer& authorizer,
    grpc::CallbackServerContext* context, std::string_view method,
    const google::protobuf::Message& request,
    std::function<absl::Status()> work);

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_AUTHORIZED_CALL_H_
