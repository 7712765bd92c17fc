#include "queue/auth/service_util.h"

#include <utility>

#include "common/crypto/encoding.h"
#include "common/rpc/grpc_status.h"
#include "common/status.h"

namespace drover::queue::auth {

grpc::ServerUnaryReactor* AuthorizedRunner::Run(
    grpc::CallbackServerContext* context, std::string_view method,
    const google::protobuf::Message& request, Work work) const {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  const bool queued = executor_->TrySubmit(
      [this, context, method, &request, reactor, work = std::move(work)] {
        absl::Status status;
        if (context->IsCancelled()) {
          status = absl::CancelledError("the client canceled the call");
        } else {
          absl::StatusOr<Caller> caller =
              authorizer_->AuthorizeCall(*context, method, request);
          status = caller.ok() ? work(*caller) : caller.status();
        }
        reactor->Finish(rpc::ToGrpcStatus(status));
      });
  if (!queued) {
    reactor->Finish(rpc::ToGrpcStatus(
        absl::UnavailableError("server is overloaded; retry later")));
  }
  return reactor;
}

absl::StatusOr<int> ListLimit(int limit) {
  if (limit == 0) return kDefaultListLimit;
  if (limit < 1 || limit > kMaxListLimit) {
    return InputError("limit", std::to_string(limit),
                      "limit must be within 1..1000 (0 for the default, 100)");
  }
  return limit;
}

std::string EncodeContinuationToken(std::string_view last_key) {
  if (last_key.empty()) return "";
  return crypto::Base64UrlEncode(last_key);
}

absl::StatusOr<std::string> DecodeContinuationToken(std::string_view token) {
  if (token.empty()) return std::string();
  std::optional<std::string> decoded = crypto::Base64UrlDecode(token);
  if (!decoded.has_value() || decoded->empty()) {
    return InputError("continuation_token", token,
                      "not a continuation token from a previous page");
  }
  return *std::move(decoded);
}

absl::Status StripFieldPrefix(const absl::Status& status,
                              std::string_view prefix) {
  if (status.ok()) return status;
  ErrorInfo info = GetErrorInfo(status);
  auto field = info.details.find("field");
  if (info.code != ErrorCode::kInputError || field == info.details.end() ||
      field->second.rfind(prefix, 0) != 0) {
    return status;
  }
  field->second.erase(0, prefix.size());
  return MakeError(info.code, info.message, std::move(info.details));
}

}  // namespace drover::queue::auth
