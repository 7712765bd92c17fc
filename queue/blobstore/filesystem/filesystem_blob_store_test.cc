#include "queue/blobstore/filesystem/filesystem_blob_store.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "queue/blobstore/sha256.h"
#include "queue/blobstore/testing/curl_client.h"

namespace drover::queue::blobstore::filesystem {
namespace {

namespace fs = std::filesystem;
using ::drover::queue::blobstore::testing::PatternString;

constexpr char kKey[] = "0123456789abcdef0123456789abcdef";

fs::path MakeTempDir() {
  auto dir = drover::testing::MakeTempDir("drover-fsblob-");
  EXPECT_TRUE(dir.ok()) << dir.status();
  return dir.ok() ? *dir : fs::path();
}

class FilesystemBlobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    FilesystemBlobStoreOptions options;
    options.root = dir_ / "blobs";
    options.base_url = "http://127.0.0.1:1";
    options.signing_key = kKey;
    auto store = FilesystemBlobStore::Create(options, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  void TearDown() override { fs::remove_all(dir_); }

  absl::StatusOr<BlobInfo> Put(std::string_view key, const std::string& data,
                               UploadOptions options = {"text/plain"}) {
    DROVER_ASSIGN_OR_RETURN(auto writer, store_->OpenForWrite(key, options));
    DROVER_RETURN_IF_ERROR(writer->Write(data.data(), data.size()));
    return writer->Commit();
  }

  std::string Read(std::string_view key) {
    auto reader = store_->OpenForRead(key);
    EXPECT_TRUE(reader.ok()) << reader.status();
    if (!reader.ok()) return "";
    std::string out((*reader)->info().size, '\0');
    auto n = (*reader)->ReadAt(0, out.data(), out.size());
    EXPECT_TRUE(n.ok());
    out.resize(n.ok() ? *n : 0);
    return out;
  }

  size_t FilesIn(const fs::path& dir) {
    size_t count = 0;
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (entry.is_regular_file()) ++count;
    }
    return count;
  }

  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  fs::path dir_;
  std::unique_ptr<FilesystemBlobStore> store_;
};

TEST_F(FilesystemBlobStoreTest, CreateRefusesBadOptions) {
  FilesystemBlobStoreOptions good;
  good.root = dir_ / "other";
  good.base_url = "http://127.0.0.1:8080";
  good.signing_key = kKey;
  ASSERT_TRUE(FilesystemBlobStore::Create(good, &clock_).ok());

  auto field_of = [this](const FilesystemBlobStoreOptions& options) {
    return GetErrorInfo(FilesystemBlobStore::Create(options, &clock_).status())
        .details["field"];
  };
  auto bad = good;
  bad.root.clear();
  EXPECT_EQ(field_of(bad), "root");
  bad = good;
  bad.base_url = "ftp://x";
  EXPECT_EQ(field_of(bad), "base_url");
  bad.base_url = "http://x/";
  EXPECT_EQ(field_of(bad), "base_url");
  bad = good;
  bad.url_prefix = "/Blobs/../x";
  EXPECT_EQ(field_of(bad), "url_prefix");
  bad = good;
  bad.signing_key = "short";
  EXPECT_EQ(field_of(bad), "signing_key");
}

TEST_F(FilesystemBlobStoreTest, WriteCommitReadStat) {
  std::string data = PatternString(1, 3 << 20);  // several write buffers
  auto info = Put("t/0/public/a.bin", data,
                  {"application/x-thing", "gzip", data.size(), std::nullopt});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, data.size());
  EXPECT_EQ(info->sha256, HexEncode(Sha256Of(data)));

  EXPECT_EQ(Read("t/0/public/a.bin"), data);
  auto stat = store_->Stat("t/0/public/a.bin");
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->size, data.size());
  EXPECT_EQ(stat->sha256, HexEncode(Sha256Of(data)));
  EXPECT_EQ(stat->content_type, "application/x-thing");
  EXPECT_EQ(stat->content_encoding, "gzip");
  EXPECT_EQ(FilesIn(dir_ / "blobs" / "tmp"), 0u);
}

TEST_F(FilesystemBlobStoreTest, EmptyBlob) {
  auto info = Put("empty", "");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->size, 0u);
  EXPECT_EQ(info->sha256, HexEncode(Sha256Of("")));
  EXPECT_EQ(store_->Stat("empty")->size, 0u);
}

