// ServiceClient: the part every gRPC service client in client/ (QueueClient,
// AuthClient, ...) has in common: the shared Connection, a stub of the
// service on its channel, the default call options, and the unary call that
// runs a stub method through CallUnary (client/call.h) with one deadline,
// the connection's credentials and retries.
//
// A service client derives from ServiceClient<v1::Service> and adds one
// method per RPC; each says whether its RPC may be retried, since only the
// service knows which of its methods are idempotent.
//
// Thread-safe: immutable after construction; Connection and gRPC stubs are
// thread-safe, so one client may serve any number of threads.
#ifndef DROVER_CLIENT_SERVICE_CLIENT_H_
#define DROVER_CLIENT_SERVICE_CLIENT_H_

#include <memory>
#include <optional>
#include <utility>

#include "absl/status/statusor.h"
#include "client/call.h"
#include "client/connection.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"

namespace drover::client {

// `Service` is a generated gRPC service class (v1::Queue, v1::Auth, ...).
template <typename Service>
class ServiceClient {
 public:
  // `defaults` apply to every call that passes no options of its own.
  explicit ServiceClient(std::shared_ptr<const Connection> connection,
                         CallOptions defaults = {})
      : connection_(std::move(connection)),
        stub_(Service::NewStub(connection_->channel())),
        defaults_(std::move(defaults)) {}

  // A call's own options; unset: the client's defaults.
  using Options = std::optional<CallOptions>;

  const Connection& connection() const { return *connection_; }

 protected:
  using Stub = typename Service::Stub;

  template <typename Request, typename Response>
  using StubMethod = grpc::Status (Stub::*)(grpc::ClientContext*,
                                            const Request&, Response*);

  // Runs the unary `method` with `options` (the defaults when unset);
  // UNAVAILABLE is retried only for kIdempotent (client/call.h).
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(StubMethod<Request, Response> method,
                                const Request& request, const Options& options,
                                Idempotency idempotency) const {
    return CallUnary<Response>(
        *connection_, options.value_or(defaults_), idempotency,
        [&](grpc::ClientContext* context, Response* response) {
          return (stub_.get()->*method)(context, request, response);
        });
  }

  const CallOptions& defaults() const { return defaults_; }
  // For the streaming RPCs, which a client drives itself. Generated stub
  // methods are non-const but thread-safe.
  Stub* stub() const { return stub_.get(); }

 private:
  std::shared_ptr<const Connection> connection_;
  std::unique_ptr<Stub> stub_;
  CallOptions defaults_;
};

}  // namespace drover::client

#endif  // DROVER_CLIENT_SERVICE_CLIENT_H_
