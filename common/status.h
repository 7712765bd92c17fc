// Status helpers: every failure in Drover is an absl::Status carrying a
// machine-readable error {code, message, details}.
//
// The error code is one of a small documented set (docs/errors.md); details
// name the offending field and value. common/rpc maps these to gRPC status
// in exactly one place.
#ifndef DROVER_COMMON_STATUS_H_
#define DROVER_COMMON_STATUS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace drover {

enum class ErrorCode {
  kInputError,
  kMalformedPayload,
  kInsufficientScopes,
  kAuthenticationFailed,
  kResourceNotFound,
  kRequestConflict,
  kResourceExpired,
  kInputTooLarge,
  kInternalError,
};

using ErrorDetails = std::map<std::string, std::string>;

// The decoded form of an error status.
struct ErrorInfo {
  ErrorCode code = ErrorCode::kInternalError;
  std::string message;
  ErrorDetails details;
};

// "InputError", "RequestConflict", ...
std::string_view ErrorCodeName(ErrorCode code);
std::optional<ErrorCode> ErrorCodeFromName(std::string_view name);

// The absl status code an ErrorCode travels as (and hence its gRPC code).
absl::StatusCode CanonicalCode(ErrorCode code);

// Builds a status with the given error code, message and details.
absl::Status MakeError(ErrorCode code, std::string_view message,
                       ErrorDetails details = {});

// Shorthands for the common cases; `field` is a dotted path such as
// "task.metadata.name" and `value` the offending value (truncated).
absl::Status InputError(std::string_view field, std::string_view value,
                        std::string_view message);
absl::Status NotFoundError(std::string_view kind, std::string_view id);
absl::Status ConflictError(std::string_view message, ErrorDetails details = {});
absl::Status InternalError(std::string_view message);

// Decodes any status. A status made without MakeError maps to the error
// code matching its canonical code (InternalError when none matches).
ErrorInfo GetErrorInfo(const absl::Status& status);

// True when `status` carries `code`.
bool HasErrorCode(const absl::Status& status, ErrorCode code);

}  // namespace drover

// Propagates a non-OK status from an expression.
#define DROVER_RETURN_IF_ERROR(expr)              \
  do {                                            \
    if (::absl::Status drover_status_ = (expr);   \
        !drover_status_.ok()) {                   \
      return drover_status_;                      \
    }                                             \
  } while (false)

#define DROVER_STATUS_CONCAT_INNER_(a, b) a##b
#define DROVER_STATUS_CONCAT_(a, b) DROVER_STATUS_CONCAT_INNER_(a, b)

// Assigns the value of a StatusOr expression or returns its status.
#define DROVER_ASSIGN_OR_RETURN(lhs, expr)                                \
  DROVER_ASSIGN_OR_RETURN_IMPL_(                                          \
      DROVER_STATUS_CONCAT_(drover_statusor_, __LINE__), lhs, expr)
#define DROVER_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                                  \
  if (!statusor.ok()) return statusor.status();            \
  lhs = std::move(statusor).value()

#endif  // DROVER_COMMON_STATUS_H_