TEST_F(FilesystemBlobStoreTest,
       NothingVisibleUntilCommitAndDroppedWriterLeavesNothing) {
  {
    auto writer = store_->OpenForWrite("k", {"text/plain"});
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write("partial", 7).ok());
    EXPECT_TRUE(
        HasErrorCode(store_->Stat("k").status(), ErrorCode::kResourceNotFound));
  }
  EXPECT_TRUE(
      HasErrorCode(store_->Stat("k").status(), ErrorCode::kResourceNotFound));
  EXPECT_EQ(FilesIn(dir_ / "blobs"), 0u);
}

TEST_F(FilesystemBlobStoreTest, ReplaceKeepsOpenReadersOnTheOldBytes) {
  ASSERT_TRUE(Put("k", "old bytes").ok());
  auto reader = store_->OpenForRead("k");
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(Put("k", "new").ok());
  char buffer[16];
  auto n = (*reader)->ReadAt(0, buffer, sizeof(buffer));
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buffer, *n), "old bytes");
  EXPECT_EQ(Read("k"), "new");
}

TEST_F(FilesystemBlobStoreTest, LengthAndDigestMismatchesStoreNothing) {
  auto too_long =
      store_->OpenForWrite("k", {"text/plain", "", 3, std::nullopt});
  ASSERT_TRUE(too_long.ok());
  absl::Status write = (*too_long)->Write("four", 4);
  EXPECT_TRUE(HasErrorCode(write, ErrorCode::kInputTooLarge)) << write;
  too_long->reset();  // abandons the upload

  auto too_short = Put("k", "ab", {"text/plain", "", 3, std::nullopt});
  EXPECT_TRUE(HasErrorCode(too_short.status(), ErrorCode::kInputError));
  EXPECT_EQ(GetErrorInfo(too_short.status()).details["field"],
            "content_length");

  auto wrong_hash = Put(
      "k", "abc", {"text/plain", "", std::nullopt, HexEncode(Sha256Of("abd"))});
  EXPECT_TRUE(HasErrorCode(wrong_hash.status(), ErrorCode::kInputError));
  EXPECT_EQ(GetErrorInfo(wrong_hash.status()).details["field"], "sha256");

  EXPECT_TRUE(
      HasErrorCode(store_->Stat("k").status(), ErrorCode::kResourceNotFound));
  EXPECT_EQ(FilesIn(dir_ / "blobs"), 0u);

  auto right =
      Put("k", "abc", {"text/plain", "", 3, HexEncode(Sha256Of("abc"))});
  EXPECT_TRUE(right.ok()) << right.status();
}

TEST_F(FilesystemBlobStoreTest, TraversalKeysRefusedEverywhere) {
  // Something outside the store a traversal would reach.
  std::ofstream(dir_ / "secret") << "secret";
  for (const std::string key : {"../secret", "../../secret", "a/../../secret",
                                "/etc/passwd", "..", "a/./b", "a//b"}) {
    SCOPED_TRACE(key);
    auto expect_key_error = [&](const absl::Status& status) {
      EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << status;
      EXPECT_EQ(GetErrorInfo(status).details["field"], "key");
    };
    expect_key_error(store_->OpenForWrite(key, {"text/plain"}).status());
    expect_key_error(store_->OpenForRead(key).status());
    expect_key_error(store_->Stat(key).status());
    expect_key_error(store_->Delete(key));
    expect_key_error(
        store_->PresignUpload(key, {"text/plain"}, absl::Minutes(1)).status());
    expect_key_error(store_->PresignDownload(key, absl::Minutes(1)).status());
  }
  std::string secret;
  std::ifstream(dir_ / "secret") >> secret;
  EXPECT_EQ(secret, "secret");
}

TEST_F(FilesystemBlobStoreTest, DeleteIsIdempotentAndPrunesDirectories) {
  ASSERT_TRUE(Put("a/b/c/d", "x").ok());
  ASSERT_TRUE(Put("a/keep", "y").ok());
  EXPECT_TRUE(store_->Delete("a/b/c/d").ok());
  EXPECT_TRUE(store_->Delete("a/b/c/d").ok());
  EXPECT_TRUE(store_->Delete("never/was").ok());
  EXPECT_TRUE(HasErrorCode(store_->Stat("a/b/c/d").status(),
                           ErrorCode::kResourceNotFound));
  EXPECT_FALSE(fs::exists(dir_ / "blobs" / "data" / "a" / "b"));
  EXPECT_FALSE(fs::exists(dir_ / "blobs" / "meta" / "a" / "b"));
  EXPECT_EQ(Read("a/keep"), "y");
  // A prefix of other keys is not a blob and deleting it keeps them.
  EXPECT_TRUE(store_->Delete("a").ok());
  EXPECT_EQ(Read("a/keep"), "y");
}

