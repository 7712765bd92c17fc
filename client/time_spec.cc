#include "client/time_spec.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <string>
#include <utility>

#include "common/status.h"
#include "google/protobuf/timestamp.pb.h"

namespace drover::client {
namespace {

struct UnitEntry {
  std::string_view name;
  absl::Duration length;
};

// Fixed lengths: a "year" here is 365 days, not a calendar year, so a
// relative spec means the same span whatever the base date.
const UnitEntry kUnits[] = {
    {"s", absl::Seconds(1)},         {"sec", absl::Seconds(1)},
    {"secs", absl::Seconds(1)},      {"second", absl::Seconds(1)},
    {"seconds", absl::Seconds(1)},   {"m", absl::Minutes(1)},
    {"min", absl::Minutes(1)},       {"mins", absl::Minutes(1)},
    {"minute", absl::Minutes(1)},    {"minutes", absl::Minutes(1)},
    {"h", absl::Hours(1)},           {"hr", absl::Hours(1)},
    {"hrs", absl::Hours(1)},         {"hour", absl::Hours(1)},
    {"hours", absl::Hours(1)},       {"d", absl::Hours(24)},
    {"day", absl::Hours(24)},        {"days", absl::Hours(24)},
    {"w", absl::Hours(24 * 7)},      {"week", absl::Hours(24 * 7)},
    {"weeks", absl::Hours(24 * 7)},  {"y", absl::Hours(24 * 365)},
    {"yr", absl::Hours(24 * 365)},   {"yrs", absl::Hours(24 * 365)},
    {"year", absl::Hours(24 * 365)}, {"years", absl::Hours(24 * 365)},
};

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

}  // namespace

absl::StatusOr<absl::Time> ParseRfc3339(std::string_view text,
                                        std::string_view field) {
  absl::Time t;
  std::string error;
  // RFC 3339 requires the 'T' and an explicit offset; absl's RFC3339_full
  // accepts exactly that (with 'Z' or +hh:mm) and any fractional digits.
  if (!absl::ParseTime(absl::RFC3339_full,
                       absl::string_view(text.data(), text.size()), &t,
                       &error)) {
    return InputError(
        field, text,
        "not an RFC 3339 time (e.g. 2025-03-01T12:00:00Z): " + error);
  }
  return t;
}

absl::StatusOr<absl::Duration> ParseRelativeDuration(std::string_view text,
                                                     std::string_view field) {
  std::string_view rest = text;
  while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
  bool negative = false;
  if (!rest.empty() && (rest.front() == '+' || rest.front() == '-')) {
    negative = rest.front() == '-';
    rest.remove_prefix(1);
  }
  absl::Duration total;
  int groups = 0;
  while (true) {
    while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
    if (rest.empty()) break;
    int64_t amount = 0;
    auto [end, ec] =
        std::from_chars(rest.data(), rest.data() + rest.size(), amount);
    if (ec == std::errc::result_out_of_range) {
      return InputError(field, text, "the number is too large");
    }
    if (ec != std::errc() || end == rest.data()) {
      return InputError(
          field, text,
          "expected a number followed by a unit (e.g. \"+1 hour\", "
          "\"2d 3h\") at '" +
              std::string(rest) + "'");
    }
    rest.remove_prefix(end - rest.data());
    while (!rest.empty() && IsSpace(rest.front())) rest.remove_prefix(1);
    size_t unit_len = 0;
    while (unit_len < rest.size() &&
           std::isalpha(static_cast<unsigned char>(rest[unit_len]))) {
      ++unit_len;
    }
    std::string unit(rest.substr(0, unit_len));
    for (char& c : unit) c = static_cast<char>(std::tolower(c));
    const UnitEntry* found = nullptr;
    for (const auto& entry : kUnits) {
      if (entry.name == unit) found = &entry;
    }
    if (found == nullptr) {
      return InputError(
          field, text,
          unit.empty()
              ? "a unit (s, m, h, d, w, y) must follow the "
                "number " +
                    std::to_string(amount)
              : "unknown time unit '" + unit + "'; use s, m, h, d, w or y");
    }
    // 1000 years is far beyond any deadline or expiry and keeps the
    // arithmetic nowhere near overflow.
    if (amount >
        1000 * 365 * 24 * 3600LL / absl::ToInt64Seconds(found->length)) {
      return InputError(field, text, "the duration is too large");
    }
    total += amount * found->length;
    rest.remove_prefix(unit_len);
    ++groups;
    // Allow "1 hour, 2 minutes".
    if (!rest.empty() && rest.front() == ',') rest.remove_prefix(1);
  }
  if (groups == 0) {
    return InputError(field, text, "empty duration; write e.g. \"+1 hour\"");
  }
  return negative ? -total : total;
}

absl::StatusOr<absl::Time> ParseTimeSpec(std::string_view text,
                                         std::string_view field,
                                         absl::Time base) {
  std::string_view trimmed = text;
  while (!trimmed.empty() && IsSpace(trimmed.front())) trimmed.remove_prefix(1);
  // An absolute time starts with a four-digit year and has a '-' right
  // after it; everything else is treated as relative so its errors talk
  // about durations.
  bool absolute = trimmed.size() >= 5 && trimmed[4] == '-' &&
                  std::isdigit(static_cast<unsigned char>(trimmed[0]));
  if (absolute) return ParseRfc3339(trimmed, field);
  DROVER_ASSIGN_OR_RETURN(absl::Duration offset,
                          ParseRelativeDuration(text, field));
  return base + offset;
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

google::protobuf::Timestamp ToProtoTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  int64_t seconds = absl::ToUnixSeconds(t);
  // ToUnixSeconds floors, so the remainder is always in [0, 1s).
  int64_t nanos = absl::ToInt64Nanoseconds(t - absl::FromUnixSeconds(seconds));
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(nanos));
  return ts;
}

absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

}  // namespace drover::client
