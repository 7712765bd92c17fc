#include "client/time_spec.h"

#include <string>

#include "common/status.h"
#include "google/protobuf/timestamp.pb.h"
#include "gtest/gtest.h"

namespace drover::client {
namespace {

absl::Time At(const char* rfc3339) {
  absl::Time t;
  std::string err;
  EXPECT_TRUE(absl::ParseTime(absl::RFC3339_full, rfc3339, &t, &err)) << err;
  return t;
}

TEST(TimeSpecTest, ParsesRfc3339WithZoneAndFraction) {
  EXPECT_EQ(*ParseRfc3339("2025-03-01T12:00:00Z", "f"),
            absl::FromUnixSeconds(1740830400));
  EXPECT_EQ(*ParseRfc3339("2025-03-01T13:00:00+01:00", "f"),
            absl::FromUnixSeconds(1740830400));
  EXPECT_EQ(*ParseRfc3339("2025-03-01T12:00:00.250Z", "f"),
            absl::FromUnixSeconds(1740830400) + absl::Milliseconds(250));
}

TEST(TimeSpecTest, RejectsTimesWithoutZone) {
  auto got = ParseRfc3339("2025-03-01T12:00:00", "deadline");
  ASSERT_FALSE(got.ok());
  ErrorInfo info = GetErrorInfo(got.status());
  EXPECT_EQ(info.details["field"], "deadline");
  EXPECT_EQ(info.details["value"], "2025-03-01T12:00:00");
}

TEST(TimeSpecTest, ParsesRelativeDurations) {
  struct Case {
    const char* text;
    absl::Duration want;
  };
  const Case cases[] = {
      {"+1 hour", absl::Hours(1)},
      {"1 hour", absl::Hours(1)},
      {"+2 days 3 hours", absl::Hours(51)},
      {"+90m", absl::Minutes(90)},
      {"1h30m", absl::Minutes(90)},
      {"-5 minutes", absl::Minutes(-5)},
      {"+1 week", absl::Hours(168)},
      {"+1 year", absl::Hours(24 * 365)},
      {"30s", absl::Seconds(30)},
      {" +1 Hour, 2 Mins ", absl::Minutes(62)},
  };
  for (const auto& c : cases) {
    auto got = ParseRelativeDuration(c.text, "f");
    ASSERT_TRUE(got.ok()) << c.text << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.text;
  }
}

TEST(TimeSpecTest, RejectsBadDurationsNamingThePart) {
  struct Case {
    const char* text;
    const char* message_part;
  };
  const Case cases[] = {
      {"", "empty duration"},
      {"+", "empty duration"},
      {"+1", "a unit"},
      {"+1 fortnight", "unknown time unit 'fortnight'"},
      {"+hour", "expected a number"},
      {"+1 hour and", "expected a number"},
      {"+99999999999999999999 s", "too large"},
      {"+400000 years", "too large"},
      {"+1.5 hours", "a unit"},
  };
  for (const auto& c : cases) {
    auto got = ParseRelativeDuration(c.text, "expires");
    ASSERT_FALSE(got.ok()) << c.text;
    ErrorInfo info = GetErrorInfo(got.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], "expires") << c.text;
    EXPECT_EQ(info.details["value"], c.text) << c.text;
    EXPECT_NE(info.message.find(c.message_part), std::string::npos)
        << c.text << ": " << info.message;
  }
}

TEST(TimeSpecTest, TimeSpecIsAbsoluteOrRelativeToBase) {
  absl::Time base = At("2025-01-01T00:00:00Z");
  EXPECT_EQ(*ParseTimeSpec("+1 day", "d", base), At("2025-01-02T00:00:00Z"));
  EXPECT_EQ(*ParseTimeSpec("2025-06-01T00:00:00Z", "d", base),
            At("2025-06-01T00:00:00Z"));
  // A date without a time is recognised as an attempt at an absolute time
  // and gets the RFC 3339 message, not a duration one.
  auto bad = ParseTimeSpec("2025-06-01", "d", base);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(GetErrorInfo(bad.status()).message.find("RFC 3339"),
            std::string::npos);
}

TEST(TimeSpecTest, FormatsAndRoundTripsProtoTimestamps) {
  absl::Time t = At("2025-03-01T12:00:00.25Z");
  EXPECT_EQ(FormatRfc3339(t), "2025-03-01T12:00:00.25Z");
  EXPECT_EQ(FormatRfc3339(At("2025-03-01T12:00:00Z")), "2025-03-01T12:00:00Z");
  google::protobuf::Timestamp ts = ToProtoTimestamp(t);
  EXPECT_EQ(ts.seconds(), 1740830400);
  EXPECT_EQ(ts.nanos(), 250000000);
  EXPECT_EQ(FromProtoTimestamp(ts), t);
  // Before the epoch the nanos stay non-negative, as protobuf requires.
  absl::Time old = absl::FromUnixSeconds(-10) + absl::Milliseconds(500);
  google::protobuf::Timestamp old_ts = ToProtoTimestamp(old);
  EXPECT_EQ(old_ts.seconds(), -10);
  EXPECT_EQ(old_ts.nanos(), 500000000);
  EXPECT_EQ(FromProtoTimestamp(old_ts), old);
}

}  // namespace
}  // namespace drover::client
