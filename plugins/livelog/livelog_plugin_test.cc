// The livelog plugin with the real native engine and a real queue: a reader
// follows the log through TailLog while the task runs; at the end the log
// is the blob artifact public/logs/live.log and the chunks are gone.
#include "plugins/livelog/livelog_plugin.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engines/native/native_engine.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/artifacts/testing/plugin_test_util.h"
#include "plugins/testing/plugin_harness.h"
#include "pqxx/pqxx"
#include "queue/artifacts/testing/artifacts_test_env.h"
#include "queue/blobstore/testing/curl_client.h"

namespace drover::plugins::livelog {
namespace {

using engines::native::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

TEST(LiveLogConfigTest, ParsesAndRefusesBadValues) {
  auto options = ParseLiveLogConfig(
      json{{"flush_bytes", 32768}, {"flush_interval_ms", 50}}, "/work");
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->flush_bytes, 32768);
  EXPECT_EQ(options->flush_interval, absl::Milliseconds(50));
  TaskInfo info;
  info.task_id = "T";
  info.run_id = 3;
  EXPECT_EQ(options->log_path(info), "/work/logs/T_3.log");
  EXPECT_EQ(
      GetErrorInfo(ParseLiveLogConfig(json{{"flush_bytes", 10}}, "/w").status())
          .details["field"],
      "plugins.livelog.flush_bytes");
  EXPECT_EQ(GetErrorInfo(ParseLiveLogConfig(json{{"x", 1}}, "/w").status())
                .details["field"],
            "plugins.livelog.x");
}

// Fails Prepare, as a missing input would.
class FailingPrepare final : public Plugin {
 public:
  std::string_view Name() const override { return "failing"; }
  absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) override {
    struct Hooks : TaskPlugin {
      engines::LogSink* log;
      absl::Status Prepare(engines::SandboxSpec&) override {
        log->Write("[drover] input missing: public/bundle.tar.gz\n");
        return NotFoundError("artifact", "public/bundle.tar.gz");
      }
    };
    auto hooks = std::make_unique<Hooks>();
    hooks->log = info.log;
    return std::unique_ptr<TaskPlugin>(std::move(hooks));
  }
};

class LiveLogPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue::artifacts::testing::ArtifactsTestEnvOptions options;
    options.fake_clock = false;
    options.service.tail_poll_interval = absl::Milliseconds(200);
    auto env = queue::artifacts::testing::ArtifactsTestEnv::Create(options);
    if (env.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << "PostgreSQL is unavailable: " << env.status();
    }
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    engines::native::NativeEngineOptions engine_options;
    engine_options.work_dir = dir_.path() / "work";
    auto engine = engines::native::NativeEngine::Create(engine_options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    auto task = env_->StartRunningTask();
    ASSERT_TRUE(task.ok()) << task.status();
    task_id_ = *task;
    std::filesystem::create_directories(dir_.path() / "task");
    log_ = std::make_unique<plugins::testing::FileLogSink>(dir_.path() /
                                                           "task.log");
    auto connection = client::Connection::Create(
        {.url = env_->grpc_target(), .ca_file = "", .credentials = {}});
    ASSERT_TRUE(connection.ok());
    client_ = std::make_unique<client::ArtifactsClient>(*connection);
  }

  TaskInfo Info(const std::string& script) {
    TaskInfo info = plugins::testing::MakeTaskInfo(
        json{{"command", {"/bin/sh", "-c", script}}}, log_.get());
    info.task_id = task_id_;
    info.run_id = 0;
    info.queue_address = env_->grpc_target();
    info.credentials = nullptr;
    return info;
  }

  LiveLogOptions Options() {
    LiveLogOptions options;
    std::filesystem::path path = log_->path();
    options.log_path = [path](const TaskInfo&) { return path; };
    return options;
  }

  std::string FetchLiveLog() {
    v1::ArtifactRequest request;
    request.set_task_id(task_id_);
    request.set_name(std::string(kLiveLogName));
    auto got = client_->GetArtifact(request);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok()) return "";
    std::string body;
    EXPECT_TRUE(client::Download(
                    got->url(), 0,
                    [&](std::string_view bytes) {
                      body.append(bytes);
                      return absl::OkStatus();
                    },
                    true)
                    .ok());
    return body;
  }

  int64_t ChunkRows() {
    pqxx::connection conn(env_->connection_string());
    pqxx::nontransaction txn(conn);
    return txn.exec("SELECT count(*) FROM log_chunks")[0][0].as<int64_t>();
  }

  TempDir dir_;
  std::unique_ptr<queue::artifacts::testing::ArtifactsTestEnv> env_;
  std::unique_ptr<engines::native::NativeEngine> engine_;
  std::unique_ptr<client::ArtifactsClient> client_;
  std::unique_ptr<plugins::testing::FileLogSink> log_;
  std::string task_id_;
};

