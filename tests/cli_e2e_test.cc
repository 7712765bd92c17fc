// End to end: the real `drover` binary against a real drover-queue running
// on its embedded PostgreSQL, over gRPC on loopback. Checks what a person or
// a CI script sees: exit codes, the task id on stdout, JSON output, tables
// and error lines.
//
// One server serves the whole suite (initdb takes seconds). It listens on
// port 0 and the test reads the bound port from its startup line. When the
// PostgreSQL server binaries are not installed the suite is skipped with
// the server's own explanation.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/slugid.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/e2e_support.h"

extern char** environ;

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using tests::support::CliResult;
using tests::support::ReadFile;

// The test's environment minus every DROVER_* variable (both binaries read
// their configuration from those), plus `extra`.
std::vector<std::string> ChildEnvironment(
    const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("DROVER_", 0) == 0) continue;
    env.emplace_back(*e);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// Starts argv[0] with stdin/stdout/stderr redirected to files.
pid_t Spawn(const std::vector<std::string>& argv,
            const std::vector<std::string>& env, const fs::path& in,
            const fs::path& out, const fs::path& err) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in.c_str(), O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(),
                       envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

// Waits up to `timeout`; returns the exit code, or nullopt if still running.
std::optional<int> WaitFor(pid_t pid, absl::Duration timeout) {
  absl::Time until = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    if (absl::Now() >= until) return std::nullopt;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

class CliEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string pattern =
        (fs::temp_directory_path() / "drover-cli-e2e-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      setup_error_ = new std::string("mkdtemp failed");
      return;
    }
    dir_ = new fs::path(pattern);
    // The embedded cluster may run as the `postgres` user, which must be
    // able to reach the data directory inside ours.
    chmod(dir_->c_str(), 0755);
    fs::create_directories(*dir_ / "scratch");
    std::ofstream(*dir_ / "empty");

    std::vector<std::string> argv = {
        DROVER_QUEUE_BINARY, "--data-dir",  (*dir_ / "data").string(),
        "--listen",          "127.0.0.1:0", "--http-listen",
        "127.0.0.1:0",       "--log-level", "warn",
    };
    server_pid_ = Spawn(argv, ChildEnvironment({}), *dir_ / "empty",
                        *dir_ / "server.out", *dir_ / "server.err");
    if (server_pid_ < 0) {
      setup_error_ = new std::string("cannot start " DROVER_QUEUE_BINARY);
      return;
    }
    // Startup line: "drover-queue: gRPC listening on 127.0.0.1:PORT, ...".
    const std::regex listening(R"(gRPC listening on 127\.0\.0\.1:(\d+))");
    absl::Time until = absl::Now() + absl::Seconds(120);
    while (absl::Now() < until) {
      std::smatch match;
      std::string out = ReadFile(*dir_ / "server.out");
      if (std::regex_search(out, match, listening)) {
        url_ = new std::string("127.0.0.1:" + match[1].str());
        break;
      }
      if (auto code = WaitFor(server_pid_, absl::Milliseconds(100))) {
        server_pid_ = -1;
        std::string err = ReadFile(*dir_ / "server.err");
        if (err.find("PostgreSQL server binaries") != std::string::npos) {
          skip_reason_ = new std::string(
              "drover-queue cannot start its embedded PostgreSQL: " + err);
        } else {
          setup_error_ = new std::string("drover-queue exited with " +
                                         std::to_string(*code) +
                                         " before listening:\n" + err);
        }
        return;
      }
    }
    if (url_ == nullptr) {
      setup_error_ = new std::string(
          "drover-queue did not report listening within 120 s:\n" +
          ReadFile(*dir_ / "server.err"));
      return;
    }
    if (!WaitForHealthy(*url_, absl::Seconds(30))) {
      setup_error_ = new std::string(
          "drover-queue never reported SERVING on grpc.health.v1:\n" +
          ReadFile(*dir_ / "server.err"));
    }
  }

  static void TearDownTestSuite() {
    StopServer();
    if (dir_ != nullptr) {
      std::error_code ec;
      fs::remove_all(*dir_, ec);
    }
    delete dir_;
    delete url_;
    delete setup_error_;
    delete skip_reason_;
    dir_ = nullptr;
    url_ = setup_error_ = skip_reason_ = nullptr;
  }

  // SIGTERM for a graceful shutdown (which also stops PostgreSQL), SIGKILL
  // if that takes more than 30 s.
  static std::optional<int> StopServer() {
    if (server_pid_ <= 0) return std::nullopt;
    kill(server_pid_, SIGTERM);
    std::optional<int> code = WaitFor(server_pid_, absl::Seconds(30));
    if (!code) {
      kill(server_pid_, SIGKILL);
      code = WaitFor(server_pid_, absl::Seconds(5));
    }
    server_pid_ = -1;
    return code;
  }

  // Asks the standard health service (serialised by hand: an empty
  // HealthCheckRequest, and a response whose field 1 is the status).
  static bool WaitForHealthy(const std::string& url, absl::Duration timeout) {
    auto channel = grpc::CreateChannel(url, grpc::InsecureChannelCredentials());
    grpc::GenericStub stub(channel);
    absl::Time until = absl::Now() + timeout;
    while (absl::Now() < until) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(2));
      grpc::CompletionQueue cq;
      grpc::ByteBuffer request;
      grpc::Slice empty("", 0);
      request = grpc::ByteBuffer(&empty, 1);
      auto call = stub.PrepareUnaryCall(
          &context, "/grpc.health.v1.Health/Check", request, &cq);
      call->StartCall();
      grpc::ByteBuffer response;
      grpc::Status status;
      call->Finish(&response, &status, reinterpret_cast<void*>(1));
      void* tag = nullptr;
      bool ok = false;
      cq.Next(&tag, &ok);
      cq.Shutdown();
      while (cq.Next(&tag, &ok)) {
      }
      if (status.ok()) {
        std::vector<grpc::Slice> slices;
        response.Dump(&slices);
        std::string bytes;
        for (const auto& s : slices) {
          bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
        }
        // ServingStatus SERVING = 1, encoded as tag 0x08 then varint 1.
        if (bytes == std::string("\x08\x01", 2)) return true;
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  void SetUp() override {
    if (skip_reason_ != nullptr) GTEST_SKIP() << *skip_reason_;
    ASSERT_EQ(setup_error_, nullptr) << *setup_error_;
    ASSERT_NE(url_, nullptr);
  }

  // Runs the drover binary with DROVER_URL pointing at our server, as
  // root.
  CliResult Drover(const std::vector<std::string>& args,
                   const std::string& stdin_text = "") {
    static int counter = 0;
    fs::path base = *dir_ / "scratch" / std::to_string(counter++);
    std::ofstream(base.string() + ".in") << stdin_text;
    std::vector<std::string> argv = {DROVER_CLI_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    // The root credentials the server's first start wrote: every RPC needs
    // credentials.
    pid_t pid = Spawn(
        argv,
        ChildEnvironment(
            {"DROVER_URL=" + *url_,
             "DROVER_CREDENTIALS_FILE=" +
                 (*dir_ / "data" / "root-credentials.json").string()}),
        base.string() + ".in", base.string() + ".out", base.string() + ".err");
    CliResult result;
    if (pid < 0) return result;
    std::optional<int> code = WaitFor(pid, absl::Seconds(60));
    if (!code) {
      kill(pid, SIGKILL);
      WaitFor(pid, absl::Seconds(5));
    }
    result.code = code.value_or(-1);
    result.out = ReadFile(base.string() + ".out");
    result.err = ReadFile(base.string() + ".err");
    return result;
  }

  // Creates a task from flags and returns its id.
  std::string CreateTask(const std::string& queue,
                         std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"task",      "create",    "--queue",
                                     queue,       "--name",    "e2e task",
                                     "--command", "echo hello"};
    args.insert(args.end(), extra.begin(), extra.end());
    CliResult r = Drover(args);
    EXPECT_EQ(r.code, 0) << r;
    EXPECT_TRUE(r.err.empty()) << r;
    std::string id = r.out.substr(0, r.out.find('\n'));
    EXPECT_TRUE(IsValidSlugId(id)) << r;
    EXPECT_EQ(r.out, id + "\n") << r;
    return id;
  }

  json Json(const CliResult& r) {
    json doc = json::parse(r.out, nullptr, /*allow_exceptions=*/false);
    EXPECT_FALSE(doc.is_discarded()) << r;
    return doc;
  }

  static inline fs::path* dir_ = nullptr;
  static inline std::string* url_ = nullptr;
  static inline std::string* setup_error_ = nullptr;
  static inline std::string* skip_reason_ = nullptr;
  static inline pid_t server_pid_ = -1;
};

