#include "client/endpoint.h"

#include <string>

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::client {
namespace {

TEST(ParseUrlTest, AcceptsTheThreeForms) {
  struct Case {
    std::string url;
    Endpoint want;
  };
  const Case cases[] = {
      {"127.0.0.1:50051", {"127.0.0.1", 50051, false}},
      {"localhost:1", {"localhost", 1, false}},
      {"http://queue.internal:8000", {"queue.internal", 8000, false}},
      {"http://queue.internal", {"queue.internal", 80, false}},
      {"https://drover.example.com", {"drover.example.com", 443, true}},
      {"https://drover.example.com:8443/", {"drover.example.com", 8443, true}},
      {"[::1]:50051", {"::1", 50051, false}},
      {"https://[2001:db8::7]", {"2001:db8::7", 443, true}},
  };
  for (const auto& c : cases) {
    auto got = ParseUrl(c.url);
    ASSERT_TRUE(got.ok()) << c.url << ": " << got.status();
    EXPECT_EQ(*got, c.want) << c.url;
  }
}

TEST(ParseUrlTest, TargetAndUrl) {
  EXPECT_EQ(ParseUrl("h:5")->Target(), "h:5");
  EXPECT_EQ(ParseUrl("h:5")->Url(), "http://h:5");
  EXPECT_EQ(ParseUrl("https://[::1]")->Target(), "[::1]:443");
  EXPECT_EQ(ParseUrl("https://[::1]")->Url(), "https://[::1]:443");
}

TEST(ParseUrlTest, RejectsBadUrlsNamingTheField) {
  struct Case {
    std::string url;
    std::string message_part;
  };
  const Case cases[] = {
      {"", "empty"},
      {"localhost", "port is required"},
      {"ftp://host:21", "unknown URL scheme 'ftp'"},
      {"grpc://host:1", "unknown URL scheme 'grpc'"},
      {"http://host:1/api", "path"},
      {"host:1?x=1", "path or query"},
      {"http://user@host:1", "user info"},
      {":50051", "no host"},
      {"http://", "no host"},
      {"host:", "port must be a number"},
      {"host:0", "1..65535"},
      {"host:65536", "1..65535"},
      {"host:12ab", "got '12ab'"},
      {"host:-1", "port must be"},
      {"::1:50051", "brackets"},
      {"[::1:50051", "unterminated"},
      {"[::1]50051", "expected ':port'"},
  };
  for (const auto& c : cases) {
    auto got = ParseUrl(c.url, "--url");
    ASSERT_FALSE(got.ok()) << c.url;
    ErrorInfo info = GetErrorInfo(got.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError) << c.url;
    EXPECT_EQ(info.details["field"], "--url") << c.url;
    EXPECT_EQ(info.details["value"], c.url) << c.url;
    EXPECT_NE(info.message.find(c.message_part), std::string::npos)
        << c.url << ": " << info.message;
  }
}

}  // namespace
}  // namespace drover::client
