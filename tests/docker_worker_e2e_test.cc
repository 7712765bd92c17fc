// The real drover-worker with the docker engine against the real dockerd
// and the real drover-queue (embedded PostgreSQL), over loopback: the
// payload's env reaches the container; exit codes resolve the run (0
// completed, non-zero failed, an onExitStatus.retry code
// exception/intermittent-task and retried); maxRunTime kills the
// container and resolves failed; cancelling a running task removes its
// container; a memory hog over resources.memoryMB fails with "killed: out
// of memory" in the log; an image only the local registry has is pulled;
// files written inside the container become artifacts; containers a
// previous worker left behind are removed at start; and when the suite
// ends no container carries its labels.
//
// Skipped, saying why, when dockerd does not answer on
// /var/run/docker.sock or the test images are missing (scripts/test.sh
// starts dockerd and the registry and builds them); the pull test also
// needs the registry on 127.0.0.1:5000, the OOM test a dockerd with
// memory-limit support.
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/e2e_support.h"

namespace drover {
namespace {

using nlohmann::json;
using tests::support::Child;
using tests::support::Describe;
using tests::support::DockerContainersWithLabel;
using tests::support::DockerRequest;
using tests::support::Eventually;
using tests::support::HttpBody;
using tests::support::HttpStatus;
using tests::support::kDockerImage;
using tests::support::kDockerSocket;

// Only in the registry (scripts/make-test-images.sh removes the local
// copy); the pull test removes it again before running.
constexpr char kRegistryImage[] = "127.0.0.1:5000/drover-test/pull-only:latest";

class DockerWorkerEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new tests::support::E2eSuite();
    // Reclaims every 5 s, so a cancelled task is noticed within that.
    if (!suite_->Start("drover-docker-e2e", DROVER_QUEUE_BINARY,
                       {"--claim-timeout", "10s", "--poll-timeout", "5s"},
                       tests::support::DockerUnavailableReason)) {
      return;
    }
    // Labels of this suite's containers: a group nobody else uses.
    group_ = absl::StrCat("docker-e2e-", getpid());
    pool_ = "e2e/docker";
    tests::support::WorkerOptions options = tests::support::PluginWorkerOptions(
        DROVER_WORKER_BINARY, pool_, "docker-1", 4);
    options.group = group_;
    options.engine = {{"name", "docker"},
                      {"config",
                       {{"socket", kDockerSocket},
                        {"max_memory_mb", 512},
                        {"pull_timeout_seconds", 120}}}};

    // A container a crashed worker of the same identity left behind: the
    // new worker removes it when it starts.
    const json leftover = {{"Image", kDockerImage},
                           {"Cmd", json::array({"sleep", "600"})},
                           {"Labels",
                            {{"drover.worker-group", group_},
                             {"drover.worker-id", options.worker_id},
                             {"drover.task-id", "left-over-by-a-crash"},
                             {"drover.run-id", "0"}}}};
    std::string created =
        DockerRequest("POST", "/containers/create", leftover.dump());
    if (HttpStatus(created) != 201) {
      suite_->Fail("cannot create the leftover container: " + created);
      return;
    }
    leftover_id_ = json::parse(HttpBody(created))["Id"].get<std::string>();

    worker_ =
        tests::support::StartWorker(suite_->queue(), options, suite_->dir())
            .release();
  }

  static void TearDownTestSuite() {
    if (worker_ != nullptr) {
      worker_->Terminate(absl::Seconds(60));
      delete worker_;
      worker_ = nullptr;
    }
    // Whatever a failed test left, do not leave it on the machine.
    if (!group_.empty()) {
      auto left = DockerContainersWithLabel("drover.worker-group", group_);
      for (const auto& id : left.value_or(std::vector<std::string>{})) {
        DockerRequest("DELETE", "/containers/" + id + "?force=1&v=1");
      }
    }
    delete suite_;  // stops the queue
    suite_ = nullptr;
  }

  void SetUp() override {
    if (!suite_->skip_reason().empty()) GTEST_SKIP() << suite_->skip_reason();
    ASSERT_TRUE(suite_->setup_error().empty()) << suite_->setup_error();
    ASSERT_NE(worker_, nullptr);
    ASSERT_TRUE(worker_->Running()) << worker_->Output();
  }

