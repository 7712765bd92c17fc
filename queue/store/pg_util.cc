#include "queue/store/pg_util.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace drover::queue::store::pg {

absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect(
    const std::string& connection_string) {
  try {
    return std::make_unique<pqxx::connection>(connection_string);
  } catch (const std::exception& e) {
    // libpq's message names the host and the reason, not the password.
    return InternalError(std::string("cannot connect to PostgreSQL: ") +
                         e.what());
  }
}

bool IsRetryableSqlState(std::string_view sqlstate) {
  return sqlstate == "40001" || sqlstate == "40P01";
}

absl::Status CurrentExceptionToStatus(std::string_view what_failed) {
  std::string prefix(what_failed);
  try {
    throw;
  } catch (const pqxx::broken_connection& e) {
    return MakeError(ErrorCode::kInternalError,
                     prefix + ": lost the database connection: " + e.what(),
                     {{"operation", std::string(what_failed)}});
  } catch (const pqxx::sql_error& e) {
    return MakeError(
        ErrorCode::kInternalError, prefix + ": " + e.what(),
        {{"operation", std::string(what_failed)}, {"sqlstate", e.sqlstate()}});
  } catch (const std::exception& e) {
    return MakeError(ErrorCode::kInternalError, prefix + ": " + e.what(),
                     {{"operation", std::string(what_failed)}});
  }
}

absl::Status SqlErrorToStatus(const pqxx::sql_error& error,
                              const char* operation) {
  const std::string state = error.sqlstate();
  if (state.rfind("22", 0) == 0 || state == "23514") {
    return MakeError(
        ErrorCode::kInputError,
        absl::StrCat(operation,
                     ": the database rejected a value: ", error.what()),
        {{"operation", operation}, {"sqlstate", state}});
  }
  return CurrentExceptionToStatus(operation);
}

std::string TimeParam(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E6S+00", t, absl::UTCTimeZone());
}

absl::Time TimeFromMicros(int64_t micros) {
  return absl::FromUnixMicros(micros);
}

std::optional<absl::Time> OptionalTime(const pqxx::field& f) {
  if (f.is_null()) return std::nullopt;
  return TimeFromMicros(f.as<int64_t>());
}

std::string TextArrayParam(const std::vector<std::string>& values) {
  std::string out = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : values[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

std::vector<std::string> TextArrayField(const pqxx::field& f) {
  std::vector<std::string> out;
  if (f.is_null()) return out;
  pqxx::array_parser parser = f.as_array();
  for (;;) {
    auto [juncture, value] = parser.get_next();
    if (juncture == pqxx::array_parser::done) break;
    if (juncture == pqxx::array_parser::string_value) {
      out.push_back(std::move(value));
    }
  }
  return out;
}

std::string TextOrEmpty(const pqxx::field& f) {
  if (f.is_null()) return "";
  return f.c_str();
}

std::string QuoteConnValue(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

}  // namespace drover::queue::store::pg