TEST_F(LiveLogPluginTest, ReadersFollowTheLogLiveAndGetAllOfIt) {
  // A reader starts before the task and follows until the log is final.
  std::mutex mu;
  std::condition_variable cv;
  std::string followed;
  std::atomic<bool> task_done{false};
  bool saw_line_3_while_running = false;
  absl::Status tail_status;
  std::thread reader([&] {
    v1::TailLogRequest request;
    request.set_task_id(task_id_);
    request.set_run_id(0);
    auto tailed = client_->TailLog(request, [&](std::string_view bytes) {
      std::lock_guard<std::mutex> lock(mu);
      followed.append(bytes);
      if (!task_done && followed.find("line 3\n") != std::string::npos) {
        saw_line_3_while_running = true;
      }
      cv.notify_all();
      return absl::OkStatus();
    });
    std::lock_guard<std::mutex> lock(mu);
    tail_status = tailed.status();
  });

  LiveLogPlugin plugin(Options());
  auto run = plugins::testing::RunTask(
      *engine_, {&plugin},
      Info("i=1; while [ $i -le 12 ]; do echo \"line $i\"; sleep 0.15; "
           "i=$((i+1)); done"),
      dir_.path() / "task");
  task_done = true;
  ASSERT_TRUE(run.failed_stage.empty())
      << run.failed_stage << ": " << run.failure;
  reader.join();
  EXPECT_TRUE(tail_status.ok()) << tail_status;
  EXPECT_TRUE(saw_line_3_while_running)
      << "the reader only saw the log after the task ended";

  const std::string file = plugins::testing::ReadWholeFile(log_->path());
  EXPECT_THAT(file, HasSubstr("line 12\n"));
  EXPECT_EQ(followed, file);
  EXPECT_EQ(FetchLiveLog(), file);
  // The blob replaced the chunks.
  EXPECT_EQ(ChunkRows(), 0);
}

TEST_F(LiveLogPluginTest, GigabyteStyleOutputKeepsMemoryBounded) {
  // 48 MiB of output as fast as the task can write it: the file runs ahead
  // of the sender and memory stays flat.
  log_ = std::make_unique<plugins::testing::FileLogSink>(
      dir_.path() / "big.log", /*keep_text=*/false);
  const uint64_t before = queue::blobstore::testing::CurrentRssBytes();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> peak{before};
  std::thread sampler([&] {
    while (!stop) {
      uint64_t rss = queue::blobstore::testing::CurrentRssBytes();
      if (rss > peak) peak = rss;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  LiveLogPlugin plugin(Options());
  auto run = plugins::testing::RunTask(
      *engine_, {&plugin},
      Info("head -c 50331648 /dev/zero | tr '\\0' 'x' | fold -w 127"),
      dir_.path() / "task");
  stop = true;
  sampler.join();
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  const auto size = std::filesystem::file_size(log_->path());
  EXPECT_GT(size, 48u << 20);
  // The test process holds the server side too; neither may hold the log.
  EXPECT_LT(peak - before, 40u << 20)
      << "RSS grew by " << ((peak - before) >> 20) << " MiB";
  v1::ArtifactRequest request;
  request.set_task_id(task_id_);
  request.set_name(std::string(kLiveLogName));
  auto got = client_->GetArtifact(request);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->artifact().blob().size(), static_cast<int64_t>(size));
  auto hashed = client::HashFile(log_->path());
  ASSERT_TRUE(hashed.ok());
  EXPECT_EQ(got->artifact().blob().sha256(), hashed->first);
}

TEST_F(LiveLogPluginTest, AFailedPrepareStillPublishesTheLog) {
  FailingPrepare failing;
  LiveLogPlugin plugin(Options());
  auto run = plugins::testing::RunTask(
      *engine_, {&failing, &plugin}, Info("echo never"), dir_.path() / "task");
  EXPECT_EQ(run.failed_stage, "prepare");
  EXPECT_THAT(FetchLiveLog(), HasSubstr("input missing: public/bundle"));
}

TEST_F(LiveLogPluginTest, AMissingTaskLogFailsPrepareNamingIt) {
  LiveLogOptions options;
  options.log_path = [this](const TaskInfo&) {
    return dir_.path() / "no-such.log";
  };
  LiveLogPlugin plugin(options);
  auto run = plugins::testing::RunTask(*engine_, {&plugin}, Info("true"),
                                       dir_.path() / "task");
  EXPECT_EQ(run.failed_stage, "prepare");
  EXPECT_THAT(GetErrorInfo(run.failure).details["path"],
              HasSubstr("no-such.log"));
}

}  // namespace
}  // namespace drover::plugins::livelog
