// The filesystem store's HTTP routes over real HTTP on 127.0.0.1, driven by
// libcurl: round trips, refusals, and a 200 MB upload with bounded memory.
#include "queue/blobstore/filesystem/http_handlers.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "queue/blobstore/sha256.h"
#include "queue/blobstore/testing/curl_client.h"

namespace drover::queue::blobstore::filesystem {
namespace {

namespace fs = std::filesystem;
using ::drover::queue::blobstore::testing::CurlRequest;
using ::drover::queue::blobstore::testing::CurlResponse;
using ::drover::queue::blobstore::testing::CurrentRssBytes;
using ::drover::queue::blobstore::testing::PatternSha256;
using ::drover::queue::blobstore::testing::PatternString;
using ::drover::queue::blobstore::testing::Perform;

constexpr uint64_t kMiB = 1 << 20;

double ProcessCpuSeconds() {
  struct rusage usage {};
  ::getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

class HttpHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = drover::testing::MakeTempDir("drover-fshttp-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = *dir;

    server_ = std::make_unique<httplib::Server>();
    port_ = server_->bind_to_any_port("127.0.0.1");
    ASSERT_GT(port_, 0);
    FilesystemBlobStoreOptions options;
    options.root = dir_ / "blobs";
    options.base_url = absl::StrCat("http://127.0.0.1:", port_);
    options.signing_key = std::string(32, 'k');
    auto store = FilesystemBlobStore::Create(options, &clock_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    RegisterHttpHandlers(*server_, *store_);
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) std::this_thread::yield();
  }

  void TearDown() override {
    if (server_) server_->stop();
    if (thread_.joinable()) thread_.join();
    server_.reset();
    fs::remove_all(dir_);
  }

  std::string Url(std::string_view path_and_query) const {
    return absl::StrCat("http://127.0.0.1:", port_,
                        std::string(path_and_query));
  }

  CurlResponse Upload(const PresignedRequest& presigned, std::string body,
                      bool no_expect = false) {
    CurlRequest request;
    request.method = presigned.method;
    request.url = presigned.url;
    request.headers = presigned.headers;
    request.body = std::move(body);
    request.no_expect = no_expect;
    return Perform(request);
  }

  CurlResponse Get(const std::string& url,
                   std::map<std::string, std::string> headers = {}) {
    CurlRequest request;
    request.url = url;
    request.headers = std::move(headers);
    return Perform(request);
  }

  static ErrorCode CodeOf(const CurlResponse& response) {
    auto json = nlohmann::json::parse(response.body, nullptr, false);
    if (!json.is_object()) return ErrorCode::kInternalError;
    return ErrorCodeFromName(json.value("code", ""))
        .value_or(ErrorCode::kInternalError);
  }

  static std::string DetailOf(const CurlResponse& response,
                              const std::string& name) {
    auto json = nlohmann::json::parse(response.body, nullptr, false);
    if (!json.is_object() || !json.contains("details")) return "";
    return json["details"].value(name, "");
  }

  FakeClock clock_{absl::Now()};
  fs::path dir_;
  std::unique_ptr<FilesystemBlobStore> store_;  // outlives server_
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

TEST_F(HttpHandlersTest, RoundTripIsByteIdentical) {
  std::string data = PatternString(7, 3 * kMiB + 123);
  std::string sha = HexEncode(Sha256Of(data));
  auto put = store_->PresignUpload(
      "task/0/public/build output.bin",
      {"application/octet-stream", "", data.size(), sha}, absl::Minutes(5));
  ASSERT_TRUE(put.ok()) << put.status();
  CurlResponse uploaded = Upload(*put, data);
  ASSERT_EQ(uploaded.status, 200) << uploaded.error << uploaded.body;
  auto answer = nlohmann::json::parse(uploaded.body);
  EXPECT_EQ(answer["size"], data.size());
  EXPECT_EQ(answer["sha256"], sha);

  auto stat = store_->Stat("task/0/public/build output.bin");
  ASSERT_TRUE(stat.ok()) << stat.status();
  EXPECT_EQ(stat->size, data.size());
  EXPECT_EQ(stat->sha256, sha);

  auto url = store_->PresignDownload("task/0/public/build output.bin",
                                     absl::Minutes(5));
  ASSERT_TRUE(url.ok());
  CurlResponse got = Get(*url);
  ASSERT_EQ(got.status, 200) << got.error;
  EXPECT_EQ(got.body_bytes, data.size());
  EXPECT_EQ(got.body_sha256, sha);
  EXPECT_EQ(got.headers["content-type"], "application/octet-stream");
  EXPECT_EQ(got.headers["x-drover-sha256"], sha);

  CurlRequest head;
  head.method = "HEAD";
  head.url = *url;
  CurlResponse headed = Perform(head);
  EXPECT_EQ(headed.status, 200);
  EXPECT_EQ(headed.headers["content-length"], absl::StrCat(data.size()));
  EXPECT_EQ(headed.body_bytes, 0u);
}

TEST_F(HttpHandlersTest, EncodedBlobIsStoredAndServedAsSent) {
  // Not real gzip: the store must neither decode nor re-encode.
  std::string data = "\x1f\x8b pretend-compressed \x00\xff bytes";
  auto put = store_->PresignUpload(
      "logs/live.log",
      {"text/plain; charset=utf-8", "gzip", std::nullopt, std::nullopt},
      absl::Minutes(5));
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put->headers.count("Content-Encoding"), 0u);
  CurlResponse uploaded = Upload(*put, data);
  ASSERT_EQ(uploaded.status, 200) << uploaded.body;
  CurlResponse got =
      Get(*store_->PresignDownload("logs/live.log", absl::Minutes(5)));
  ASSERT_EQ(got.status, 200);
  EXPECT_EQ(got.body, data);
  EXPECT_EQ(got.headers["content-encoding"], "gzip");
  EXPECT_EQ(got.headers["content-type"], "text/plain; charset=utf-8");
}

TEST_F(HttpHandlersTest, EmptyBlobAndByteRange) {
  auto put = store_->PresignUpload("empty", {"text/plain"}, absl::Minutes(5));
  ASSERT_EQ(Upload(*put, "").status, 200);
  CurlResponse empty = Get(*store_->PresignDownload("empty", absl::Minutes(5)));
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.body_bytes, 0u);