TEST_F(FilesystemBlobStoreTest, KeysThatCollideAsPathsConflict) {
  ASSERT_TRUE(Put("x", "file").ok());
  auto below = Put("x/y", "nested");
  EXPECT_TRUE(HasErrorCode(below.status(), ErrorCode::kRequestConflict))
      << below.status();
  ASSERT_TRUE(Put("p/q", "nested").ok());
  auto above = Put("p", "file");
  EXPECT_TRUE(HasErrorCode(above.status(), ErrorCode::kRequestConflict))
      << above.status();
  EXPECT_TRUE(
      HasErrorCode(store_->Stat("p").status(), ErrorCode::kResourceNotFound));
  EXPECT_EQ(FilesIn(dir_ / "blobs" / "tmp"), 0u);
}

TEST_F(FilesystemBlobStoreTest, StaleMetadataIsNotBelieved) {
  ASSERT_TRUE(Put("k", "first version").ok());
  // Simulate a crash between publishing new bytes and their metadata:
  // replace the data file behind the store's back.
  fs::path data = dir_ / "blobs" / "data" / "k";
  fs::remove(data);
  std::ofstream(data) << "second";
  auto stat = store_->Stat("k");
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->size, 6u);
  EXPECT_EQ(stat->sha256, HexEncode(Sha256Of("second")));
  EXPECT_EQ(stat->content_type, "application/octet-stream");
}

TEST_F(FilesystemBlobStoreTest, ConcurrentWritersToOneKeyNeverTear) {
  constexpr int kWriters = 8;
  std::vector<std::string> bodies;
  for (int i = 0; i < kWriters; ++i) {
    bodies.push_back(PatternString(100 + i, 256 * 1024 + i));
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kWriters; ++i) {
    threads.emplace_back([&, i] { EXPECT_TRUE(Put("same", bodies[i]).ok()); });
  }
  for (auto& t : threads) t.join();
  std::string stored = Read("same");
  EXPECT_NE(std::find(bodies.begin(), bodies.end(), stored), bodies.end());
  auto stat = store_->Stat("same");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->sha256, HexEncode(Sha256Of(stored)));
  EXPECT_EQ(FilesIn(dir_ / "blobs" / "tmp"), 0u);
}

TEST_F(FilesystemBlobStoreTest, SignedUrlsVerify) {
  auto put = store_->PresignUpload(
      "k/x y", {"text/plain", "gzip", 5, std::nullopt}, absl::Minutes(10));
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(put->method, "PUT");
  EXPECT_EQ(put->headers.at("Content-Type"), "text/plain");
  EXPECT_EQ(put->expires, clock_.Now() + absl::Minutes(10));
  EXPECT_TRUE(put->url.starts_with("http://127.0.0.1:1/blobs/k/x%20y?expires="))
      << put->url;

  SignedUrlParams params;
  params.expires = absl::StrCat(absl::ToUnixSeconds(put->expires));
  params.content_type = "text/plain";
  params.content_encoding = "gzip";
  params.length = "5";
  std::string sig = put->url.substr(put->url.find("&sig=") + 5);
  params.signature = sig;
  EXPECT_TRUE(store_->VerifySignedRequest("PUT", "k/x y", params).ok());

  auto expect_tampered = [&](std::string_view method, std::string_view key,
                             const SignedUrlParams& p) {
    absl::Status status = store_->VerifySignedRequest(method, key, p);
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kAuthenticationFailed))
        << status;
  };
  expect_tampered("GET", "k/x y", params);
  expect_tampered("PUT", "k/x z", params);
  for (std::string SignedUrlParams::*field :
       {&SignedUrlParams::expires, &SignedUrlParams::content_type,
        &SignedUrlParams::content_encoding, &SignedUrlParams::length,
        &SignedUrlParams::sha256, &SignedUrlParams::signature}) {
    SignedUrlParams changed = params;
    changed.*field += "0";
    expect_tampered("PUT", "k/x y", changed);
  }
  // Moving a byte between fields keeps the concatenation but not the MAC.
  SignedUrlParams shifted = params;
  shifted.content_type = "text/plaing";
  shifted.content_encoding = "zip";
  expect_tampered("PUT", "k/x y", shifted);
  SignedUrlParams unsigned_params = params;
  unsigned_params.signature.clear();
  expect_tampered("PUT", "k/x y", unsigned_params);

  clock_.Advance(absl::Minutes(10) + absl::Seconds(1));
  absl::Status expired = store_->VerifySignedRequest("PUT", "k/x y", params);
  EXPECT_TRUE(HasErrorCode(expired, ErrorCode::kResourceExpired)) << expired;
  EXPECT_EQ(GetErrorInfo(expired).details["field"], "expires");
}

