#include "common/rpc/grpc_status.h"

#include <string>

#include "common/status.h"
#include "drover/v1/errors.pb.h"

namespace drover::rpc {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  ErrorInfo info = GetErrorInfo(status);
  v1::Error error;
  error.set_code(std::string(ErrorCodeName(info.code)));
  error.set_message(info.message);
  for (auto& [key, value] : info.details) {
    (*error.mutable_details())[key] = value;
  }
  v1::RpcStatus rpc_status;
  // absl and gRPC share the canonical code numbering.
  rpc_status.set_code(static_cast<int>(status.code()));
  rpc_status.set_message(info.message);
  rpc_status.add_details()->PackFrom(error);
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      info.message, rpc_status.SerializeAsString());
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  v1::RpcStatus rpc_status;
  v1::Error error;
  if (!status.error_details().empty() &&
      rpc_status.ParseFromString(status.error_details())) {
    for (const auto& any : rpc_status.details()) {
      if (any.UnpackTo(&error)) {
        auto code = ErrorCodeFromName(error.code());
        if (!code) break;
        ErrorDetails details(error.details().begin(), error.details().end());
        absl::Status made = MakeError(*code, error.message(), std::move(details));
        // Keep the transport's code: it is what the server actually sent.
        absl::Status out(static_cast<absl::StatusCode>(status.error_code()),
                         error.message());
        made.ForEachPayload([&](absl::string_view url, const absl::Cord& p) {
          out.SetPayload(url, p);
        });
        return out;
      }
    }
  }
  // Transport failures (UNAVAILABLE, DEADLINE_EXCEEDED, ...) carry no detail.
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace drover::rpc
