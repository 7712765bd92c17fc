// ArtifactsClient and the artifact transfers against a real queue
// (PostgreSQL, filesystem blob store over HTTP, Artifacts over gRPC).
#include "client/artifacts_client.h"

#include <fstream>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "queue/artifacts/testing/artifacts_test_env.h"

namespace drover::client {
namespace {

std::filesystem::path TempFile(const std::string& content) {
  std::random_device rd;
  auto path = std::filesystem::temp_directory_path() /
              absl::StrCat("drover-client-test-", rd());
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string RandomBytes(size_t n) {
  std::mt19937 rng(42);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

TEST(GzipTest, FileRoundTripsThroughTheDecoderInAnyChunking) {
  std::string text;
  for (int i = 0; i < 20000; ++i) absl::StrAppend(&text, "line ", i, "\n");
  auto source = TempFile(text);
  auto gz = source;
  gz += ".gz";
  ASSERT_TRUE(GzipFile(source, gz).ok());
  std::ifstream in(gz, std::ios::binary);
  std::string compressed((std::istreambuf_iterator<char>(in)),
                         std::istreambuf_iterator<char>());
  EXPECT_LT(compressed.size(), text.size() / 4);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{4096}, compressed.size()}) {
    std::string decoded;
    GzipDecoder decoder([&](std::string_view bytes) {
      decoded.append(bytes);
      return absl::OkStatus();
    });
    for (size_t pos = 0; pos < compressed.size(); pos += chunk) {
      ASSERT_TRUE(
          decoder.Feed(std::string_view(compressed).substr(pos, chunk)).ok());
    }
    ASSERT_TRUE(decoder.Finish().ok());
    EXPECT_EQ(decoded, text) << "chunk " << chunk;
  }
  std::filesystem::remove(source);
  std::filesystem::remove(gz);
}

TEST(GzipTest, CorruptAndTruncatedInputIsRefused) {
  GzipDecoder corrupt([](std::string_view) { return absl::OkStatus(); });
  absl::Status status = corrupt.Feed("definitely not gzip");
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError));
  EXPECT_EQ(GetErrorInfo(status).details["field"], "gzip");

  auto source = TempFile(std::string(10000, 'z'));
  auto gz = source;
  gz += ".gz";
  ASSERT_TRUE(GzipFile(source, gz).ok());
  std::ifstream in(gz, std::ios::binary);
  std::string compressed((std::istreambuf_iterator<char>(in)),
                         std::istreambuf_iterator<char>());
  GzipDecoder truncated([](std::string_view) { return absl::OkStatus(); });
  ASSERT_TRUE(truncated.Feed(compressed.substr(0, compressed.size() / 2)).ok());
  EXPECT_FALSE(truncated.Finish().ok());
  std::filesystem::remove(source);
  std::filesystem::remove(gz);
}

TEST(TaskCredentialsTest, PrefersTheCertificate) {
  Credentials c = TaskCredentials("task-client/x", "token", "cert");
  EXPECT_EQ(c.certificate, "cert");
  EXPECT_TRUE(c.access_token.empty());
  EXPECT_TRUE(ValidateCredentials(c).ok());
  Credentials t = TaskCredentials("task-client/x", "token", "");
  EXPECT_EQ(t.access_token, "token");
  EXPECT_TRUE(ValidateCredentials(t).ok());
}

class TransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = queue::artifacts::testing::ArtifactsTestEnv::Create();
    if (env.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << "PostgreSQL is unavailable: " << env.status();
    }
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    auto task = env_->StartRunningTask();
    ASSERT_TRUE(task.ok());
    task_id_ = *task;
    auto connection = Connection::Create(
        {.url = env_->grpc_target(), .ca_file = "", .credentials = {}});
    ASSERT_TRUE(connection.ok());
    client_ = std::make_unique<ArtifactsClient>(*connection);
  }

  std::unique_ptr<queue::artifacts::testing::ArtifactsTestEnv> env_;
  std::unique_ptr<ArtifactsClient> client_;
  std::string task_id_;
};

