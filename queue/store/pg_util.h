// Small helpers shared by the PostgreSQL code of the store: turning libpqxx
// exceptions into statuses, and encoding values as statement parameters
// (times, text arrays) or decoding them from result fields.
#ifndef DROVER_QUEUE_STORE_PG_UTIL_H_
#define DROVER_QUEUE_STORE_PG_UTIL_H_

#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pqxx/pqxx"

namespace drover::queue::store::pg {

// Opens a connection. Errors: InternalError with libpq's reason (never the
// connection string, which may hold a password).
absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect(
    const std::string& connection_string);

// Converts the exception being handled (call inside a catch block) into an
// InternalError that names `what_failed` and, for SQL errors, the SQLSTATE.
absl::Status CurrentExceptionToStatus(std::string_view what_failed);

// Converts the SQL error being handled (call inside its catch block) into a
// status: InputError (details: operation, sqlstate) for data exceptions
// (class 22) and CHECK violations (23514), i.e. a value that got past
// validation and the database refused, since blaming the server would
// mislead the caller; otherwise CurrentExceptionToStatus(operation).
absl::Status SqlErrorToStatus(const pqxx::sql_error& error,
                              const char* operation);

// True when the SQLSTATE means "retry the whole transaction" (deadlock,
// serialization failure).
bool IsRetryableSqlState(std::string_view sqlstate);

// A timestamptz parameter: "2024-05-01 12:00:00.123456+00". Sub-microsecond
// digits are dropped (the database keeps microseconds).
std::string TimeParam(absl::Time t);
// The result of epoch_us(...): microseconds since the epoch.
absl::Time TimeFromMicros(int64_t micros);
// Nullable epoch_us(...) column.
std::optional<absl::Time> OptionalTime(const pqxx::field& f);

// A text[] parameter literal: {"a","b\"c"}; every element quoted.
std::string TextArrayParam(const std::vector<std::string>& values);
// Decodes a one-dimensional text[] result field; NULL elements are skipped.
std::vector<std::string> TextArrayField(const pqxx::field& f);

// Empty string for NULL.
std::string TextOrEmpty(const pqxx::field& f);

// Quotes a libpq connection-string value: 'it''s' style with backslashes.
std::string QuoteConnValue(std::string_view value);

}  // namespace drover::queue::store::pg

#endif  // DROVER_QUEUE_STORE_PG_UTIL_H_
