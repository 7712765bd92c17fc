#include "queue/artifacts/artifact_validation.h"

#include <string>

#include "common/slugid.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::queue::artifacts {
namespace {

constexpr char kSha[] =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

v1::CreateArtifactRequest BlobRequest() {
  v1::CreateArtifactRequest r;
  r.set_task_id(NewSlugId());
  r.set_run_id(0);
  r.set_name("public/build/output.tar.gz");
  r.set_content_type("application/gzip");
  r.mutable_blob()->set_size(4);
  r.mutable_blob()->set_sha256(kSha);
  return r;
}

std::string FieldOf(const absl::Status& status) {
  return GetErrorInfo(status).details["field"];
}

TEST(ArtifactValidationTest, AcceptsABlobAndDerivesItsKey) {
  auto r = BlobRequest();
  auto out = ValidateCreateArtifact(r);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->artifact.kind, ArtifactKind::kBlob);
  EXPECT_EQ(out->artifact.blob_key,
            r.task_id() + "/0/public/build/output.tar.gz");
  EXPECT_FALSE(out->expires.has_value());
  EXPECT_EQ(out->artifact.size, 4);
}

TEST(ArtifactValidationTest, DefaultsTheContentType) {
  auto r = BlobRequest();
  r.clear_content_type();
  auto out = ValidateCreateArtifact(r);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->artifact.content_type, "application/octet-stream");
}

TEST(ArtifactValidationTest, RefusesBadNamesNamingTheField) {
  for (const std::string& name : std::vector<std::string>{
           "", "/abs", "a/../b", "a//b", "trailing/", "./x", "back\\slash",
           "tab\tname", std::string(991, 'a')}) {
    auto r = BlobRequest();
    r.set_name(name);
    absl::Status status = ValidateCreateArtifact(r).status();
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << name;
    EXPECT_EQ(FieldOf(status), "name") << name;
  }
}

TEST(ArtifactValidationTest, RefusesBadBlobFields) {
  {
    auto r = BlobRequest();
    r.mutable_blob()->set_size(-1);
    EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "blob.size");
  }
  {
    auto r = BlobRequest();
    r.mutable_blob()->set_sha256("ABC");
    EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "blob.sha256");
  }
  {
    auto r = BlobRequest();
    r.mutable_blob()->set_content_encoding("br");
    EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()),
              "blob.content_encoding");
  }
  {
    auto r = BlobRequest();
    r.set_content_type("not a type");
    EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "content_type");
  }
}

TEST(ArtifactValidationTest, RefusesBadIds) {
  auto r = BlobRequest();
  r.set_task_id("nope");
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "task_id");
  r = BlobRequest();
  r.set_run_id(50);
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "run_id");
  r = BlobRequest();
  r.set_run_id(-1);
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "run_id");
}

TEST(ArtifactValidationTest, OtherKinds) {
  auto r = BlobRequest();
  r.mutable_reference()->set_url("https://example.com/x");
  ASSERT_TRUE(ValidateCreateArtifact(r).ok());
  r.mutable_reference()->set_url("ftp://example.com/x");
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "reference.url");
  r.mutable_reference()->set_url("https://example.com/a b");
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "reference.url");

  r.mutable_link()->set_artifact("public/other");
  auto link = ValidateCreateArtifact(r);
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(link->artifact.link_run_id, 0);  // defaults to the own run
  r.mutable_link()->set_artifact("../x");
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "link.artifact");
  r.mutable_link()->set_artifact("x");
  r.mutable_link()->set_run_id(77);
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "link.run_id");

  r.mutable_error()->set_reason("file-missing-on-worker");
  r.mutable_error()->set_message("no such file");
  ASSERT_TRUE(ValidateCreateArtifact(r).ok());
  r.mutable_error()->set_reason("Bad Reason");
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "error.reason");
  r.mutable_error()->set_reason("x");
  r.mutable_error()->set_message(std::string(5000, 'm'));
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "error.message");

  r.clear_error();
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "kind");
}

TEST(ArtifactValidationTest, ExpiresIsTruncatedToMicroseconds) {
  auto r = BlobRequest();
  r.mutable_expires()->set_seconds(2000000000);
  r.mutable_expires()->set_nanos(123456789);
  auto out = ValidateCreateArtifact(r);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out->expires,
            absl::FromUnixMicros(int64_t{2000000000} * 1000000 + 123456));
  r.mutable_expires()->set_nanos(-1);
  EXPECT_EQ(FieldOf(ValidateCreateArtifact(r).status()), "expires");
}

TEST(ArtifactValidationTest, ContinuationTokensRoundTripAndRefuseForgeries) {
  std::string token = EncodeContinuationToken(3, "public/a b/c");
  auto decoded = DecodeContinuationToken(token);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->first, 3);
  EXPECT_EQ(decoded->second, "public/a b/c");
  for (const std::string bad : {"", "!!", "bm9jb2xvbg", "OTk6eA"}) {
    EXPECT_EQ(FieldOf(DecodeContinuationToken(bad).status()),
              "continuation_token")
        << bad;
  }
}

TEST(ArtifactValidationTest, ListLimits) {
  EXPECT_EQ(*ValidateListLimit(0), kDefaultListLimit);
  EXPECT_EQ(*ValidateListLimit(1000), 1000);
  EXPECT_EQ(FieldOf(ValidateListLimit(1001).status()), "limit");
  EXPECT_EQ(FieldOf(ValidateListLimit(-5).status()), "limit");
}

TEST(ArtifactValidationTest, AppendLogLimits) {
  v1::AppendLogRequest r;
  r.set_task_id(NewSlugId());
  r.set_offset(0);
  r.set_data("x");
  EXPECT_TRUE(ValidateAppendLog(r).ok());
  r.set_offset(-1);
  EXPECT_EQ(FieldOf(ValidateAppendLog(r)), "offset");
  r.set_offset(0);
  r.set_data("");
  EXPECT_EQ(FieldOf(ValidateAppendLog(r)), "data");
  r.set_data(std::string(kMaxAppendBytes + 1, 'x'));
  EXPECT_TRUE(HasErrorCode(ValidateAppendLog(r), ErrorCode::kInputTooLarge));
  EXPECT_EQ(FieldOf(ValidateAppendLog(r)), "data");
}

}  // namespace
}  // namespace drover::queue::artifacts
