// End to end: the real `drover` binary against a real drover-queue running
// on its embedded PostgreSQL, over gRPC on loopback. Checks what a person or
// a CI script sees: exit codes, the task id on stdout, JSON output, tables
// and error lines.
//
// One server serves the whole suite (initdb takes seconds). It listens on
// port 0 and the test reads the bound port from its startup line. When the
// PostgreSQL server binaries are not installed the suite is skipped with
// the server's own explanation.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
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

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using tests::support::Child;
using tests::support::CliResult;

class CliEndToEndTest : public ::testing::Test {
 protected:
  // Not E2eSuite::Start: this suite checks the server's own way of coming
  // up (the port it reports for --listen 127.0.0.1:0, the health service)
  // and skips with the server's own explanation when PostgreSQL is
  // missing.
  static void SetUpTestSuite() {
    suite_ = new tests::support::E2eSuite();
    if (!suite_->MakeDir("drover-cli-e2e")) return;
    const fs::path& dir = suite_->dir();
    fs::create_directories(dir / "scratch");

    std::vector<std::string> argv = {
        DROVER_QUEUE_BINARY, "--data-dir",  (dir / "data").string(),
        "--listen",          "127.0.0.1:0", "--http-listen",
        "127.0.0.1:0",       "--log-level", "warn",
    };
    server_ = new Child();
    if (!server_->Spawn(argv, dir / "server.out", dir / "server.err")) {
      suite_->Fail("cannot start " DROVER_QUEUE_BINARY);
      return;
    }
    // Startup line: "drover-queue: gRPC listening on 127.0.0.1:PORT, ...".
    const std::regex listening(R"(gRPC listening on 127\.0\.0\.1:(\d+))");
    absl::Time until = absl::Now() + absl::Seconds(120);
    while (absl::Now() < until) {
      std::smatch match;
      std::string out = server_->Stdout();
      if (std::regex_search(out, match, listening)) {
        url_ = "127.0.0.1:" + match[1].str();
        break;
      }
      if (int code = server_->Wait(absl::Milliseconds(100)); code != -1) {
        std::string err = server_->Stderr();
        if (err.find("PostgreSQL server binaries") != std::string::npos) {
          suite_->SkipIf("drover-queue cannot start its embedded PostgreSQL: " +
                         err);
        } else {
          suite_->Fail("drover-queue exited with " + std::to_string(code) +
                       " before listening:\n" + err);
        }
        return;
      }
    }
    if (url_.empty()) {
      suite_->Fail("drover-queue did not report listening within 120 s:\n" +
                   server_->Stderr());
      return;
    }
    if (!WaitForHealthy(url_, absl::Seconds(30))) {
      suite_->Fail("drover-queue never reported SERVING on grpc.health.v1:\n" +
                   server_->Stderr());
    }
  }

  static void TearDownTestSuite() {
    StopServer();
    delete server_;
    server_ = nullptr;
    delete suite_;  // removes the directory
    suite_ = nullptr;
    url_.clear();
  }

  // SIGTERM for a graceful shutdown (which also stops PostgreSQL), SIGKILL
  // if that takes more than 30 s.
  static std::optional<int> StopServer() {
    if (server_ == nullptr || server_->pid() <= 0) return std::nullopt;
    int code = server_->Terminate(absl::Seconds(30));
    if (code == -1) {
      server_->Signal(SIGKILL);
      code = server_->Wait(absl::Seconds(5));
    }
    if (code == -1) return std::nullopt;
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
    if (!suite_->skip_reason().empty()) GTEST_SKIP() << suite_->skip_reason();
    ASSERT_TRUE(suite_->setup_error().empty()) << suite_->setup_error();
    ASSERT_FALSE(url_.empty());
  }

  // Runs the drover binary with DROVER_URL pointing at our server, as
  // root.
  CliResult Drover(const std::vector<std::string>& args,
                   const std::string& stdin_text = "") {
    static int counter = 0;
    fs::path base = suite_->dir() / "scratch" / std::to_string(counter++);
    tests::support::SpawnOptions spawn;
    spawn.stdin_file = base.string() + ".in";
    std::ofstream(spawn.stdin_file) << stdin_text;
    // The root credentials the server's first start wrote: every RPC needs
    // credentials.
    spawn.env = tests::support::CliEnvironment(
        url_, suite_->dir() / "data" / "root-credentials.json", suite_->home());
    return tests::support::RunCli(DROVER_CLI_BINARY, args, base, spawn);
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

  static inline tests::support::E2eSuite* suite_ = nullptr;
  static inline Child* server_ = nullptr;
  static inline std::string url_;
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
  fs::path file = suite_->dir() / "scratch" / "staged-graph.json";
  json tasks = json::array();
  for (int i = 0; i < 7; ++i) {
    json task = {{"label", "t" + std::to_string(i)}};
    if (i > 0) task["dependencies"] = {"t" + std::to_string(i - 1)};
    tasks.push_back(task);
  }
  std::ofstream(file) << json{
      {"defaults",
       {{"taskQueueId", "e2e/staged-graph"},
        {"payload", {{"command", {"true"}}}}}},
      {"tasks", tasks}}.dump();
  CliResult r =
      Drover({"--json", "graph", "submit", file.string(), "--batch", "2"});
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
  std::string path = (suite_->dir() / "task.json").string();
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
  EXPECT_EQ(*code, 0) << server_->Stderr();
  CliResult r = Drover({"--timeout", "3s", "task", "status", id});
  EXPECT_EQ(r.code, 3) << r;
  EXPECT_EQ(r.err.rfind("error: Unavailable: ", 0), 0u) << r;
  EXPECT_NE(r.err.find("\n  url: " + url_ + "\n"), std::string::npos) << r;
}

}  // namespace
}  // namespace drover
