// End to end over loopback with real processes: drover-queue on a
// throw-away embedded PostgreSQL (filesystem blob store served on its HTTP
// listener), real drover-worker daemons with the mounts, artifacts and
// livelog plugins, and the real `drover` CLI reading what they published.
//
// Native engine: a task's files become artifacts downloaded byte-identical
// through the CLI; its live log is followed while it runs and ends up as
// public/logs/live.log; a private artifact is refused to anonymous readers;
// a missing artifact path fails the run with an error artifact; a later
// task mounts an earlier task's artifact, and a missing input resolves
// exception/resource-unavailable; a task that outlives the credentials its
// claim came with still uploads its artifact and log with renewed ones.
//
// Docker engine (skipped, saying why, when dockerd does not answer on
// /var/run/docker.sock or the test image is missing): a task's files come
// out of the container as artifacts; and with the worker pointed at a
// socket where nothing listens, the worker reports itself unhealthy and
// claims nothing (the task stays pending, nothing lost) until a dockerd
// answers there, then runs it.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "tests/support/e2e_support.h"

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using tests::support::Child;
using tests::support::CliEnvironment;
using tests::support::CliResult;
using tests::support::ConnectUnix;
using tests::support::Describe;
using tests::support::DockerUnavailableReason;
using tests::support::Eventually;
using tests::support::FreePort;
using tests::support::kDockerImage;
using tests::support::kDockerSocket;
using tests::support::RandomBytes;
using tests::support::ReadFile;
using tests::support::SpawnOptions;

// Forwards every connection on a unix socket to dockerd's socket: a dockerd
// that can be made to appear at, and vanish from, a path of the test's
// choosing.
class DockerSocketProxy {
 public:
  explicit DockerSocketProxy(fs::path path) : path_(std::move(path)) {}
  ~DockerSocketProxy() { Stop(); }

  bool Start() {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path_.c_str());
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) !=
            0 ||
        listen(listen_fd_, 64) != 0) {
      close(listen_fd_);
      listen_fd_ = -1;
      return false;
    }
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return true;
  }

  void Stop() {
    stopping_ = true;
    if (listen_fd_ >= 0) {
      shutdown(listen_fd_, SHUT_RDWR);
      close(listen_fd_);
      listen_fd_ = -1;
    }
    if (accept_thread_.joinable()) accept_thread_.join();
    for (auto& t : pumps_) {
      if (t.joinable()) t.join();
    }
    pumps_.clear();
    std::error_code ec;
    fs::remove(path_, ec);
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      int client = accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      int upstream = ConnectUnix(kDockerSocket);
      if (upstream < 0) {
        close(client);
        continue;
      }
      pumps_.emplace_back([this, client, upstream] { Pump(client, upstream); });
    }
  }

  // Copies bytes both ways until either side closes or the proxy stops.
  void Pump(int a, int b) {
    char buffer[65536];
    bool open = true;
    while (open && !stopping_) {
      pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (poll(fds, 2, 100) <= 0) continue;
      for (int i = 0; i < 2 && open; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        int from = i == 0 ? a : b;
        int to = i == 0 ? b : a;
        ssize_t n = read(from, buffer, sizeof(buffer));
        if (n <= 0) {
          open = false;
          break;
        }
        for (ssize_t sent = 0; sent < n;) {
          ssize_t w = write(to, buffer + sent, n - sent);
          if (w <= 0) {
            open = false;
            break;
          }
          sent += w;
        }
      }
    }
    close(a);
    close(b);
  }

  fs::path path_;
  int listen_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::vector<std::thread> pumps_;
};

class ArtifactsEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    suite_ = new tests::support::E2eSuite();
    suite_->Start("drover-artifacts-e2e", DROVER_QUEUE_BINARY,
                  {"--claim-timeout", "20s", "--poll-timeout", "5s"});
  }

  static void TearDownTestSuite() {
    delete suite_;  // stops the queue
    suite_ = nullptr;
  }

  void SetUp() override {
    if (!suite_->skip_reason().empty()) GTEST_SKIP() << suite_->skip_reason();
    ASSERT_TRUE(suite_->setup_error().empty()) << suite_->setup_error();
    test_dir_ = tests::support::MakeTestDir(suite_->dir());
    pool_ = tests::support::PoolForTest("e2e");
  }

  static std::string url() { return suite_->queue().url(); }

  // Starts a worker with every artifact-moving plugin on `engine`; waits
  // until it serves.
  std::unique_ptr<Child> StartWorker(const std::string& worker_id,
                                     const json& engine, int metrics_port = 0) {
    tests::support::WorkerOptions options = tests::support::PluginWorkerOptions(
        DROVER_WORKER_BINARY, pool_, worker_id, 2);
    options.engine = engine;
    options.metrics_port = metrics_port;
    return tests::support::StartWorker(suite_->queue(), options, test_dir_);
  }

  static json NativeEngine() { return tests::support::NativeEngine(); }

  std::string CreateTask(const json& payload) {
    return tests::support::CreateTask(suite_->queue().client(), pool_, payload,
                                      0, "artifacts end-to-end test");
  }

  static std::optional<v1::TaskStatus> Status(const std::string& task_id) {
    return tests::support::TaskStatus(suite_->queue().client(), task_id);
  }

  static v1::TaskStatus WaitResolved(
      const std::string& task_id, absl::Duration timeout = absl::Seconds(120)) {
    return tests::support::WaitResolved(suite_->queue().client(), task_id,
                                        timeout);
  }

  // Runs the real `drover` CLI; `root` uses the bootstrapped root
  // credentials, otherwise it calls anonymously.
  CliResult Drover(const std::vector<std::string>& args, bool root = true) {
    SpawnOptions spawn;
    spawn.env = CliEnvironment(suite_->queue(), suite_->home(), root);
    return tests::support::RunCli(
        DROVER_CLI_BINARY, args, test_dir_ / absl::StrCat("cli-", cli_calls_++),
        spawn);
  }

  // `drover` started in the background (for `task logs -f`).
  std::unique_ptr<Child> DroverInBackground(
      const std::vector<std::string>& args) {
    const fs::path base = test_dir_ / absl::StrCat("cli-", cli_calls_++);
    std::vector<std::string> argv = {DROVER_CLI_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    auto cli = std::make_unique<Child>();
    SpawnOptions spawn;
    spawn.env = CliEnvironment(suite_->queue(), suite_->home());
    EXPECT_TRUE(cli->Spawn(argv, base.string() + ".out", base.string() + ".err",
                           spawn));
    return cli;
  }

  static inline tests::support::E2eSuite* suite_ = nullptr;
  fs::path test_dir_;
  std::string pool_;
  int cli_calls_ = 0;
};

TEST_F(ArtifactsEndToEndTest, NativeTaskFilesAndLiveLogThroughTheCli) {
  auto worker = StartWorker("native-1", NativeEngine());
  // Incompressible bytes (uploaded as they are) and text (gzip-encoded in
  // transit and storage); the task copies the first from the test's
  // directory and generates the second.
  const std::string binary = RandomBytes(3 * 1024 * 1024 + 17);
  const fs::path source = test_dir_ / "input.bin";
  std::ofstream(source, std::ios::binary) << binary;
  std::string numbers;
  for (int i = 1; i <= 20000; ++i) absl::StrAppend(&numbers, i, "\n");

  const std::string script =
      "mkdir -p out/nested && cp " + source.string() +
      " out/nested/input.bin && seq 1 20000 > out/numbers.txt && "
      "echo secret > private.txt && echo e2e-log-line-$TASK_ID";
  const std::string task = CreateTask(
      {{"command", json::array({"sh", "-c", script})},
       {"maxRunTime", 120},
       {"artifacts",
        json::array(
            {{{"type", "directory"}, {"path", "out"}, {"name", "public/out"}},
             {{"type", "file"},
              {"path", "private.txt"},
              {"name", "private/secret.txt"}}})}});
  v1::TaskStatus status = WaitResolved(task);
  ASSERT_EQ(status.state(), "completed") << Describe(status) << "\n"
                                         << worker->Output();

  CliResult listed = Drover({"artifacts", "list", task});
  ASSERT_EQ(listed.code, 0) << listed;
  for (const char* name :
       {"public/out/nested/input.bin", "public/out/numbers.txt",
        "private/secret.txt", "public/logs/live.log"}) {
    EXPECT_NE(listed.out.find(name), std::string::npos) << name << "\n"
                                                        << listed;
  }

  const fs::path downloaded = test_dir_ / "downloaded.bin";
  CliResult got =
      Drover({"artifacts", "get", task, "public/out/nested/input.bin", "-o",
              downloaded.string()});
  ASSERT_EQ(got.code, 0) << got;
  EXPECT_TRUE(ReadFile(downloaded) == binary)
      << "downloaded " << fs::file_size(downloaded) << " bytes, expected "
      << binary.size();

  // Anonymous: public artifacts need no credentials.
  CliResult text =
      Drover({"artifacts", "get", task, "public/out/numbers.txt"}, false);
  ASSERT_EQ(text.code, 0) << text;
  EXPECT_TRUE(text.out == numbers) << text.out.size() << " bytes";

  // Anonymous reading a private artifact is refused, naming the scope.
  CliResult refused =
      Drover({"artifacts", "get", task, "private/secret.txt"}, false);
  EXPECT_NE(refused.code, 0) << refused;
  EXPECT_NE(refused.err.find("InsufficientScopes"), std::string::npos)
      << refused;
  EXPECT_NE(refused.err.find("queue:get-artifact:private/secret.txt"),
            std::string::npos)
      << refused;
  CliResult secret = Drover({"artifacts", "get", task, "private/secret.txt"});
  ASSERT_EQ(secret.code, 0) << secret;
  EXPECT_EQ(secret.out, "secret\n");

  // The live log became public/logs/live.log, with the task's output.
  CliResult live =
      Drover({"artifacts", "get", task, "public/logs/live.log"}, false);
  ASSERT_EQ(live.code, 0) << live;
  EXPECT_NE(live.out.find("e2e-log-line-" + task), std::string::npos)
      << live.out;
  CliResult logs = Drover({"task", "logs", task});
  ASSERT_EQ(logs.code, 0) << logs;
  EXPECT_EQ(logs.out, live.out);
}