TEST_F(CliEndToEndTest, CreateStatusGetCancelRerun) {
  const std::string queue = "e2e/lifecycle";
  std::string id = CreateTask(queue, {"--priority", "high", "--tag", "k=v"});

  CliResult status = Drover({"task", "status", id, "--json"});
  ASSERT_EQ(status.code, 0) << status;
  json s = Json(status)["status"];
  EXPECT_EQ(s["taskId"], id);
  EXPECT_EQ(s["taskQueueId"], queue);
  EXPECT_EQ(s["taskGroupId"], id);
  EXPECT_EQ(s["state"], "pending");
  EXPECT_EQ(s["retriesLeft"], 5);
  ASSERT_EQ(s["runs"].size(), 1u) << status;
  EXPECT_EQ(s["runs"][0]["runId"], 0);
  EXPECT_EQ(s["runs"][0]["state"], "pending");
  EXPECT_EQ(s["runs"][0]["reasonCreated"], "scheduled");

  CliResult human = Drover({"task", "status", id});
  ASSERT_EQ(human.code, 0) << human;
  EXPECT_EQ(human.out.rfind("task       " + id + "\nstate      pending\n", 0),
            0u)
      << human;
  EXPECT_NE(human.out.find("\n0    pending  scheduled"), std::string::npos)
      << human;

  CliResult get = Drover({"task", "get", id});
  ASSERT_EQ(get.code, 0) << get;
  json task = Json(get);
  EXPECT_EQ(task["taskQueueId"], queue);
  EXPECT_EQ(task["priority"], "high");
  EXPECT_EQ(task["payload"]["command"], json::parse(R"(["echo", "hello"])"));
  EXPECT_EQ(task["metadata"]["name"], "e2e task");
  EXPECT_EQ(task["tags"]["k"], "v");

  CliResult cancel = Drover({"task", "cancel", id});
  ASSERT_EQ(cancel.code, 0) << cancel;
  EXPECT_EQ(cancel.out, id + "  exception  run 0: scheduled -> canceled\n")
      << cancel;

  CliResult after = Drover({"--json", "task", "status", id});
  ASSERT_EQ(after.code, 0) << after;
  json a = Json(after)["status"];
  EXPECT_EQ(a["state"], "exception");
  EXPECT_EQ(a["runs"][0]["reasonResolved"], "canceled");

  CliResult rerun = Drover({"task", "rerun", id});
  ASSERT_EQ(rerun.code, 0) << rerun;
  EXPECT_EQ(rerun.out, id + "  pending  run 1: rerun\n") << rerun;
}