  std::string data = PatternString(3, 1000);
  put = store_->PresignUpload("ranged", {"text/plain"}, absl::Minutes(5));
  ASSERT_EQ(Upload(*put, data).status, 200);
  CurlResponse part = Get(*store_->PresignDownload("ranged", absl::Minutes(5)),
                          {{"Range", "bytes=100-199"}});
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, data.substr(100, 100));
}

TEST_F(HttpHandlersTest, MissingBlobIs404) {
  CurlResponse got = Get(*store_->PresignDownload("nope", absl::Minutes(5)));
  EXPECT_EQ(got.status, 404);
  EXPECT_EQ(CodeOf(got), ErrorCode::kResourceNotFound);
}

TEST_F(HttpHandlersTest, ExpiredUrlsAreRefused) {
  auto put = store_->PresignUpload("k", {"text/plain"}, absl::Seconds(60));
  ASSERT_TRUE(put.ok());
  ASSERT_EQ(Upload(*put, "before expiry").status, 200);
  auto get = store_->PresignDownload("k", absl::Seconds(60));
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(Get(*get).status, 200);

  clock_.Advance(absl::Seconds(61));
  CurlResponse late_get = Get(*get);
  EXPECT_EQ(late_get.status, 403);
  EXPECT_EQ(CodeOf(late_get), ErrorCode::kResourceExpired);
  EXPECT_EQ(DetailOf(late_get, "field"), "expires");

  // With Expect: 100-continue (refused before the body) and without it.
  for (bool no_expect : {false, true}) {
    CurlResponse late_put = Upload(*put, "after expiry", no_expect);
    EXPECT_EQ(late_put.status, 403) << late_put.error;
    EXPECT_EQ(CodeOf(late_put), ErrorCode::kResourceExpired);
  }
  auto stat = store_->Stat("k");
  ASSERT_TRUE(stat.ok());
  EXPECT_EQ(stat->size, std::string("before expiry").size());
}

