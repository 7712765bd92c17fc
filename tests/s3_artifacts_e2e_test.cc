// Artifacts end to end on the S3 blob store: a real drover-queue (embedded
// PostgreSQL) whose blob store is a real S3-compatible server (s3rver,
// started by scripts/start-s3.sh, named by DROVER_TEST_S3_ENDPOINT), a
// real drover-worker (native engine, artifacts and livelog plugins) and
// the real `drover` CLI:
//   - the worker uploads through presigned S3 URLs; the CLI and the client
//     library download the bytes from S3, SHA-256 and size as recorded;
//   - ListArtifacts pages over 2,500 artifacts of one run with
//     continuation tokens: every artifact exactly once;
//   - the artifact-expiry resolver deletes an expired artifact's row and
//     its S3 object (its earlier download URL then answers 404).
// Skipped, saying why, without an S3 endpoint.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/artifacts_client.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/e2e_support.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using tests::support::Child;
using tests::support::Describe;
using tests::support::Eventually;
using tests::support::RandomBytes;
using tests::support::ReadFile;

class S3ArtifactsEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new tests::support::E2eSuite();
    const char* endpoint = std::getenv("DROVER_TEST_S3_ENDPOINT");
    endpoint_ = endpoint != nullptr ? endpoint : "";
    const char* bucket = std::getenv("DROVER_TEST_S3_BUCKET");
    // s3rver's built-in account: it checks the key id, not the signature
    // (the SigV4 code is checked against AWS's vectors in sigv4_test). A
    // key prefix of its own keeps this run's objects apart.
    suite_->Start(
        "drover-s3-e2e", DROVER_QUEUE_BINARY,
        {"--blob-store",
         "s3",
         "--s3-endpoint",
         endpoint_,
         "--s3-region",
         "us-east-1",
         "--s3-bucket",
         bucket != nullptr && *bucket != '\0' ? bucket : "drover-test",
         "--s3-access-key-id",
         "S3RVER",
         "--s3-secret-access-key",
         "S3RVER",
         "--s3-path-style=true",
         "--s3-key-prefix",
         absl::StrCat("e2e-", getpid(), "-", absl::ToUnixMillis(absl::Now()),
                      "/"),
         "--artifact-expiry-interval",
         "1s",
         "--claim-timeout",
         "60s",
         "--poll-timeout",
         "5s"},
        [] {
          return endpoint_.empty()
                     ? "no S3 endpoint configured: run scripts/start-s3.sh "
                       "and export DROVER_TEST_S3_ENDPOINT"
                     : "";
        });
  }

  static void TearDownTestSuite() {
    delete suite_;  // stops the queue
    suite_ = nullptr;
  }

  void SetUp() override {
    if (!suite_->skip_reason().empty()) GTEST_SKIP() << suite_->skip_reason();
    ASSERT_TRUE(suite_->setup_error().empty()) << suite_->setup_error();
    test_dir_ = tests::support::MakeTestDir(suite_->dir());
    pool_ = tests::support::PoolForTest("s3");
    worker_ = tests::support::StartWorker(
        suite_->queue(),
        tests::support::PluginWorkerOptions(DROVER_WORKER_BINARY, pool_,
                                            "s3-worker", 1),
        test_dir_);
  }

  void TearDown() override {
    if (worker_ != nullptr) {
      EXPECT_EQ(worker_->Terminate(absl::Seconds(60)), 0) << worker_->Output();
    }
  }

  // Waits for the task's own maxRunTime plus a minute for the upload and the
  // report: the worker's limit, not a guess of the machine's speed, bounds
  // the wait (a 2,500-file upload once took over 300 s on a loaded host).
  std::string RunTask(const json& payload) {
    const std::string task =
        tests::support::CreateTask(suite_->queue().client(), pool_, payload, 0,
                                   "s3 artifacts end-to-end test");
    const int max_run_time = payload.at("maxRunTime").get<int>();
    v1::TaskStatus status = tests::support::WaitResolved(
        suite_->queue().client(), task, absl::Seconds(max_run_time + 60));
    EXPECT_EQ(status.state(), "completed") << Describe(status) << "\n"
                                           << worker_->Output();
    return task;
  }

  client::ArtifactsClient Artifacts() {
    return client::ArtifactsClient(suite_->queue().connection());
  }

  static inline std::string endpoint_;
  static inline tests::support::E2eSuite* suite_ = nullptr;
  fs::path test_dir_;
  std::string pool_;
  std::unique_ptr<Child> worker_;
};