TEST_F(ArtifactsEndToEndTest, UploadsAfterTheFirstCredentialsExpired) {
  // The credentials a claim comes with expire with it (20 s here). The
  // task outlives them, so its artifact, the live log's last lines and the
  // log upload must travel with the credentials renewed by reclaims.
  auto worker = StartWorker("native-1", NativeEngine());
  const std::string task = CreateTask(
      {{"command", json::array({"sh", "-c",
                                "echo early-line; sleep 26; echo late-line; "
                                "echo late > late.txt"})},
       {"maxRunTime", 120},
       {"artifacts", json::array({{{"type", "file"},
                                   {"path", "late.txt"},
                                   {"name", "public/late.txt"}}})}});
  v1::TaskStatus status = WaitResolved(task);
  ASSERT_EQ(status.state(), "completed") << Describe(status) << "\n"
                                         << worker->Output();
  ASSERT_EQ(status.runs_size(), 1) << Describe(status);
  CliResult late = Drover({"artifacts", "get", task, "public/late.txt"});
  ASSERT_EQ(late.code, 0) << late;
  EXPECT_EQ(late.out, "late\n");
  CliResult live = Drover({"artifacts", "get", task, "public/logs/live.log"});
  ASSERT_EQ(live.code, 0) << live;
  EXPECT_NE(live.out.find("early-line"), std::string::npos) << live.out;
  EXPECT_NE(live.out.find("late-line"), std::string::npos) << live.out;
  EXPECT_EQ(live.out.find("certificate expired"), std::string::npos)
      << live.out;
}

TEST_F(ArtifactsEndToEndTest, LiveLogIsFollowedWhileTheTaskRuns) {
  auto worker = StartWorker("native-1", NativeEngine());
  const fs::path release = test_dir_ / "release";
  const std::string script = "echo first-line; while [ ! -e " +
                             release.string() +
                             " ]; do sleep 0.1; done; echo last-line";
  const std::string task = CreateTask(
      {{"command", json::array({"sh", "-c", script})}, {"maxRunTime", 120}});
  ASSERT_TRUE(Eventually(
      [&] {
        auto s = Status(task);
        return s && s->state() == "running";
      },
      absl::Seconds(60)));
  auto follower = DroverInBackground({"task", "logs", task, "-f"});
  // The first line arrives while the task still runs (it cannot end before
  // the release file exists).
  ASSERT_TRUE(Eventually(
      [&] {
        return follower->Stdout().find("first-line") != std::string::npos ||
               !follower->Running();
      },
      absl::Seconds(30)))
      << follower->Output();
  EXPECT_NE(follower->Stdout().find("first-line"), std::string::npos)
      << follower->Output();
  EXPECT_TRUE(follower->Running()) << follower->Output();
  EXPECT_EQ(follower->Stdout().find("last-line"), std::string::npos);
  EXPECT_EQ(Status(task)->state(), "running");

  std::ofstream(release) << "go";
  EXPECT_EQ(follower->Wait(absl::Seconds(60)), 0) << follower->Output();
  EXPECT_NE(follower->Stdout().find("last-line"), std::string::npos)
      << follower->Output();
  EXPECT_NE(follower->Stderr().find("completed"), std::string::npos)
      << follower->Output();
  v1::TaskStatus status = WaitResolved(task);
  EXPECT_EQ(status.state(), "completed") << Describe(status);
  // Afterwards the whole log is the artifact, in the same order.
  CliResult live = Drover({"artifacts", "get", task, "public/logs/live.log"});
  ASSERT_EQ(live.code, 0) << live;
  size_t first = live.out.find("first-line");
  size_t last = live.out.find("last-line");
  EXPECT_NE(first, std::string::npos) << live.out;
  EXPECT_NE(last, std::string::npos) << live.out;
  EXPECT_LT(first, last);
}

