// Times as people write them on command lines and in task JSON.
//
// A time spec is either
//   - absolute: RFC 3339, e.g. "2025-03-01T12:00:00Z",
//     "2025-03-01T13:00:00.250+01:00"; or
//   - relative: an optional sign followed by one or more <integer><unit>
//     groups, spaces optional: "+1 hour", "2 days 3 hours", "+90m",
//     "1h30m", "-5 minutes". Units: s/sec/secs/second/seconds,
//     m/min/mins/minute/minutes, h/hr/hrs/hour/hours, d/day/days,
//     w/week/weeks, y/yr/yrs/year/years (365 days). No sign means "+".
// Relative specs are offsets from a base time the caller chooses (for a
// task's deadline and expires: its created time).
#ifndef DROVER_CLIENT_TIME_SPEC_H_
#define DROVER_CLIENT_TIME_SPEC_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace google::protobuf {
class Timestamp;
}

namespace drover::client {

// Parses an RFC 3339 time. Errors: InputError on `field` with `text`.
absl::StatusOr<absl::Time> ParseRfc3339(std::string_view text,
                                        std::string_view field);

// Parses a relative duration ("+1 hour", "1h30m", "-2 days").
// Errors: InputError on `field` naming the bad part.
absl::StatusOr<absl::Duration> ParseRelativeDuration(std::string_view text,
                                                     std::string_view field);

// Parses an absolute or relative time spec; relative ones are added to
// `base`. Errors: InputError on `field`.
absl::StatusOr<absl::Time> ParseTimeSpec(std::string_view text,
                                         std::string_view field,
                                         absl::Time base);

// "2025-03-01T12:00:00.25Z": UTC, fractional seconds only when non-zero.
std::string FormatRfc3339(absl::Time t);

// Protobuf Timestamp conversions. Timestamps before 1970 work as well.
google::protobuf::Timestamp ToProtoTimestamp(absl::Time t);
absl::Time FromProtoTimestamp(const google::protobuf::Timestamp& ts);

}  // namespace drover::client

#endif  // DROVER_CLIENT_TIME_SPEC_H_