TEST_F(HttpHandlersTest, TamperedUrlsAreRefused) {
  auto put = store_->PresignUpload("a/b", {"text/plain", "", 5, std::nullopt},
                                   absl::Minutes(5));
  ASSERT_TRUE(put.ok());
  auto get = store_->PresignDownload("a/b", absl::Minutes(5));
  ASSERT_TRUE(get.ok());

  // Changes one character in the middle of the signature (the last one
  // carries padding bits).
  auto flip_last = [](std::string url) {
    char& c = url[url.size() - 10];
    c = c == 'A' ? 'B' : 'A';
    return url;
  };
  std::vector<std::pair<std::string, std::string>> forged_gets = {
      {"signature", flip_last(*get)},
      {"other key",
       absl::StrReplaceAll(*get, {{"/blobs/a/b?", "/blobs/a/c?"}})},
      {"later expiry", absl::StrReplaceAll(*get, {{"expires=", "expires=9"}})},
      {"no signature", get->substr(0, get->find("&sig="))},
      {"upload url", put->url},
  };
  for (const auto& [what, url] : forged_gets) {
    CurlResponse response = Get(url);
    EXPECT_EQ(response.status, 403) << what;
    EXPECT_EQ(CodeOf(response), ErrorCode::kAuthenticationFailed) << what;
  }

  PresignedRequest forged = *put;
  forged.url = absl::StrReplaceAll(put->url, {{"len=5", "len=6"}});
  CurlResponse longer = Upload(forged, "sixsix");
  EXPECT_EQ(longer.status, 403);
  EXPECT_EQ(CodeOf(longer), ErrorCode::kAuthenticationFailed);
  forged.url = absl::StrReplaceAll(put->url, {{"ct=text", "ct=image"}});
  EXPECT_EQ(Upload(forged, "12345").status, 403);
  forged.url = *get;  // a download URL does not allow uploads
  EXPECT_EQ(Upload(forged, "12345").status, 403);

  EXPECT_TRUE(
      HasErrorCode(store_->Stat("a/b").status(), ErrorCode::kResourceNotFound));
  EXPECT_EQ(Upload(*put, "12345").status, 200);
}

TEST_F(HttpHandlersTest, TraversalKeysAreRefused) {
  std::ofstream(dir_ / "secret") << "secret";
  // A signature from the store for some key, so only the key is at fault.
  auto get = store_->PresignDownload("secret", absl::Minutes(5));
  ASSERT_TRUE(get.ok());
  std::string query = get->substr(get->find('?'));
  for (const std::string path :
       {"/blobs/../secret", "/blobs/../../secret", "/blobs/%2E%2E/secret",
        "/blobs/a/%2e%2e/%2e%2e/%2e%2e/secret", "/blobs//etc/passwd",
        "/blobs/a%5C..%5Csecret"}) {
    for (const char* method : {"GET", "PUT"}) {
      CurlRequest request;
      request.method = method;
      request.url = Url(path + query);
      request.path_as_is = true;
      if (request.method == "PUT") request.body = "overwrite";
      CurlResponse response = Perform(request);
      EXPECT_EQ(response.status, 400) << method << " " << path;
      EXPECT_EQ(CodeOf(response), ErrorCode::kInputError) << path;
      EXPECT_EQ(DetailOf(response, "field"), "key") << path;
    }
  }
  std::string secret;
  std::ifstream(dir_ / "secret") >> secret;
  EXPECT_EQ(secret, "secret");
  EXPECT_FALSE(fs::exists(dir_ / "blobs" / "secret"));
}

TEST_F(HttpHandlersTest, UploadsThatBreakTheirPromisesStoreNothing) {
  std::string data = "exactly twenty bytes";
  auto sized = store_->PresignUpload("k", {"text/plain", "", 10, std::nullopt},
                                     absl::Minutes(5));
  CurlResponse too_long = Upload(*sized, data);
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(DetailOf(too_long, "field"), "Content-Length");

  auto hashed = store_->PresignUpload(
      "k", {"text/plain", "", std::nullopt, HexEncode(Sha256Of("other"))},
      absl::Minutes(5));
  CurlResponse wrong_bytes = Upload(*hashed, data);
  EXPECT_EQ(wrong_bytes.status, 400);
  EXPECT_EQ(DetailOf(wrong_bytes, "field"), "sha256");

  auto plain = store_->PresignUpload("k", {"text/plain"}, absl::Minutes(5));
  PresignedRequest encoded = *plain;
  encoded.headers["Content-Encoding"] = "gzip";
  CurlResponse decoded = Upload(encoded, data);
  EXPECT_EQ(decoded.status, 400);
  EXPECT_EQ(DetailOf(decoded, "field"), "Content-Encoding");

  EXPECT_TRUE(
      HasErrorCode(store_->Stat("k").status(), ErrorCode::kResourceNotFound));
}

