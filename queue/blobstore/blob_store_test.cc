#include "queue/blobstore/blob_store.h"

#include <string>

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::queue::blobstore {
namespace {

TEST(ValidateBlobKeyTest, AcceptsArtifactKeys) {
  for (const char* key :
       {"a", "task/0/public/logs/live.log", "x/y z/w.tar.gz",
        "fJ3k-2_~x/run/file(1).txt", "a/.hidden", "a/..b/c..", "%2e%2e"}) {
    EXPECT_TRUE(ValidateBlobKey(key).ok()) << key;
  }
  EXPECT_TRUE(ValidateBlobKey(std::string(255, 'k')).ok());
}

TEST(ValidateBlobKeyTest, RefusesTraversalAndOddKeys) {
  const std::string long_segment(256, 'k');
  for (const std::string& key :
       {std::string(""), std::string("/etc/passwd"), std::string("a/"),
        std::string(".."), std::string("../x"), std::string("a/../../x"),
        std::string("a/./b"), std::string("."), std::string("a//b"),
        std::string("a\\..\\b"), std::string("a\nb"), std::string("a\0b", 3),
        std::string("caf\xc3\xa9"), std::string(" a"), std::string("a/b "),
        long_segment, std::string(1025, 'a')}) {
    absl::Status status = ValidateBlobKey(key);
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << key;
    EXPECT_EQ(GetErrorInfo(status).details["field"], "key") << key;
  }
}

TEST(ValidatePresignExpiryTest, Bounds) {
  EXPECT_TRUE(ValidatePresignExpiry(absl::Seconds(1)).ok());
  EXPECT_TRUE(ValidatePresignExpiry(kMaxPresignExpiry).ok());
  for (absl::Duration d :
       {absl::ZeroDuration(), absl::Seconds(-5), absl::Milliseconds(500),
        kMaxPresignExpiry + absl::Seconds(1)}) {
    absl::Status status = ValidatePresignExpiry(d);
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError));
    EXPECT_EQ(GetErrorInfo(status).details["field"], "expires_in");
  }
}

TEST(ValidateUploadOptionsTest, ChecksEachField) {
  UploadOptions good{"text/plain; charset=utf-8", "gzip", 12, std::nullopt};
  EXPECT_TRUE(ValidateUploadOptions(good).ok());

  auto field_of = [](const UploadOptions& options) {
    return GetErrorInfo(ValidateUploadOptions(options)).details["field"];
  };
  UploadOptions bad = good;
  bad.content_type = "";
  EXPECT_EQ(field_of(bad), "content_type");
  bad.content_type = "text";
  EXPECT_EQ(field_of(bad), "content_type");
  bad.content_type = "text/plain\r\nX-Evil: 1";
  EXPECT_EQ(field_of(bad), "content_type");
  bad = good;
  bad.content_encoding = "gzip, br";
  EXPECT_EQ(field_of(bad), "content_encoding");
  bad = good;
  bad.sha256 = "ABCDEF";
  EXPECT_EQ(field_of(bad), "sha256");
}

TEST(EncodeKeyForUrlTest, KeepsSlashesAndUnreserved) {
  EXPECT_EQ(EncodeKeyForUrl("a/b-c_d.e~f"), "a/b-c_d.e~f");
  EXPECT_EQ(EncodeKeyForUrl("x y/100%+?#"), "x%20y/100%25%2B%3F%23");
}

}  // namespace
}  // namespace drover::queue::blobstore