TEST_F(CliEndToEndTest, GraphSubmittedInStagedBatchesIsCreatedWhole) {
  // Seven tasks in calls of two: three staged batches, two at a time, then
  // the commit; dependencies cross the batches.
  fs::path file = *dir_ / "scratch" / "staged-graph.json";
  json tasks = json::array();
  for (int i = 0; i < 7; ++i) {
    json task = {{"label", "t" + std::to_string(i)}};
    if (i > 0) task["dependencies"] = {"t" + std::to_string(i - 1)};
    tasks.push_back(task);
  }
  std::ofstream(file) << json{{"defaults",
                               {{"taskQueueId", "e2e/staged-graph"},
                                {"payload", {{"command", {"true"}}}}}},
                              {"tasks", tasks}}
                             .dump();
  CliResult r = Drover({"--json", "graph", "submit", file.string(), "--batch",
                        "2"});
  ASSERT_EQ(r.code, 0) << r;
  json doc = Json(r);
  ASSERT_EQ(doc["tasks"].size(), 7u) << r;
  const std::string group = doc["taskGroupId"].get<std::string>();

  CliResult status = Drover({"group", "status", group, "--once"});
  ASSERT_EQ(status.code, 0) << status;
  EXPECT_NE(status.out.find("7 tasks"), std::string::npos) << status;
  EXPECT_NE(status.out.find("pending 1"), std::string::npos) << status;
  EXPECT_NE(status.out.find("unscheduled 6"), std::string::npos) << status;

  CliResult bad = Drover({"graph", "submit", file.string(), "--batch", "0"});
  EXPECT_NE(bad.code, 0) << bad;
}

