#include "common/status.h"

#include <array>
#include <utility>

#include "absl/strings/cord.h"
#include "nlohmann/json.hpp"

namespace drover {
namespace {

// The payload key under which the error code and details ride on a status.
constexpr std::string_view kPayloadUrl = "drover.dev/error";
// Values in details are for humans; a megabyte payload echoed back helps no
// one, so they are cut here.
constexpr size_t kMaxDetailValue = 256;

struct CodeEntry {
  ErrorCode code;
  std::string_view name;
  absl::StatusCode canonical;
};

constexpr std::array<CodeEntry, 9> kCodes = {{
    {ErrorCode::kInputError, "InputError", absl::StatusCode::kInvalidArgument},
    {ErrorCode::kMalformedPayload, "MalformedPayload",
     absl::StatusCode::kInvalidArgument},
    {ErrorCode::kInsufficientScopes, "InsufficientScopes",
     absl::StatusCode::kPermissionDenied},
    {ErrorCode::kAuthenticationFailed, "AuthenticationFailed",
     absl::StatusCode::kUnauthenticated},
    {ErrorCode::kResourceNotFound, "ResourceNotFound",
     absl::StatusCode::kNotFound},
    {ErrorCode::kRequestConflict, "RequestConflict",
     absl::StatusCode::kFailedPrecondition},
    {ErrorCode::kResourceExpired, "ResourceExpired",
     absl::StatusCode::kFailedPrecondition},
    {ErrorCode::kInputTooLarge, "InputTooLarge",
     absl::StatusCode::kInvalidArgument},
    {ErrorCode::kInternalError, "InternalError", absl::StatusCode::kInternal},
}};

std::string Truncate(std::string_view value) {
  if (value.size() <= kMaxDetailValue) return std::string(value);
  return std::string(value.substr(0, kMaxDetailValue)) + "...";
}

}  // namespace

std::string_view ErrorCodeName(ErrorCode code) {
  for (const auto& entry : kCodes) {
    if (entry.code == code) return entry.name;
  }
  return "InternalError";
}

std::optional<ErrorCode> ErrorCodeFromName(std::string_view name) {
  for (const auto& entry : kCodes) {
    if (entry.name == name) return entry.code;
  }
  return std::nullopt;
}

absl::StatusCode CanonicalCode(ErrorCode code) {
  for (const auto& entry : kCodes) {
    if (entry.code == code) return entry.canonical;
  }
  return absl::StatusCode::kInternal;
}

absl::Status MakeError(ErrorCode code, std::string_view message,
                       ErrorDetails details) {
  absl::Status status(CanonicalCode(code),
                      absl::string_view(message.data(), message.size()));
  nlohmann::json payload;
  payload["code"] = ErrorCodeName(code);
  nlohmann::json fields = nlohmann::json::object();
  // Only echoed input is cut; structured details (e.g. the scope sets of
  // InsufficientScopes) must stay whole to remain parseable.
  for (auto& [key, value] : details) {
    fields[key] = key == "value" ? Truncate(value) : value;
  }
  payload["details"] = std::move(fields);
  status.SetPayload(absl::string_view(kPayloadUrl.data(), kPayloadUrl.size()),
                    absl::Cord(payload.dump(
                        -1, ' ', false,
                        nlohmann::json::error_handler_t::replace)));
  return status;
}

absl::Status InputError(std::string_view field, std::string_view value,
                        std::string_view message) {
  return MakeError(ErrorCode::kInputError, message,
                   {{"field", std::string(field)}, {"value", std::string(value)}});
}

absl::Status NotFoundError(std::string_view kind, std::string_view id) {
  std::string message = std::string(kind) + " " + std::string(id) + " not found";
  return MakeError(ErrorCode::kResourceNotFound, message,
                   {{"kind", std::string(kind)}, {"id", std::string(id)}});
}

absl::Status ConflictError(std::string_view message, ErrorDetails details) {
  return MakeError(ErrorCode::kRequestConflict, message, std::move(details));
}

absl::Status InternalError(std::string_view message) {
  return MakeError(ErrorCode::kInternalError, message);
}

ErrorInfo GetErrorInfo(const absl::Status& status) {
  ErrorInfo info;
  info.message = std::string(status.message());
  if (auto payload = status.GetPayload(
          absl::string_view(kPayloadUrl.data(), kPayloadUrl.size()));
      payload.has_value()) {
    auto parsed = nlohmann::json::parse(std::string(*payload), nullptr,
                                        /*allow_exceptions=*/false);
    if (parsed.is_object()) {
      if (auto code = ErrorCodeFromName(parsed.value("code", ""))) {
        info.code = *code;
      }
      if (auto it = parsed.find("details"); it != parsed.end() &&
                                            it->is_object()) {
        for (const auto& item : it->items()) {
          if (item.value().is_string()) {
            info.details[item.key()] = item.value().get<std::string>();
          }
        }
      }
      return info;
    }
  }
  switch (status.code()) {
    case absl::StatusCode::kInvalidArgument:
      info.code = ErrorCode::kInputError;
      break;
    case absl::StatusCode::kNotFound:
      info.code = ErrorCode::kResourceNotFound;
      break;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      info.code = ErrorCode::kRequestConflict;
      break;
    case absl::StatusCode::kPermissionDenied:
      info.code = ErrorCode::kInsufficientScopes;
      break;
    case absl::StatusCode::kUnauthenticated:
      info.code = ErrorCode::kAuthenticationFailed;
      break;
    case absl::StatusCode::kResourceExhausted:
      info.code = ErrorCode::kInputTooLarge;
      break;
    default:
      info.code = ErrorCode::kInternalError;
  }
  return info;
}

bool HasErrorCode(const absl::Status& status, ErrorCode code) {
  return !status.ok() && GetErrorInfo(status).code == code;
}

}  // namespace drover