  static std::string Create(const json& payload, int retries = 0) {
    json full = payload;
    if (!full.contains("image")) full["image"] = kDockerImage;
    if (!full.contains("maxRunTime")) full["maxRunTime"] = 120;
    return tests::support::CreateTask(suite_->queue().client(), pool_, full,
                                      retries, "docker worker end-to-end test");
  }

  static json Sh(const std::string& script) {
    return json::array({"sh", "-c", script});
  }

  static v1::TaskStatus WaitResolved(
      const std::string& task_id, absl::Duration timeout = absl::Seconds(180)) {
    return tests::support::WaitResolved(suite_->queue().client(), task_id,
                                        timeout);
  }

  static std::string Log(const std::string& task_id,
                         std::optional<int> run_id = std::nullopt) {
    auto log = tests::support::ReadTaskLog(suite_->queue(), task_id, run_id);
    EXPECT_TRUE(log.ok()) << log.status();
    return log.value_or("");
  }

  // Containers of `task_id` (any state); nullopt when dockerd is gone.
  static std::optional<std::vector<std::string>> ContainersOf(
      const std::string& task_id) {
    return DockerContainersWithLabel("drover.task-id", task_id);
  }

  static inline std::string group_;
  static inline std::string pool_;
  static inline std::string leftover_id_;
  static inline tests::support::E2eSuite* suite_ = nullptr;
  static inline Child* worker_ = nullptr;
};

TEST_F(DockerWorkerEndToEndTest, ALeftoverContainerIsRemovedAtStart) {
  ASSERT_FALSE(leftover_id_.empty());
  // The worker cleans up as its task loop starts, before claiming.
  std::string inspect;
  EXPECT_TRUE(Eventually(
      [&] {
        inspect = DockerRequest("GET", "/containers/" + leftover_id_ + "/json");
        return HttpStatus(inspect) == 404;
      },
      absl::Seconds(30)))
      << inspect << "\n"
      << worker_->Output();
}

TEST_F(DockerWorkerEndToEndTest, EnvReachesTheContainer) {
  const std::string task =
      Create({{"command", Sh("echo \"greeting=[$E2E_GREETING] task=$TASK_ID "
                             "run=$RUN_ID\"")},
              {"env", {{"E2E_GREETING", "hello, container world"}}}});
  v1::TaskStatus status = WaitResolved(task);
  ASSERT_EQ(status.state(), "completed") << Describe(status) << "\n"
                                         << worker_->Output();
  const std::string log = Log(task);
  EXPECT_NE(
      log.find("greeting=[hello, container world] task=" + task + " run=0"),
      std::string::npos)
      << log;
}

TEST_F(DockerWorkerEndToEndTest, ExitCodesResolveTheRun) {
  const std::string zero = Create({{"command", Sh("exit 0")}});
  const std::string three = Create({{"command", Sh("echo failing; exit 3")}});
  // Run 0 exits with a retry code; the queue's retry (run 1) succeeds.
  const std::string retried =
      Create({{"command", Sh("[ \"$RUN_ID\" = 0 ] && exit 42; exit 0")},
              {"onExitStatus", {{"retry", json::array({42})}}}},
             /*retries=*/1);

  v1::TaskStatus status = WaitResolved(zero);
  EXPECT_EQ(status.state(), "completed") << Describe(status);

  status = WaitResolved(three);
  EXPECT_EQ(status.state(), "failed") << Describe(status);
  ASSERT_EQ(status.runs_size(), 1) << Describe(status);
  EXPECT_EQ(status.runs(0).reason_resolved(), "failed");
  EXPECT_NE(Log(three).find("failing"), std::string::npos);

  status = WaitResolved(retried);
  EXPECT_EQ(status.state(), "completed") << Describe(status);
  ASSERT_EQ(status.runs_size(), 2) << Describe(status);
  EXPECT_EQ(status.runs(0).state(), "exception") << Describe(status);
  EXPECT_EQ(status.runs(0).reason_resolved(), "intermittent-task")
      << Describe(status);
  EXPECT_EQ(status.runs(1).state(), "completed") << Describe(status);

  for (const auto& task : {zero, three, retried}) {
    EXPECT_TRUE(Eventually(
        [&] { return ContainersOf(task) == std::vector<std::string>{}; },
        absl::Seconds(30)))
        << task;
  }
}