TEST_F(S3ArtifactsEndToEndTest, UploadedThroughS3AndDownloadedIdentical) {
  const std::string bytes = RandomBytes(4 * 1024 * 1024 + 3);
  const fs::path source = test_dir_ / "input.bin";
  std::ofstream(source, std::ios::binary) << bytes;
  auto expected = client::HashFile(source);
  ASSERT_TRUE(expected.ok()) << expected.status();

  const std::string task = RunTask(
      {{"command",
        json::array({"sh", "-c", "cp " + source.string() + " output.bin"})},
       {"maxRunTime", 120},
       {"artifacts",
        json::array({{{"type", "file"},
                      {"path", "output.bin"},
                      {"name", "public/output.bin"},
                      {"contentType", "application/octet-stream"}}})}});

  // The queue recorded what the worker uploaded, and hands out a URL on
  // the S3 server (not its own HTTP listener).
  v1::ArtifactRequest request;
  request.set_task_id(task);
  request.set_run_id(0);
  request.set_name("public/output.bin");
  auto got = Artifacts().GetArtifact(request);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->artifact().has_blob()) << got->artifact().DebugString();
  EXPECT_TRUE(got->artifact().present());
  EXPECT_EQ(got->artifact().blob().sha256(), expected->first);
  EXPECT_EQ(got->artifact().blob().size(), expected->second);
  EXPECT_EQ(got->url().rfind(endpoint_ + "/", 0), 0u) << got->url();
  EXPECT_NE(got->url().find("X-Amz-Signature="), std::string::npos)
      << got->url();

  // The CLI downloads it from S3.
  const fs::path downloaded = test_dir_ / "downloaded.bin";
  Child cli;
  tests::support::SpawnOptions spawn;
  spawn.env = tests::support::CliEnvironment(suite_->queue(), suite_->home());
  ASSERT_TRUE(cli.Spawn({DROVER_CLI_BINARY, "artifacts", "get", task,
                         "public/output.bin", "-o", downloaded.string()},
                        test_dir_ / "cli.out", test_dir_ / "cli.err", spawn));
  ASSERT_EQ(cli.Wait(absl::Seconds(120)), 0) << cli.Output();
  auto hashed = client::HashFile(downloaded);
  ASSERT_TRUE(hashed.ok()) << hashed.status();
  EXPECT_EQ(hashed->first, expected->first);
  EXPECT_EQ(hashed->second, expected->second);
  EXPECT_TRUE(ReadFile(downloaded) == bytes);

  // And so does the client library.
  auto fetched = tests::support::DownloadArtifact(suite_->queue(), task, 0,
                                                  "public/output.bin");
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_TRUE(*fetched == bytes) << fetched->size() << " bytes";

  // The live log went to S3 as well.
  auto log = tests::support::ReadTaskLog(suite_->queue(), task);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_NE(log->find(task), std::string::npos) << *log;
}

