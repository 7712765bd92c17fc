// ArtifactStore and LogNotifier against a real PostgreSQL database.
#include "queue/artifacts/artifact_store.h"

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"
#include "queue/artifacts/artifact_validation.h"
#include "queue/artifacts/log_notifier.h"
#include "queue/artifacts/testing/artifacts_test_env.h"

namespace drover::queue::artifacts {
namespace {

using testing::ArtifactsTestEnv;

constexpr char kShaA[] =
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr char kShaB[] =
    "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

class ArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = ArtifactsTestEnv::Create();
    if (env.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << "PostgreSQL is unavailable: " << env.status();
    }
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    auto task = env_->StartRunningTask();
    ASSERT_TRUE(task.ok()) << task.status();
    task_id_ = *task;
  }

  ArtifactStore& store() { return env_->artifact_store(); }

  NewArtifact Blob(const std::string& name, int64_t size, const char* sha) {
    NewArtifact n;
    n.artifact.task_id = task_id_;
    n.artifact.run_id = 0;
    n.artifact.name = name;
    n.artifact.kind = ArtifactKind::kBlob;
    n.artifact.content_type = "application/octet-stream";
    n.artifact.size = size;
    n.artifact.sha256 = sha;
    n.artifact.blob_key = BlobKeyFor(task_id_, 0, name);
    return n;
  }

  std::unique_ptr<ArtifactsTestEnv> env_;
  std::string task_id_;
};

TEST_F(ArtifactStoreTest, UnknownTaskAndRunAreToldApart) {
  NewArtifact n = Blob("a", 1, kShaA);
  n.artifact.task_id = "AAAAAAAAAAAAAAAAAAAAAA";
  absl::Status task = store().Create(n).status();
  EXPECT_TRUE(HasErrorCode(task, ErrorCode::kResourceNotFound));
  EXPECT_EQ(GetErrorInfo(task).details["kind"], "task");
  n = Blob("a", 1, kShaA);
  n.artifact.run_id = 4;
  absl::Status run = store().Create(n).status();
  EXPECT_EQ(GetErrorInfo(run).details["kind"], "run");
  EXPECT_EQ(GetErrorInfo(store().AppendLog(task_id_, 4, 0, "x").status())
                .details["kind"],
            "run");
}

TEST_F(ArtifactStoreTest, CreateDefaultsTheExpiryToTheTasks) {
  auto created = store().Create(Blob("a", 1, kShaA));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  auto status = env_->store().GetTaskStatus(task_id_);
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(created->artifact.expires, status->expires);
  auto read = store().Get(task_id_, 0, "a");
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(*read, created->artifact);
}

TEST_F(ArtifactStoreTest, AnUnfinishedBlobMayBeDeclaredAnewAFinishedOneNot) {
  ASSERT_TRUE(store().Create(Blob("a", 1, kShaA)).ok());
  auto again = store().Create(Blob("a", 2, kShaB));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->artifact.size, 2);
  EXPECT_EQ(again->artifact.sha256, kShaB);

  // Finishing with the old declaration is refused: it changed meanwhile.
  absl::Status stale = store().MarkPresent(task_id_, 0, "a", 1, kShaA).status();
  EXPECT_TRUE(HasErrorCode(stale, ErrorCode::kRequestConflict));
  EXPECT_EQ(GetErrorInfo(stale).details["field"], "size");

  ASSERT_TRUE(store().MarkPresent(task_id_, 0, "a", 2, kShaB).ok());
  absl::Status finished = store().Create(Blob("a", 3, kShaA)).status();
  EXPECT_TRUE(HasErrorCode(finished, ErrorCode::kRequestConflict));
  EXPECT_EQ(GetErrorInfo(finished).details["field"], "blob.size");
}

