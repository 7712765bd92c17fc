#include "queue/queue_service/authorized_call.h"

#include <utility>

#include "common/rpc/grpc_status.h"

namespace drover::queue::queue_service {

grpc::ServerUnaryReactor* RunAuthorized(
    BoundedExecutor& executor, Authorizer& authorizer,
    grpc::CallbackServerContext* context, std::string_view method,
    const google::protobuf::Message& request,
    std::function<absl::Status()> work) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  bool queued = executor.TrySubmit([&authorizer, context, method, &request,
                                    reactor, work = std::move(work)] {
    absl::Status status;
    if (context->IsCancelled()) {
      // Nobody is listening; skip the database.
      status = absl::CancelledError("the client canceled the call");
    } else {
      status = authorizer.Authorize(context, method, request);
      if (status.ok()) status = work();
    }
    reactor->Finish(rpc::ToGrpcStatus(status));
  });
  if (!queued) {
    reactor->Finish(rpc::ToGrpcStatus(
        absl::UnavailableError("server is overloaded; retry later")));
  }
  return reactor;
}

}  // namespace drover::queue::queue_service