TEST_F(CliEndToEndTest, QueueCountsAndList) {
  const std::string queue = "e2e/counts";
  std::string first = CreateTask(queue);
  CreateTask(queue);

  CliResult counts = Drover({"queue", "counts", queue});
  ASSERT_EQ(counts.code, 0) << counts;
  EXPECT_EQ(counts.out,
            "QUEUE       PENDING  CLAIMED\n"
            "e2e/counts  2        0\n")
      << counts;

  ASSERT_EQ(Drover({"task", "cancel", first}).code, 0);
  CliResult json_counts = Drover({"queue", "counts", queue, "--json"});
  ASSERT_EQ(json_counts.code, 0) << json_counts;
  json c = Json(json_counts);
  EXPECT_EQ(c["taskQueueId"], queue);
  EXPECT_EQ(c["pending"], "1");  // int64 is a string in protobuf JSON.
  EXPECT_EQ(c["claimed"], "0");

  CliResult list = Drover({"--json", "queue", "list"});
  ASSERT_EQ(list.code, 0) << list;
  bool found = false;
  json queues = Json(list)["taskQueues"];
  for (const auto& q : queues) {
    if (q["taskQueueId"] == queue) {
      found = true;
      EXPECT_EQ(q["pending"], "1");
    }
  }
  EXPECT_TRUE(found) << list;
}

TEST_F(CliEndToEndTest, CreateFromFileIsIdempotentAndConflictsOnChange) {
  std::string id = NewSlugId();
  // Absolute times so that the same file means the same definition.
  absl::Time created = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  json doc = {
      {"taskQueueId", "e2e/file"},
      {"created",
       absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", created, absl::UTCTimeZone())},
      {"deadline", "+1 hour"},
      {"payload", {{"command", {"true"}}}},
      {"metadata",
       {{"name", "from file"},
        {"description", "made by cli_e2e_test"},
        {"owner", "ci@example.com"},
        {"source", "https://example.com/e2e"}}},
  };
  std::string path = (*dir_ / "task.json").string();
  std::ofstream(path) << doc.dump(2);

  CliResult first = Drover({"task", "create", path, "--task-id", id});
  ASSERT_EQ(first.code, 0) << first;
  EXPECT_EQ(first.out, id + "\n");
  CliResult again =
      Drover({"task", "create", "--task-id", id, "-"}, doc.dump());
  ASSERT_EQ(again.code, 0) << again;
  EXPECT_EQ(again.out, id + "\n");

  CliResult changed =
      Drover({"task", "create", path, "--task-id", id, "--priority", "high"});
  EXPECT_EQ(changed.code, 1) << changed;
  EXPECT_EQ(changed.err.rfind("error: RequestConflict: ", 0), 0u) << changed;
  EXPECT_TRUE(changed.out.empty()) << changed;
}

TEST_F(CliEndToEndTest, ServerErrorsNameTheField) {
  CliResult bad_queue =
      Drover({"task", "create", "--queue", "no-slash", "--name", "x"});
  EXPECT_EQ(bad_queue.code, 1) << bad_queue;
  EXPECT_EQ(bad_queue.err.rfind("error: InputError: ", 0), 0u) << bad_queue;
  EXPECT_NE(bad_queue.err.find("\n  field: task.task_queue_id\n"),
            std::string::npos)
      << bad_queue;
  EXPECT_NE(bad_queue.err.find("\n  value: no-slash\n"), std::string::npos)
      << bad_queue;

  std::string unknown = NewSlugId();
  CliResult missing = Drover({"task", "status", unknown});
  EXPECT_EQ(missing.code, 1) << missing;
  EXPECT_EQ(missing.err.rfind("error: ResourceNotFound: ", 0), 0u) << missing;
  EXPECT_NE(missing.err.find(unknown), std::string::npos) << missing;

  CliResult bad_local =
      Drover({"task", "create", "-q", "a/b", "--retries", "x"});
  EXPECT_EQ(bad_local.code, 2) << bad_local;
}

// Runs last (gtest keeps declaration order): stops the server.
TEST_F(CliEndToEndTest, ZzUnreachableServerExitsThree) {
  std::string id = CreateTask("e2e/shutdown");
  std::optional<int> code = StopServer();
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << ReadFile(*dir_ / "server.err");
  CliResult r = Drover({"--timeout", "3s", "task", "status", id});
  EXPECT_EQ(r.code, 3) << r;
  EXPECT_EQ(r.err.rfind("error: Unavailable: ", 0), 0u) << r;
  EXPECT_NE(r.err.find("\n  url: " + *url_ + "\n"), std::string::npos) << r;
}

}  // namespace
}  // namespace drover