TEST_F(ArtifactsEndToEndTest, MissingArtifactPathFailsWithAnErrorArtifact) {
  auto worker = StartWorker("native-1", NativeEngine());
  const std::string task = CreateTask(
      {{"command", json::array({"sh", "-c", "echo nothing written"})},
       {"maxRunTime", 60},
       {"artifacts", json::array({{{"type", "file"},
                                   {"path", "never/written.txt"},
                                   {"name", "public/written.txt"}},
                                  {{"type", "file"},
                                   {"path", "maybe.txt"},
                                   {"name", "public/maybe.txt"},
                                   {"optional", true}}})}});
  v1::TaskStatus status = WaitResolved(task);
  EXPECT_EQ(status.state(), "failed") << Describe(status);
  CliResult got = Drover({"artifacts", "get", task, "public/written.txt"});
  EXPECT_EQ(got.code, 1) << got;
  EXPECT_NE(got.err.find("file-missing-on-worker"), std::string::npos) << got;
  CliResult listed = Drover({"artifacts", "list", task});
  ASSERT_EQ(listed.code, 0) << listed;
  EXPECT_EQ(listed.out.find("public/maybe.txt"), std::string::npos) << listed;
  CliResult live = Drover({"artifacts", "get", task, "public/logs/live.log"});
  ASSERT_EQ(live.code, 0) << live;
  EXPECT_NE(live.out.find("never/written.txt"), std::string::npos) << live.out;
}

TEST_F(ArtifactsEndToEndTest, MountsAPreviousTasksArtifact) {
  auto worker = StartWorker("native-1", NativeEngine());
  const std::string producer = CreateTask(
      {{"command",
        json::array({"sh", "-c", "echo produced-by-$TASK_ID > result.txt"})},
       {"maxRunTime", 60},
       {"artifacts", json::array({{{"type", "file"},
                                   {"path", "result.txt"},
                                   {"name", "public/result.txt"}}})}});
  ASSERT_EQ(WaitResolved(producer).state(), "completed");

  const std::string consumer = CreateTask(
      {{"command",
        json::array({"sh", "-c", "cp inputs/result.txt copied.txt"})},
       {"maxRunTime", 60},
       {"mounts", json::array({{{"content",
                                 {{"task_id", producer},
                                  {"artifact", "public/result.txt"}}},
                                {"file", "inputs/result.txt"},
                                {"format", "none"}}})},
       {"artifacts", json::array({{{"type", "file"},
                                   {"path", "copied.txt"},
                                   {"name", "public/copied.txt"}}})}});
  v1::TaskStatus status = WaitResolved(consumer);
  ASSERT_EQ(status.state(), "completed") << Describe(status);
  CliResult copied =
      Drover({"artifacts", "get", consumer, "public/copied.txt"});
  ASSERT_EQ(copied.code, 0) << copied;
  EXPECT_EQ(copied.out, "produced-by-" + producer + "\n");

  // An input that does not exist: resource-unavailable, reason in the log.
  const std::string missing = CreateTask(
      {{"command", json::array({"sh", "-c", "echo must not run"})},
       {"maxRunTime", 60},
       {"mounts", json::array({{{"content",
                                 {{"task_id", producer},
                                  {"artifact", "public/absent.txt"}}},
                                {"file", "inputs/absent.txt"},
                                {"format", "none"}}})}});
  status = WaitResolved(missing);
  ASSERT_EQ(status.runs_size(), 1) << Describe(status);
  EXPECT_EQ(status.state(), "exception") << Describe(status);
  EXPECT_EQ(status.runs(0).reason_resolved(), "resource-unavailable")
      << Describe(status);
  CliResult live =
      Drover({"artifacts", "get", missing, "public/logs/live.log"});
  ASSERT_EQ(live.code, 0) << live;
  EXPECT_NE(live.out.find("public/absent.txt"), std::string::npos) << live.out;
  EXPECT_EQ(live.out.find("must not run\n"), std::string::npos) << live.out;
}