TEST_F(FilesystemBlobStoreTest, AnotherServerKeyDoesNotVerify) {
  FilesystemBlobStoreOptions options = store_->options();
  options.signing_key = std::string(32, 'z');
  auto other = FilesystemBlobStore::Create(options, &clock_);
  ASSERT_TRUE(other.ok());
  auto url = (*other)->PresignDownload("k", absl::Minutes(1));
  ASSERT_TRUE(url.ok());
  SignedUrlParams params;
  params.expires =
      absl::StrCat(absl::ToUnixSeconds(clock_.Now() + absl::Minutes(1)));
  params.signature = url->substr(url->find("&sig=") + 5);
  EXPECT_TRUE((*other)->VerifySignedRequest("GET", "k", params).ok());
  EXPECT_TRUE(HasErrorCode(store_->VerifySignedRequest("GET", "k", params),
                           ErrorCode::kAuthenticationFailed));
}

TEST_F(FilesystemBlobStoreTest, PutAndGetStream) {
  std::string data = PatternString(5, (2 << 20) + 3);
  auto info = store_->Put("logs/live.log", {"text/plain", "", data.size()},
                          StringSource(data));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->sha256, HexEncode(Sha256Of(data)));
  std::string got;
  int chunks = 0;
  ASSERT_TRUE(store_
                  ->Get("logs/live.log",
                        [&](const char* bytes, size_t size) {
                          got.append(bytes, size);
                          ++chunks;
                          return absl::OkStatus();
                        })
                  .ok());
  EXPECT_EQ(got, data);
  EXPECT_GT(chunks, 1);  // streamed, not handed over whole

  absl::Status stop = store_->Get("logs/live.log", [](const char*, size_t) {
    return ConflictError("reader gave up");
  });
  EXPECT_TRUE(HasErrorCode(stop, ErrorCode::kRequestConflict)) << stop;
  EXPECT_TRUE(HasErrorCode(
      store_->Get("missing",
                  [](const char*, size_t) { return absl::OkStatus(); }),
      ErrorCode::kResourceNotFound));

  // A source breaking the promised length stores nothing.
  auto broken =
      store_->Put("short", {"text/plain", "", 10}, StringSource("abc"));
  EXPECT_EQ(GetErrorInfo(broken.status()).details["field"], "content_length");
  auto failing = store_->Put("failing", {"text/plain"},
                             [](char*, size_t) -> absl::StatusOr<size_t> {
                               return InternalError("source broke");
                             });
  EXPECT_TRUE(HasErrorCode(failing.status(), ErrorCode::kInternalError));
  EXPECT_TRUE(HasErrorCode(store_->Stat("short").status(),
                           ErrorCode::kResourceNotFound));
  EXPECT_TRUE(HasErrorCode(store_->Stat("failing").status(),
                           ErrorCode::kResourceNotFound));
  EXPECT_EQ(FilesIn(dir_ / "blobs" / "tmp"), 0u);
}

TEST_F(FilesystemBlobStoreTest, PresignRefusesBadInput) {
  auto field_of = [](const absl::Status& status) {
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << status;
    return GetErrorInfo(status).details["field"];
  };
  EXPECT_EQ(
      field_of(store_->PresignUpload("k", {"text/plain"}, absl::ZeroDuration())
                   .status()),
      "expires_in");
  EXPECT_EQ(
      field_of(store_->PresignUpload("k", {"text/plain"}, absl::Hours(24 * 8))
                   .status()),
      "expires_in");
  EXPECT_EQ(
      field_of(store_->PresignUpload("k", {""}, absl::Minutes(1)).status()),
      "content_type");
  EXPECT_EQ(field_of(store_->PresignDownload("k", absl::Seconds(-1)).status()),
            "expires_in");
}

}  // namespace
}  // namespace drover::queue::blobstore::filesystem