TEST_F(DockerWorkerEndToEndTest, MaxRunTimeKillsTheContainer) {
  const absl::Time start = absl::Now();
  const std::string task =
      Create({{"command", Sh("echo sleeping; sleep 120")}, {"maxRunTime", 3}});
  v1::TaskStatus status = WaitResolved(task);
  ASSERT_EQ(status.state(), "failed") << Describe(status);
  ASSERT_EQ(status.runs_size(), 1);
  EXPECT_EQ(status.runs(0).reason_resolved(), "failed");
  EXPECT_LT(absl::Now() - start, absl::Seconds(60))
      << "the container should be killed after 3 s, not left to sleep";
  const std::string log = Log(task);
  EXPECT_NE(log.find("sleeping"), std::string::npos) << log;
  EXPECT_NE(log.find("maxRunTime of 3 s exceeded"), std::string::npos) << log;
  EXPECT_TRUE(Eventually(
      [&] { return ContainersOf(task) == std::vector<std::string>{}; },
      absl::Seconds(30)));
}

TEST_F(DockerWorkerEndToEndTest, CancellingARunningTaskRemovesItsContainer) {
  const std::string task =
      Create({{"command", Sh("echo started; sleep 300")}, {"maxRunTime", 600}});
  // Running, with its container.
  std::optional<std::vector<std::string>> containers;
  ASSERT_TRUE(Eventually(
      [&] {
        containers = ContainersOf(task);
        return containers && containers->size() == 1;
      },
      absl::Seconds(120)))
      << worker_->Output();
  const std::string container = containers->front();
  ASSERT_TRUE(Eventually(
      [&] {
        std::string inspect =
            DockerRequest("GET", "/containers/" + container + "/json");
        return json::parse(HttpBody(inspect), nullptr, false)
            .value("/State/Running"_json_pointer, false);
      },
      absl::Seconds(60)));

  v1::TaskIdRequest cancel;
  cancel.set_task_id(task);
  auto cancelled = suite_->queue().client().CancelTask(cancel);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  v1::TaskStatus status = WaitResolved(task);
  EXPECT_EQ(status.state(), "exception") << Describe(status);
  ASSERT_EQ(status.runs_size(), 1);
  EXPECT_EQ(status.runs(0).reason_resolved(), "canceled");

  // The worker learns of it at its next reclaim (every 5 s here) and
  // removes the container.
  EXPECT_TRUE(Eventually(
      [&] { return ContainersOf(task) == std::vector<std::string>{}; },
      absl::Seconds(30)))
      << worker_->Output();
  std::string inspect =
      DockerRequest("GET", "/containers/" + container + "/json");
  EXPECT_EQ(HttpStatus(inspect), 404) << inspect;
}

TEST_F(DockerWorkerEndToEndTest, AMemoryHogIsKilledOutOfMemory) {
  const json info =
      json::parse(HttpBody(DockerRequest("GET", "/info")), nullptr, false);
  if (!info.is_object() || !info.value("MemoryLimit", false)) {
    GTEST_SKIP() << "dockerd reports MemoryLimit="
                 << (info.is_object() ? info.value("MemoryLimit", false)
                                      : false)
                 << " (cgroup " << info.value("CgroupVersion", "?")
                 << "): containers cannot be memory-limited here";
  }
  // `tail` keeps the current line in memory: a newline-free stream grows
  // it until the 32 MB limit kills it.
  const std::string task =
      Create({{"command", Sh("echo hogging; head -c 400m /dev/zero | tail")},
              {"resources", {{"memoryMB", 32}}}});
  v1::TaskStatus status = WaitResolved(task);
  EXPECT_EQ(status.state(), "failed") << Describe(status);
  const std::string log = Log(task);
  EXPECT_NE(log.find("hogging"), std::string::npos) << log;
  EXPECT_NE(log.find("killed: out of memory"), std::string::npos) << log;
}

