// S3BlobStore: URL construction and option checks, the documented AWS
// presigned-URL example, and end-to-end runs against a real S3-compatible
// server (scripts/start-s3.sh starts s3rver; DROVER_TEST_S3_ENDPOINT names
// it). s3rver does not verify SigV4 signatures, which is why sigv4_test.cc
// checks the signer against AWS's vectors.
#include "queue/blobstore/s3/s3_blob_store.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/slugid.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "queue/blobstore/sha256.h"
#include "queue/blobstore/testing/curl_client.h"

namespace drover::queue::blobstore::s3 {
namespace {

using ::drover::queue::blobstore::testing::CurlRequest;
using ::drover::queue::blobstore::testing::CurlResponse;
using ::drover::queue::blobstore::testing::PatternSha256;
using ::drover::queue::blobstore::testing::PatternString;
using ::drover::queue::blobstore::testing::Perform;

S3BlobStoreOptions AwsExampleOptions() {
  S3BlobStoreOptions options;
  options.endpoint = "https://s3.amazonaws.com";
  options.region = "us-east-1";
  options.bucket = "examplebucket";
  options.credentials = {"AKIAIOSFODNN7EXAMPLE",
                         "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
  return options;
}

std::string FieldOf(const absl::Status& status) {
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << status;
  return GetErrorInfo(status).details["field"];
}

TEST(S3BlobStoreTest, PresignedGetMatchesAwsDocumentedExample) {
  FakeClock clock(absl::FromUnixSeconds(1369353600));  // 2013-05-24T00:00:00Z
  auto store = S3BlobStore::Create(AwsExampleOptions(), &clock);
  ASSERT_TRUE(store.ok()) << store.status();
  auto url = (*store)->PresignDownload("test.txt", absl::Hours(24));
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_EQ(*url,
            "https://examplebucket.s3.amazonaws.com/test.txt"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
            "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2F"
            "s3%2Faws4_request"
            "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
            "&X-Amz-SignedHeaders=host"
            "&X-Amz-Signature="
            "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(S3BlobStoreTest, PathStyleAndVirtualHostUrls) {
  FakeClock clock;
  S3BlobStoreOptions options = AwsExampleOptions();
  options.endpoint = "http://127.0.0.1:4569";
  options.path_style = true;
  options.bucket = "my.bucket";
  options.key_prefix = "drover/";
  auto path_style = S3BlobStore::Create(options, &clock);
  ASSERT_TRUE(path_style.ok()) << path_style.status();
  EXPECT_EQ(*(*path_style)->ObjectUrl("t/0/public/a b+c.txt"),
            "http://127.0.0.1:4569/my.bucket/drover/t/0/public/a%20b%2Bc.txt");

  options = AwsExampleOptions();
  options.endpoint = "https://s3.eu-west-1.amazonaws.com:443/";
  options.region = "eu-west-1";
  auto virtual_host = S3BlobStore::Create(options, &clock);
  ASSERT_TRUE(virtual_host.ok()) << virtual_host.status();
  EXPECT_EQ(*(*virtual_host)->ObjectUrl("k"),
            "https://examplebucket.s3.eu-west-1.amazonaws.com/k");
  auto url = (*virtual_host)->PresignDownload("k", absl::Minutes(5));
  ASSERT_TRUE(url.ok());
  EXPECT_NE(url->find("%2Feu-west-1%2Fs3%2Faws4_request"), std::string::npos);
  EXPECT_NE(url->find("&X-Amz-Expires=300&"), std::string::npos);
}

TEST(S3BlobStoreTest, PresignedUploadSignsItsHeaders) {
  FakeClock clock(absl::FromUnixSeconds(1369353600));
  auto store = S3BlobStore::Create(AwsExampleOptions(), &clock);
  ASSERT_TRUE(store.ok());
  UploadOptions options{"text/plain", "gzip", 3, HexEncode(Sha256Of("abc"))};
  auto put =
      (*store)->PresignUpload("logs/live.log", options, absl::Minutes(30));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->method, "PUT");
  EXPECT_EQ(put->expires, clock.Now() + absl::Minutes(30));
  EXPECT_EQ(put->headers.at("Content-Type"), "text/plain");
  EXPECT_EQ(put->headers.at("Content-Encoding"), "gzip");
  EXPECT_EQ(put->headers.at("Content-Length"), "3");
  // base64 of SHA-256("abc") (FIPS 180-2).
  EXPECT_EQ(put->headers.at("x-amz-checksum-sha256"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  EXPECT_NE(put->url.find("&X-Amz-SignedHeaders=content-encoding%3Bcontent-"
                          "length%3Bcontent-type%3Bhost%3Bx-amz-checksum-"
                          "sha256&"),
            std::string::npos)
      << put->url;

  // Each bound header changes the signature.
  auto signature_of = [](const std::string& url) {
    return url.substr(url.find("X-Amz-Signature="));
  };
  UploadOptions other = options;
  other.content_type = "text/html";
  EXPECT_NE(signature_of(
                (*store)
                    ->PresignUpload("logs/live.log", other, absl::Minutes(30))
                    ->url),
            signature_of(put->url));
}

TEST(S3BlobStoreTest, CreateRefusesBadOptions) {
  FakeClock clock;
  auto field_of_create = [&clock](const S3BlobStoreOptions& options) {
    return FieldOf(S3BlobStore::Create(options, &clock).status());
  };
  S3BlobStoreOptions bad = AwsExampleOptions();
  bad.endpoint = "s3.amazonaws.com";
  EXPECT_EQ(field_of_create(bad), "endpoint");
  bad.endpoint = "https://s3.amazonaws.com/path";
  EXPECT_EQ(field_of_create(bad), "endpoint");
  bad.endpoint = "http://127.0.0.1:99999";
  EXPECT_EQ(field_of_create(bad), "endpoint");
  bad = AwsExampleOptions();
  bad.bucket = "Bad_Bucket";
  EXPECT_EQ(field_of_create(bad), "bucket");
  bad.bucket = "with.dots";  // virtual host over https
  EXPECT_EQ(field_of_create(bad), "bucket");
  bad = AwsExampleOptions();
  bad.region = "US East";
  EXPECT_EQ(field_of_create(bad), "region");
  bad = AwsExampleOptions();
  bad.credentials.access_key_id.clear();
  EXPECT_EQ(field_of_create(bad), "credentials.access_key_id");
  bad = AwsExampleOptions();
  bad.credentials.secret_access_key.clear();
  EXPECT_EQ(field_of_create(bad), "credentials.secret_access_key");
  bad = AwsExampleOptions();
  bad.key_prefix = "../";
  EXPECT_EQ(field_of_create(bad), "key_prefix");
  bad.key_prefix = "noslash";
  EXPECT_EQ(field_of_create(bad), "key_prefix");
}

TEST(S3BlobStoreTest, RefusesBadKeysAndExpiries) {
  FakeClock clock;
  auto store = S3BlobStore::Create(AwsExampleOptions(), &clock);
  ASSERT_TRUE(store.ok());
  for (const char* key : {"../x", "a/../b", "/abs", "a//b", ""}) {
    EXPECT_EQ(
        FieldOf((*store)->PresignDownload(key, absl::Minutes(1)).status()),
        "key");
    EXPECT_EQ(FieldOf((*store)
                          ->PresignUpload(key, {"text/plain"}, absl::Minutes(1))
                          .status()),
              "key");
    EXPECT_EQ(FieldOf((*store)->Stat(key).status()), "key");
    EXPECT_EQ(FieldOf((*store)->Delete(key)), "key");
  }
  EXPECT_EQ(
      FieldOf((*store)->PresignDownload("k", absl::Hours(24 * 8)).status()),
      "expires_in");
  EXPECT_EQ(
      FieldOf((*store)->PresignUpload("k", {""}, absl::Minutes(1)).status()),
      "content_type");
}

// ---------------------------------------------------------------------------
// End to end against DROVER_TEST_S3_ENDPOINT.

class S3EndToEndTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* endpoint = std::getenv("DROVER_TEST_S3_ENDPOINT");
    if (endpoint == nullptr || *endpoint == '\0') {
      GTEST_SKIP() << "no S3 endpoint configured: run scripts/start-s3.sh and "
                      "export DROVER_TEST_S3_ENDPOINT";
    }
    const char* bucket = std::getenv("DROVER_TEST_S3_BUCKET");
    S3BlobStoreOptions options;
    options.endpoint = endpoint;
    options.bucket = bucket && *bucket ? bucket : "drover-test";
    options.path_style = true;
    // s3rver's built-in account; it checks the key id, not the signature.
    options.credentials = {"S3RVER", "S3RVER", ""};
    options.key_prefix = absl::StrCat("test-", NewSlugId(), "/");
    options_ = options;
    auto store = S3BlobStore::Create(options, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  CurlResponse Upload(const PresignedRequest& put, CurlRequest request) {
    request.method = put.method;
    request.url = put.url;
    request.headers = put.headers;
    return Perform(request);
  }

  SystemClock clock_;
  S3BlobStoreOptions options_;
  std::unique_ptr<S3BlobStore> store_;
};

TEST_F(S3EndToEndTest, PresignedPutGetStatDelete) {
  constexpr uint64_t kSize = (5 << 20) + 17;
  std::string sha = PatternSha256(9, kSize);
  auto put = store_->PresignUpload(
      "t/0/public/build output.bin",
      {"application/x-tar", "", kSize, std::nullopt}, absl::Minutes(5));
  ASSERT_TRUE(put.ok()) << put.status();
  CurlRequest upload;
  upload.upload_size = kSize;
  upload.pattern_seed = 9;
  CurlResponse uploaded = Upload(*put, upload);
  ASSERT_EQ(uploaded.status, 200) << uploaded.error << uploaded.body;

  auto url =
      store_->PresignDownload("t/0/public/build output.bin", absl::Minutes(5));
  ASSERT_TRUE(url.ok());
  CurlRequest download;
  download.url = *url;
  download.keep_body_bytes = 0;
  CurlResponse got = Perform(download);
  ASSERT_EQ(got.status, 200) << got.error;
  EXPECT_EQ(got.body_bytes, kSize);
  EXPECT_EQ(got.body_sha256, sha);

  auto stat = store_->Stat("t/0/public/build output.bin");
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->size, kSize);
  EXPECT_EQ(stat->content_type, "application/x-tar");

  EXPECT_TRUE(store_->Delete("t/0/public/build output.bin").ok());
  EXPECT_TRUE(HasErrorCode(store_->Stat("t/0/public/build output.bin").status(),
                           ErrorCode::kResourceNotFound));
  EXPECT_TRUE(store_->Delete("t/0/public/build output.bin").ok());
  EXPECT_EQ(Perform(download).status, 404);
}

TEST_F(S3EndToEndTest, ContentEncodingAndChecksumHeadersAreAccepted) {
  std::string data = PatternString(4, 4096);
  auto put = store_->PresignUpload(
      "logs/live.log",
      {"text/plain", "gzip", data.size(), HexEncode(Sha256Of(data))},
      absl::Minutes(5));
  ASSERT_TRUE(put.ok());
  CurlRequest upload;
  upload.body = data;
  CurlResponse uploaded = Upload(*put, upload);
  ASSERT_EQ(uploaded.status, 200) << uploaded.error << uploaded.body;

  CurlRequest download;
  download.url = *store_->PresignDownload("logs/live.log", absl::Minutes(5));
  CurlResponse got = Perform(download);
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body, data);
  EXPECT_EQ(got.headers["content-encoding"], "gzip");
  auto stat = store_->Stat("logs/live.log");
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->size, data.size());
  EXPECT_EQ(stat->content_encoding, "gzip");
  // A server that verified the checksum reports it; one that ignores it
  // (s3rver) reports none, and Stat must not invent one.
  if (stat->sha256) EXPECT_EQ(*stat->sha256, HexEncode(Sha256Of(data)));
  EXPECT_TRUE(store_->Delete("logs/live.log").ok());
}

TEST_F(S3EndToEndTest, ExpiredPresignedUrlIsRefused) {
  FakeClock past(absl::Now() - absl::Hours(2));
  auto old_store = S3BlobStore::Create(options_, &past);
  ASSERT_TRUE(old_store.ok());
  auto put = (*old_store)->PresignUpload("k", {"text/plain"}, absl::Minutes(1));
  ASSERT_TRUE(put.ok());
  CurlRequest upload;
  upload.body = "late";
  CurlResponse late = Upload(*put, upload);
  EXPECT_EQ(late.status, 403) << late.body;
  EXPECT_NE(late.body.find("expired"), std::string::npos) << late.body;
  EXPECT_TRUE(
      HasErrorCode(store_->Stat("k").status(), ErrorCode::kResourceNotFound));
}

// A source producing `size` bytes of the test pattern in odd-sized pieces.
BlobSource PatternSource(uint64_t seed, uint64_t size) {
  return [seed, size, offset = uint64_t{0}](
             char* buffer, size_t room) mutable -> absl::StatusOr<size_t> {
    size_t n = std::min<uint64_t>({room, size - offset, 100000});
    ::drover::queue::blobstore::testing::FillPattern(seed, offset, buffer, n);
    offset += n;
    return n;
  };
}

TEST_F(S3EndToEndTest, ServerSidePutAndGetStream) {
  constexpr uint64_t kSize = (3 << 20) + 5;
  std::string sha = PatternSha256(11, kSize);
  for (bool known_length : {true, false}) {
    SCOPED_TRACE(known_length ? "length given" : "length unknown");
    UploadOptions options{"text/plain", "", std::nullopt, std::nullopt};
    if (known_length) options.content_length = kSize;
    auto info = store_->Put("logs/live.log", options, PatternSource(11, kSize));
    ASSERT_TRUE(info.ok()) << info.status();
    EXPECT_EQ(info->size, kSize);
    EXPECT_EQ(info->sha256, sha);
    EXPECT_EQ(store_->Stat("logs/live.log")->size, kSize);

    Sha256 hasher;
    uint64_t received = 0;
    absl::Status got =
        store_->Get("logs/live.log", [&](const char* data, size_t size) {
          hasher.Update(data, size);
          received += size;
          return absl::OkStatus();
        });
    ASSERT_TRUE(got.ok()) << got;
    EXPECT_EQ(received, kSize);
    EXPECT_EQ(HexEncode(hasher.Finish()), sha);
    ASSERT_TRUE(store_->Delete("logs/live.log").ok());
  }
}

TEST_F(S3EndToEndTest, ServerSidePutRefusesBrokenPromises) {
  auto too_short =
      store_->Put("short", {"text/plain", "", 1000}, PatternSource(1, 10));
  EXPECT_EQ(GetErrorInfo(too_short.status()).details["field"], "content_length")
      << too_short.status();
  auto too_long =
      store_->Put("long", {"text/plain", "", 10}, PatternSource(1, 1000));
  EXPECT_TRUE(HasErrorCode(too_long.status(), ErrorCode::kInputTooLarge))
      << too_long.status();
  auto wrong_hash = store_->Put(
      "hash", {"text/plain", "", std::nullopt, HexEncode(Sha256Of("other"))},
      PatternSource(1, 10));
  EXPECT_EQ(GetErrorInfo(wrong_hash.status()).details["field"], "sha256");
  for (const char* key : {"short", "long", "hash"}) {
    EXPECT_TRUE(
        HasErrorCode(store_->Stat(key).status(), ErrorCode::kResourceNotFound))
        << key;
  }
  absl::Status stopped = store_->Get(
      "missing", [](const char*, size_t) { return absl::OkStatus(); });
  EXPECT_TRUE(HasErrorCode(stopped, ErrorCode::kResourceNotFound)) << stopped;
}

TEST_F(S3EndToEndTest, StatOfMissingKeyIsNotFound) {
  EXPECT_TRUE(HasErrorCode(store_->Stat("never/uploaded").status(),
                           ErrorCode::kResourceNotFound));
}

TEST(S3UnreachableTest, StatReportsTheEndpoint) {
  FakeClock clock;
  S3BlobStoreOptions options = AwsExampleOptions();
  options.endpoint = "http://127.0.0.1:1";  // nothing listens on port 1
  options.path_style = true;
  options.request_timeout = absl::Seconds(5);
  auto store = S3BlobStore::Create(options, &clock);
  ASSERT_TRUE(store.ok());
  absl::Status status = (*store)->Stat("k").status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInternalError)) << status;
  EXPECT_EQ(GetErrorInfo(status).details["endpoint"], "http://127.0.0.1:1");
}

}  // namespace
}  // namespace drover::queue::blobstore::s3
