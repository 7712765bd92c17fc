// The one place where absl::Status and grpc::Status meet.
//
// Servers turn a failed absl::Status into a grpc::Status whose
// error_details carry a drover.v1.RpcStatus with one packed drover.v1.Error;
// clients turn it back, so an error keeps its {code, message, details} end
// to end.
#ifndef DROVER_COMMON_RPC_GRPC_STATUS_H_
#define DROVER_COMMON_RPC_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace drover::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace drover::rpc

#endif  // DROVER_COMMON_RPC_GRPC_STATUS_H_