TEST_F(S3ArtifactsEndToEndTest, ListArtifactsPagesOver2500Artifacts) {
  constexpr int kFiles = 2500;
  const std::string task = RunTask(
      {{"command",
        json::array({"sh", "-c",
                     absl::StrCat("mkdir many && i=0; while [ $i -lt ", kFiles,
                                  " ]; do echo \"file $i\" > many/f$i.txt; "
                                  "i=$((i+1)); done")})},
       {"maxRunTime", 600},
       {"artifacts", json::array({{{"type", "directory"},
                                   {"path", "many"},
                                   {"name", "public/many"}}})}});
  std::set<std::string> expected;
  for (int i = 0; i < kFiles; ++i) {
    expected.insert(absl::StrCat("public/many/f", i, ".txt"));
  }
  expected.insert("public/logs/live.log");

  for (int limit : {0, 1000, 7}) {
    std::map<std::string, int> seen;
    std::string token;
    int pages = 0;
    do {
      v1::ListArtifactsRequest request;
      request.set_task_id(task);
      request.set_run_id(0);
      request.set_continuation_token(token);
      request.set_limit(limit);
      auto page = Artifacts().ListArtifacts(request);
      ASSERT_TRUE(page.ok()) << page.status() << " on page " << pages;
      ++pages;
      EXPECT_LE(page->artifacts_size(), limit == 0 ? 100 : limit);
      for (const auto& artifact : page->artifacts()) {
        ++seen[artifact.name()];
        EXPECT_TRUE(artifact.present()) << artifact.name();
      }
      token = page->continuation_token();
      ASSERT_LT(pages, 1000) << "the listing does not end";
    } while (!token.empty());
    std::vector<std::string> duplicated;
    std::set<std::string> names;
    for (const auto& [name, count] : seen) {
      names.insert(name);
      if (count != 1) duplicated.push_back(name);
    }
    EXPECT_TRUE(duplicated.empty())
        << duplicated.size() << " listed more than once, e.g. "
        << duplicated.front();
    EXPECT_EQ(names.size(), expected.size()) << "limit " << limit;
    EXPECT_TRUE(names == expected) << "limit " << limit;
    const int per_page = limit == 0 ? 100 : limit;
    EXPECT_EQ(pages, (kFiles + 1 + per_page - 1) / per_page)
        << "limit " << limit;
  }

  // The bytes of one of them came through S3 intact.
  auto one = tests::support::DownloadArtifact(suite_->queue(), task, 0,
                                              "public/many/f1234.txt");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, "file 1234\n");
}

TEST_F(S3ArtifactsEndToEndTest, TheExpiryResolverDeletesBlobAndRow) {
  // Whole seconds, as the payload's RFC 3339 time carries them.
  const absl::Time expires =
      absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()) + 20);
  const std::string task = RunTask(
      {{"command",
        json::array({"sh", "-c",
                     "echo short-lived > short.txt; echo kept > kept.txt"})},
       {"maxRunTime", 60},
       {"artifacts",
        json::array({{{"type", "file"},
                      {"path", "short.txt"},
                      {"name", "public/short.txt"},
                      {"expires", absl::FormatTime(absl::RFC3339_sec, expires,
                                                   absl::UTCTimeZone())}},
                     {{"type", "file"},
                      {"path", "kept.txt"},
                      {"name", "public/kept.txt"}}})}});

  v1::ArtifactRequest request;
  request.set_task_id(task);
  request.set_run_id(0);
  request.set_name("public/short.txt");
  auto before = Artifacts().GetArtifact(request);
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_LT(absl::Now(), expires) << "the task took too long to test expiry";
  // The object is there now (the signed URL stays valid for long after).
  const std::string url = before->url();
  std::string body;
  auto fetched = client::Download(
      url, 0,
      [&](std::string_view chunk) {
        body.append(chunk);
        return absl::OkStatus();
      },
      true);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(body, "short-lived\n");

  // Past its expiry GetArtifact refuses it (ResourceExpired) even before
  // the resolver runs; the resolver (every second) then deletes the row
  // (ResourceNotFound) and the S3 object.
  absl::Status gone;
  ASSERT_TRUE(Eventually(
      [&] {
        gone = Artifacts().GetArtifact(request).status();
        return HasErrorCode(gone, ErrorCode::kResourceNotFound);
      },
      absl::Seconds(30) + (expires - absl::Now()), absl::Milliseconds(500)))
      << "public/short.txt is still there after its expiry: " << gone;
  EXPECT_GE(absl::Now(), expires);

  client::TransferOptions once;
  once.max_attempts = 1;
  absl::Status object =
      client::Download(
          url, 0, [](std::string_view) { return absl::OkStatus(); }, true, once)
          .status();
  EXPECT_TRUE(HasErrorCode(object, ErrorCode::kResourceNotFound))
      << "the S3 object should be deleted: " << object;

  v1::ListArtifactsRequest list;
  list.set_task_id(task);
  list.set_run_id(0);
  auto listed = Artifacts().ListArtifacts(list);
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::set<std::string> names;
  for (const auto& a : listed->artifacts()) names.insert(a.name());
  EXPECT_EQ(names.count("public/short.txt"), 0u);
  EXPECT_EQ(names.count("public/kept.txt"), 1u);
  // Its neighbour, without an early expiry, is untouched.
  auto kept = tests::support::DownloadArtifact(suite_->queue(), task, 0,
                                               "public/kept.txt");
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(*kept, "kept\n");
}

}  // namespace
}  // namespace drover