TEST_F(HttpHandlersTest, RefusedBodyIsNeitherReadNorBuffered) {
  // A forged upload that sends its 64 MB body without waiting for 100
  // Continue: the server answers 403 and hangs up instead of reading it,
  // so the sender sees the 403 or a broken pipe, never a finished upload.
  auto put = store_->PresignUpload("k", {"text/plain"}, absl::Minutes(5));
  ASSERT_TRUE(put.ok());
  uint64_t before = CurrentRssBytes();
  CurlRequest request;
  request.method = "PUT";
  request.url = put->url + "x";
  request.headers = put->headers;
  request.upload_size = 64 * kMiB;
  request.no_expect = true;
  CurlResponse response = Perform(request);
  EXPECT_TRUE(response.status == 403 || !response.error.empty())
      << response.status;
  EXPECT_LT(response.uploaded_bytes, 64 * kMiB);
  EXPECT_LT(CurrentRssBytes(), before + 32 * kMiB);
  EXPECT_TRUE(
      HasErrorCode(store_->Stat("k").status(), ErrorCode::kResourceNotFound));
  // A small refused body is read and dropped: a clean 403.
  request.upload_size = 1000;
  response = Perform(request);
  EXPECT_EQ(response.status, 403) << response.error;
  EXPECT_EQ(CodeOf(response), ErrorCode::kAuthenticationFailed);
  // And the listener still serves.
  EXPECT_EQ(Upload(*put, "fine").status, 200);
}

TEST_F(HttpHandlersTest, LargeUploadStreamsWithBoundedMemory) {
  constexpr uint64_t kSize = 200 * kMiB;
  constexpr uint64_t kSeed = 42;
  std::string sha = PatternSha256(kSeed, kSize);
  auto put = store_->PresignUpload("big/blob.bin",
                                   {"application/octet-stream", "", kSize, sha},
                                   absl::Minutes(5));
  ASSERT_TRUE(put.ok());

  uint64_t baseline = CurrentRssBytes();
  uint64_t peak = baseline;
  double cpu_before = ProcessCpuSeconds();
  CurlRequest upload;
  upload.method = "PUT";
  upload.url = put->url;
  upload.headers = put->headers;
  upload.upload_size = kSize;
  upload.pattern_seed = kSeed;
  upload.on_progress = [&peak] { peak = std::max(peak, CurrentRssBytes()); };
  CurlResponse uploaded = Perform(upload);
  ASSERT_EQ(uploaded.status, 200) << uploaded.error << uploaded.body;
  peak = std::max(peak, CurrentRssBytes());
  double cpu = ProcessCpuSeconds() - cpu_before;
  double mib = kSize / static_cast<double>(kMiB);
  // Wall-clock speed depends on what else the machine runs; CPU seconds
  // (client and server together, both in this process) do not.
  std::printf(
      "[ metrics  ] upload 200 MiB: %.2f s wall = %.1f MiB/s; %.2f CPU s "
      "(client+server) = %.1f MiB per CPU-second; RSS growth %.1f MiB\n",
      uploaded.seconds, mib / uploaded.seconds, cpu, mib / cpu,
      (peak - baseline) / static_cast<double>(kMiB));
  RecordProperty("upload_mib_per_s", static_cast<int>(mib / uploaded.seconds));
  RecordProperty("upload_mib_per_cpu_s", static_cast<int>(mib / cpu));
  // Client and server share this process: a buffered blob would show up
  // as ~200 MiB here.
  EXPECT_LT(peak - baseline, 48 * kMiB);
  EXPECT_EQ(store_->Stat("big/blob.bin")->sha256, sha);

  CurlRequest download;
  download.url = *store_->PresignDownload("big/blob.bin", absl::Minutes(5));
  download.keep_body_bytes = 0;
  download.on_progress = upload.on_progress;
  cpu_before = ProcessCpuSeconds();
  CurlResponse got = Perform(download);
  cpu = ProcessCpuSeconds() - cpu_before;
  ASSERT_EQ(got.status, 200) << got.error;
  EXPECT_EQ(got.body_bytes, kSize);
  EXPECT_EQ(got.body_sha256, sha);
  std::printf(
      "[ metrics  ] download 200 MiB: %.2f s wall = %.1f MiB/s; %.2f CPU s "
      "= %.1f MiB per CPU-second\n",
      got.seconds, mib / got.seconds, cpu, mib / cpu);
  EXPECT_LT(peak - baseline, 48 * kMiB);
}

}  // namespace
}  // namespace drover::queue::blobstore::filesystem