TEST_F(ArtifactStoreTest, ABlobKeyAwaitingDeletionCannotBeReused) {
  NewArtifact n = Blob("reused", 1, kShaA);
  n.expires = env_->clock().Now() + absl::Minutes(5);
  ASSERT_TRUE(store().Create(n).ok());
  env_->fake_clock()->Advance(absl::Minutes(6));
  auto deleted = store().DeleteExpiredArtifacts(10);
  ASSERT_TRUE(deleted.ok());
  EXPECT_EQ(*deleted, 1);
  absl::Status status = store().Create(Blob("reused", 1, kShaA)).status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kRequestConflict)) << status;
  // Once the reaper has deleted the blob the name is free again.
  auto keys = store().LeaseBlobDeletions(10, absl::Minutes(1));
  ASSERT_TRUE(keys.ok());
  ASSERT_EQ(keys->size(), 1u);
  // Leased keys are not handed out twice.
  EXPECT_TRUE(store().LeaseBlobDeletions(10, absl::Minutes(1))->empty());
  ASSERT_TRUE(store().CompleteBlobDeletions(*keys).ok());
  EXPECT_TRUE(store().Create(Blob("reused", 1, kShaA)).ok());
}

TEST_F(ArtifactStoreTest, ReadLogHonoursOffsetsAndLimits) {
  int64_t end = 0;
  for (const std::string part : {"0123", "4567", "89"}) {
    auto length = store().AppendLog(task_id_, 0, end, part);
    ASSERT_TRUE(length.ok()) << length.status();
    end = *length;
  }
  EXPECT_EQ(end, 10);
  EXPECT_EQ(store().ReadLog(task_id_, 0, 0, 100)->data, "0123456789");
  EXPECT_EQ(store().ReadLog(task_id_, 0, 5, 100)->data, "56789");
  EXPECT_EQ(store().ReadLog(task_id_, 0, 2, 3)->data, "234");
  EXPECT_EQ(store().ReadLog(task_id_, 0, 10, 100)->data, "");
  EXPECT_EQ(store().ReadLog(task_id_, 0, 99, 100)->data, "");
  auto read = store().ReadLog(task_id_, 0, 0, 1);
  EXPECT_EQ(read->run_state, "running");
  EXPECT_FALSE(read->run_resolved);
  EXPECT_FALSE(read->live_log.has_value());
}

TEST_F(ArtifactStoreTest, ConcurrentAppendersNeverInterleaveOrLoseBytes) {
  // Eight writers race for the end of the log; whoever loses retries at
  // the offset the conflict names. The log must be every piece, whole.
  std::atomic<int> conflicts{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 8; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < 10; ++i) {
        std::string piece = absl::StrCat("<", w, ":", i, ">");
        int64_t offset = 0;
        for (;;) {
          auto result = store().AppendLog(task_id_, 0, offset, piece);
          if (result.ok()) break;
          ASSERT_TRUE(
              HasErrorCode(result.status(), ErrorCode::kRequestConflict))
              << result.status();
          offset = std::stoll(
              GetErrorInfo(result.status()).details["expected_offset"]);
          ++conflicts;
        }
      }
    });
  }
  for (auto& t : writers) t.join();
  auto read = store().ReadLog(task_id_, 0, 0, 1 << 20);
  ASSERT_TRUE(read.ok());
  std::set<std::string> pieces;
  size_t pos = 0;
  while (pos < read->data.size()) {
    size_t close = read->data.find('>', pos);
    ASSERT_NE(close, std::string::npos);
    pieces.insert(read->data.substr(pos, close - pos + 1));
    pos = close + 1;
  }
  EXPECT_EQ(pieces.size(), 80u);
  EXPECT_GT(conflicts.load(), 0);
}

TEST_F(ArtifactStoreTest, NotifierDeliversLogChangesFromOtherConnections) {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> payloads;
  LogNotifier notifier({.connection_string = env_->connection_string()});
  ASSERT_TRUE(notifier
                  .Start([&](const std::string& payload) {
                    std::lock_guard<std::mutex> lock(mu);
                    payloads.push_back(payload);
                    cv.notify_all();
                  })
                  .ok());
  EXPECT_FALSE(notifier.Start([](const std::string&) {}).ok());
  ASSERT_TRUE(store().AppendLog(task_id_, 0, 0, "hello").ok());
  std::unique_lock<std::mutex> lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10),
                          [&] { return !payloads.empty(); }));
  EXPECT_EQ(payloads.front(), task_id_ + "/0");
  lock.unlock();
  notifier.Stop();
}

}  // namespace
}  // namespace drover::queue::artifacts