TEST_F(ArtifactsEndToEndTest, DockerTaskArtifactsComeOutOfTheContainer) {
  const std::string why = DockerUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << why;
  auto worker = StartWorker(
      "docker-1",
      {{"name", "docker"}, {"config", {{"socket", kDockerSocket}}}});
  // Bytes 0..255 written by busybox printf inside the container.
  const std::string script =
      "mkdir -p out && i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf "
      "%o $i)\"; i=$((i+1)); done > out/bytes.bin && echo "
      "in-container-$TASK_ID";
  const std::string task =
      CreateTask({{"image", kDockerImage},
                  {"command", json::array({"sh", "-c", script})},
                  {"maxRunTime", 120},
                  {"artifacts", json::array({{{"type", "directory"},
                                              {"path", "out"},
                                              {"name", "public/docker"}}})}});
  v1::TaskStatus status = WaitResolved(task, absl::Seconds(180));
  ASSERT_EQ(status.state(), "completed") << Describe(status) << "\n"
                                         << worker->Output();
  std::string expected;
  for (int i = 0; i < 256; ++i) expected.push_back(static_cast<char>(i));
  const fs::path downloaded = test_dir_ / "bytes.bin";
  CliResult got = Drover({"artifacts", "get", task, "public/docker/bytes.bin",
                          "-o", downloaded.string()});
  ASSERT_EQ(got.code, 0) << got;
  EXPECT_TRUE(ReadFile(downloaded) == expected)
      << "got " << ReadFile(downloaded).size() << " bytes";
  CliResult live = Drover({"task", "logs", task});
  ASSERT_EQ(live.code, 0) << live;
  EXPECT_NE(live.out.find("in-container-" + task), std::string::npos)
      << live.out;
}

TEST_F(ArtifactsEndToEndTest, DockerdDownMeansNoClaimsUntilItAnswers) {
  const std::string why = DockerUnavailableReason();
  if (!why.empty()) GTEST_SKIP() << why;
  const fs::path socket = test_dir_ / "docker.sock";  // nothing listens yet
  const int metrics_port = FreePort();
  auto worker = StartWorker(
      "docker-down", {{"name", "docker"}, {"config", {{"socket", socket}}}},
      metrics_port);
  const std::string task = CreateTask(
      {{"image", kDockerImage},
       {"command", json::array({"sh", "-c", "echo dockerd-is-back"})},
       {"maxRunTime", 60}});
  // The worker notices, says so, and leaves the task pending.
  ASSERT_TRUE(Eventually(
      [&] {
        return worker->Stdout().find("unhealthy") != std::string::npos ||
               worker->Stderr().find("unhealthy") != std::string::npos;
      },
      absl::Seconds(30)))
      << worker->Output();
  EXPECT_NE(worker->Output().find(socket.string()), std::string::npos)
      << "the log should name the socket:\n"
      << worker->Output();
  httplib::Client metrics("127.0.0.1", metrics_port);
  auto engine_healthy = [&]() -> std::string {
    auto res = metrics.Get("/metrics");
    if (!res) return "unreachable";
    size_t at = res->body.find("\ndrover_worker_engine_healthy ");
    if (at == std::string::npos) return "absent";
    return res->body.substr(at + 30, 1);
  };
  EXPECT_EQ(engine_healthy(), "0");
  absl::SleepFor(absl::Seconds(3));
  auto pending = Status(task);
  ASSERT_TRUE(pending.has_value());
  EXPECT_EQ(pending->state(), "pending") << Describe(*pending);
  EXPECT_TRUE(worker->Running()) << worker->Output();

  // dockerd appears at the socket: the worker resumes and runs the task.
  DockerSocketProxy proxy(socket);
  ASSERT_TRUE(proxy.Start());
  v1::TaskStatus status = WaitResolved(task, absl::Seconds(120));
  EXPECT_EQ(status.state(), "completed") << Describe(status) << "\n"
                                         << worker->Output();
  ASSERT_EQ(status.runs_size(), 1) << Describe(status);
  EXPECT_EQ(engine_healthy(), "1");
  CliResult live = Drover({"task", "logs", task});
  ASSERT_EQ(live.code, 0) << live;
  EXPECT_NE(live.out.find("dockerd-is-back"), std::string::npos) << live.out;
  worker->Signal(SIGTERM);
  EXPECT_EQ(worker->Wait(absl::Seconds(30)), 0) << worker->Output();
  proxy.Stop();
}

}  // namespace
}  // namespace drover