TEST_F(TransferTest, UploadThenDownloadWholeFromAnOffsetAndDecoded) {
  const std::string content = RandomBytes(3 << 20);
  auto file = TempFile(content);
  BlobArtifactUpload upload;
  upload.task_id = task_id_;
  upload.name = "public/blob.bin";
  upload.content_type = "application/octet-stream";
  upload.file = file;
  int64_t last_progress = 0;
  auto artifact = UploadBlobArtifact(*client_, upload, {},
                                     [&](int64_t done, int64_t total) {
                                       EXPECT_EQ(total, 3 << 20);
                                       last_progress = done;
                                     });
  ASSERT_TRUE(artifact.ok()) << artifact.status();
  EXPECT_TRUE(artifact->present());
  EXPECT_EQ(last_progress, 3 << 20);
  // Uploading again is a no-op: the same artifact, already present.
  ASSERT_TRUE(UploadBlobArtifact(*client_, upload).ok());

  v1::ArtifactRequest get;
  get.set_task_id(task_id_);
  get.set_name("public/blob.bin");
  auto got = client_->GetArtifact(get);
  ASSERT_TRUE(got.ok());
  std::string whole;
  auto info = Download(
      got->url(), 0,
      [&](std::string_view b) {
        whole.append(b);
        return absl::OkStatus();
      },
      true);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(whole, content);
  std::string tail;
  ASSERT_TRUE(Download(
                  got->url(), 1000000,
                  [&](std::string_view b) {
                    tail.append(b);
                    return absl::OkStatus();
                  },
                  true)
                  .ok());
  EXPECT_EQ(tail, content.substr(1000000));

  // A gzip-encoded text blob comes back decoded.
  std::string text;
  for (int i = 0; i < 5000; ++i) absl::StrAppend(&text, "row ", i, "\n");
  auto text_file = TempFile(text);
  auto gz = text_file;
  gz += ".gz";
  ASSERT_TRUE(GzipFile(text_file, gz).ok());
  upload.name = "public/rows.txt";
  upload.content_type = "text/plain";
  upload.content_encoding = "gzip";
  upload.file = gz;
  ASSERT_TRUE(UploadBlobArtifact(*client_, upload).ok());
  get.set_name("public/rows.txt");
  got = client_->GetArtifact(get);
  ASSERT_TRUE(got.ok());
  std::string decoded;
  auto decoded_info = Download(
      got->url(), 0,
      [&](std::string_view b) {
        decoded.append(b);
        return absl::OkStatus();
      },
      true);
  ASSERT_TRUE(decoded_info.ok()) << decoded_info.status();
  EXPECT_EQ(decoded_info->content_encoding, "gzip");
  EXPECT_EQ(decoded, text);
  for (auto& f : {file, text_file, gz}) std::filesystem::remove(f);
}

TEST_F(TransferTest, RefusalsComeBackAsTheirErrors) {
  EXPECT_TRUE(
      HasErrorCode(Download(
                       env_->http_base_url() + "/blobs/nope?expires=1&sig=x", 0,
                       [](std::string_view) { return absl::OkStatus(); }, false)
                       .status(),
                   ErrorCode::kAuthenticationFailed));
  auto missing =
      env_->blobs().PresignDownload(task_id_ + "/0/nothing", absl::Minutes(1));
  ASSERT_TRUE(missing.ok());
  EXPECT_TRUE(HasErrorCode(
      Download(
          *missing, 0, [](std::string_view) { return absl::OkStatus(); }, false)
          .status(),
      ErrorCode::kResourceNotFound));
  TransferOptions quick;
  quick.max_attempts = 2;
  quick.initial_backoff = absl::Milliseconds(10);
  absl::Status unreachable =
      Download(
          "http://127.0.0.1:1/x", 0,
          [](std::string_view) { return absl::OkStatus(); }, false, quick)
          .status();
  EXPECT_EQ(unreachable.code(), absl::StatusCode::kUnavailable) << unreachable;
}

TEST_F(TransferTest, TailLogDeliversEveryByteOnce) {
  int64_t offset = 0;
  std::string expected;
  for (int i = 0; i < 5; ++i) {
    v1::AppendLogRequest append;
    append.set_task_id(task_id_);
    append.set_offset(offset);
    append.set_data(absl::StrCat("chunk ", i, "\n"));
    auto appended = client_->AppendLog(append);
    ASSERT_TRUE(appended.ok()) << appended.status();
    offset = appended->length();
    expected += append.data();
  }
  ASSERT_TRUE(env_->ResolveRun(task_id_, 0).ok());
  v1::TailLogRequest tail;
  tail.set_task_id(task_id_);
  tail.set_offset(3);
  std::string got;
  auto result = client_->TailLog(tail, [&](std::string_view b) {
    got.append(b);
    return absl::OkStatus();
  });
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(got, expected.substr(3));
  EXPECT_EQ(result->end_offset, offset);
  EXPECT_EQ(result->run_id, 0);
}

}  // namespace
}  // namespace drover::client