TEST_F(DockerWorkerEndToEndTest, AnImageOnlyTheRegistryHasIsPulled) {
  // Is the registry there, and does it have the image?
  std::string manifest = DockerRequest(
      "GET", std::string("/distribution/") + kRegistryImage + "/json");
  if (HttpStatus(manifest) != 200) {
    GTEST_SKIP() << kRegistryImage
                 << " is not in the local registry (start it with "
                    "scripts/start-docker.sh and push it with "
                    "scripts/make-test-images.sh): "
                 << manifest.substr(0, 200);
  }
  // Make sure the worker has to pull it.
  std::string removed = DockerRequest(
      "DELETE", std::string("/images/") + kRegistryImage + "?force=1");
  ASSERT_TRUE(HttpStatus(removed) == 200 || HttpStatus(removed) == 404)
      << removed;
  ASSERT_EQ(HttpStatus(DockerRequest(
                "GET", std::string("/images/") + kRegistryImage + "/json")),
            404);

  const std::string task = Create(
      {{"image", kRegistryImage}, {"command", Sh("cat /drover-pull-marker")}});
  v1::TaskStatus status = WaitResolved(task);
  EXPECT_EQ(status.state(), "completed") << Describe(status);
  const std::string log = Log(task);
  EXPECT_NE(log.find(std::string("pulled image ")), std::string::npos) << log;
  EXPECT_NE(log.find("pull-only "), std::string::npos)
      << "the marker file of the pulled image\n"
      << log;
  EXPECT_EQ(HttpStatus(DockerRequest(
                "GET", std::string("/images/") + kRegistryImage + "/json")),
            200);
  // Leave it only in the registry, as the other pull tests expect.
  DockerRequest("DELETE",
                std::string("/images/") + kRegistryImage + "?force=1");
}

TEST_F(DockerWorkerEndToEndTest, FilesWrittenInTheContainerAreArtifacts) {
  const std::string task = Create(
      {{"command",
        Sh("mkdir -p out/sub && seq 1 5000 > out/numbers.txt && "
           "echo \"$TASK_ID\" > out/sub/id.txt && echo single > one.txt && "
           "ln -s ../numbers.txt out/sub/alias.txt")},
       {"artifacts",
        json::array(
            {{{"type", "directory"}, {"path", "out"}, {"name", "public/out"}},
             {{"type", "file"},
              {"path", "one.txt"},
              {"name", "public/one.txt"}}})}});
  v1::TaskStatus status = WaitResolved(task);
  ASSERT_EQ(status.state(), "completed") << Describe(status) << "\n"
                                         << Log(task);
  std::string numbers;
  for (int i = 1; i <= 5000; ++i) absl::StrAppend(&numbers, i, "\n");
  auto got = tests::support::DownloadArtifact(suite_->queue(), task, 0,
                                              "public/out/numbers.txt");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == numbers) << got->size() << " bytes";
  got = tests::support::DownloadArtifact(suite_->queue(), task, 0,
                                         "public/out/sub/id.txt");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, task + "\n");
  // A link inside the directory is published under its own name, with its
  // target's content.
  got = tests::support::DownloadArtifact(suite_->queue(), task, 0,
                                         "public/out/sub/alias.txt");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(*got == numbers) << got->size() << " bytes";
  got = tests::support::DownloadArtifact(suite_->queue(), task, 0,
                                         "public/one.txt");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(*got, "single\n");
}

// Runs last (gtest keeps the order of definition): everything before it
// has resolved, so nothing may carry the suite's labels any more.
TEST_F(DockerWorkerEndToEndTest, ZzNoContainerIsLeftBehind) {
  std::optional<std::vector<std::string>> left;
  EXPECT_TRUE(Eventually(
      [&] {
        left = DockerContainersWithLabel("drover.worker-group", group_);
        return left && left->empty();
      },
      absl::Seconds(30)))
      << (left ? absl::StrCat(left->size(), " containers left")
               : "dockerd did not answer");
}

}  // namespace
}  // namespace drover
