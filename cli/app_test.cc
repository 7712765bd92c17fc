// The drover command line run in-process: argument handling, exit codes,
// local errors, and output against a scripted gRPC server on loopback.
// tests/cli_e2e_test.cc runs the real binary against the real drover-queue.
#include "cli/app.h"

#include <chrono>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/rpc/grpc_status.h"
#include "common/slugid.h"
#include "common/status.h"
#include "drover/v1/queue.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/support/e2e_support.h"

namespace drover::cli {
namespace {

using nlohmann::json;

struct Result {
  int code;
  std::string out;
  std::string err;
};

Result RunDrover(const std::vector<std::string>& args,
                 std::map<std::string, std::string> env = {},
                 const std::string& stdin_text = "") {
  std::istringstream in(stdin_text);
  std::ostringstream out;
  std::ostringstream err;
  // A fixed clock keeps created/deadline in dry runs predictable.
  FakeClock clock(absl::FromUnixSeconds(1740830400));  // 2025-03-01T12:00Z
  env.emplace("HOME", "/nonexistent");
  int code = RunCli(args, Streams{in, out, err},
                    client::FixedEnvironment(std::move(env)), clock, "host-1");
  return {code, out.str(), err.str()};
}

TEST(CliUsageTest, NoCommandIsAUsageError) {
  Result r = RunDrover({});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err,
            "error: Usage: A subcommand is required\n"
            "  help: drover [COMMAND...] --help\n");
}

TEST(CliUsageTest, MissingArgumentIsAUsageError) {
  Result r = RunDrover({"task", "status"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_EQ(r.err,
            "error: Usage: TASK_ID is required\n"
            "  help: drover [COMMAND...] --help\n");
  EXPECT_EQ(RunDrover({"task", "frobnicate"}).code, kExitUsage);
  EXPECT_EQ(RunDrover({"queue", "counts"}).code, kExitUsage);
  EXPECT_EQ(RunDrover({"slugid", "-n", "0"}).code, kExitUsage);
}

TEST(CliUsageTest, HelpAndVersionSucceed) {
  Result help = RunDrover({"--help"});
  EXPECT_EQ(help.code, kExitOk);
  EXPECT_NE(help.out.find("task"), std::string::npos);
  EXPECT_NE(help.out.find("--url"), std::string::npos);
  Result create_help = RunDrover({"task", "create", "--help"});
  EXPECT_EQ(create_help.code, kExitOk);
  EXPECT_NE(create_help.out.find("--command"), std::string::npos);
  Result version = RunDrover({"--version"});
  EXPECT_EQ(version.code, kExitOk);
  EXPECT_NE(version.out.find("drover 0.1.0"), std::string::npos);
}

TEST(CliSlugIdTest, PrintsFreshIds) {
  Result r = RunDrover({"slugid", "-n", "3"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::set<std::string> ids;
  while (std::getline(lines, line)) {
    EXPECT_TRUE(IsValidSlugId(line)) << line;
    ids.insert(line);
  }
  EXPECT_EQ(ids.size(), 3u);
}

TEST(CliLocalErrorTest, BadUrlTimeoutAndCredentialsAreUsageErrors) {
  Result url = RunDrover({"--url", "ftp://x:1", "task", "status", "abc"});
  EXPECT_EQ(url.code, kExitUsage);
  EXPECT_EQ(url.err,
            "error: InputError: unknown URL scheme 'ftp'; use host:port, "
            "http:// or https://\n"
            "  field: url\n"
            "  value: ftp://x:1\n");

  Result env_url =
      RunDrover({"task", "status", "abc"}, {{"DROVER_URL", "nohost"}});
  EXPECT_EQ(env_url.code, kExitUsage);
  EXPECT_NE(env_url.err.find("  value: nohost\n"), std::string::npos)
      << env_url.err;

  Result timeout = RunDrover({"--timeout", "soon", "queue", "list"});
  EXPECT_EQ(timeout.code, kExitUsage);
  EXPECT_NE(timeout.err.find("  field: --timeout\n"), std::string::npos);

  Result creds =
      RunDrover({"--credentials", "/nonexistent/c.json", "queue", "list"});
  EXPECT_EQ(creds.code, kExitUsage);
  EXPECT_NE(creds.err.find("  field: credentials\n"), std::string::npos);

  Result half_env = RunDrover({"queue", "list"}, {{"DROVER_CLIENT_ID", "me"}});
  EXPECT_EQ(half_env.code, kExitUsage);
  EXPECT_NE(half_env.err.find("  field: DROVER_ACCESS_TOKEN\n"),
            std::string::npos)
      << half_env.err;
}

TEST(CliLocalErrorTest, UnreachableServerExitsThree) {
  // A loopback port that was just bound and closed, never listened on.
  const int port = tests::support::FreePort();
  ASSERT_NE(port, 0) << "no loopback port could be bound";
  std::string url = "127.0.0.1:" + std::to_string(port);
  Result r = RunDrover({"--timeout", "3s", "task", "status", "abc"},
                       {{"DROVER_URL", url}});
  EXPECT_EQ(r.code, kExitUnavailable);
  EXPECT_EQ(r.err.rfind("error: Unavailable: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find("\n  url: " + url + "\n"), std::string::npos) << r.err;
}

TEST(CliCreateTest, DryRunFromFlags) {
  Result r = RunDrover({"task", "create", "--dry-run", "--queue", "proj/linux",
                        "--name", "hello", "--command", "sh -c 'echo hi'",
                        "--deadline", "+2 hours", "--tag", "kind=demo"},
                       {{"USER", "alice"}});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc, json::parse(R"({
    "taskQueueId": "proj/linux",
    "created": "2025-03-01T12:00:00Z",
    "deadline": "2025-03-01T14:00:00Z",
    "payload": {"command": ["sh", "-c", "echo hi"]},
    "metadata": {"name": "hello", "description": "hello",
                 "owner": "alice@host-1", "source": "http://host-1/drover-cli"},
    "tags": {"kind": "demo"}
  })"));
}

TEST(CliCreateTest, DryRunJsonShowsTheRequest) {
  Result r = RunDrover({"--json", "task", "create", "--dry-run", "--task-id",
                        "fT3xP0vzQ5qYt0m1J7W4Kg", "-q", "a/b", "-n", "x"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["taskId"], "fT3xP0vzQ5qYt0m1J7W4Kg");
  EXPECT_EQ(doc["task"]["taskQueueId"], "a/b");
  EXPECT_EQ(doc["task"]["deadline"], "2025-03-02T12:00:00Z");
}

TEST(CliCreateTest, ReadsStdinAndReportsExactFields) {
  Result ok =
      RunDrover({"task", "create", "-", "--dry-run", "--priority", "high"}, {},
                R"({"taskQueueId": "a/b", "deadline": "+1h",
                          "metadata": {"name": "from-stdin"}})");
  ASSERT_EQ(ok.code, kExitOk) << ok.err;
  json doc = json::parse(ok.out);
  EXPECT_EQ(doc["priority"], "high");
  EXPECT_EQ(doc["deadline"], "2025-03-01T13:00:00Z");
  EXPECT_EQ(doc["metadata"]["name"], "from-stdin");

  Result bad = RunDrover({"task", "create", "-", "--dry-run"}, {},
                         R"({"taskQueueId": "a/b", "dependencies": ["x", 7]})");
  EXPECT_EQ(bad.code, kExitUsage);
  EXPECT_EQ(bad.err,
            "error: InputError: must be a string, got number\n"
            "  field: dependencies[1]\n"
            "  value: 7\n");

  Result not_json = RunDrover({"task", "create", "-"}, {}, "{oops");
  EXPECT_EQ(not_json.code, kExitUsage);
  EXPECT_NE(not_json.err.find("stdin is not valid JSON"), std::string::npos)
      << not_json.err;

  Result missing = RunDrover({"task", "create", "/nonexistent/task.json"});
  EXPECT_EQ(missing.code, kExitUsage);
  EXPECT_EQ(missing.err,
            "error: InputError: cannot read the task file\n"
            "  field: FILE\n"
            "  value: /nonexistent/task.json\n");

  Result bad_flag = RunDrover({"task", "create", "-q", "a/b", "--env", "X"});
  EXPECT_EQ(bad_flag.code, kExitUsage);
  EXPECT_NE(bad_flag.err.find("  field: --env\n"), std::string::npos);
}

// A scripted Queue service for the output of successful calls and of server
// errors; the real server's behaviour is covered by tests/cli_e2e_test.cc.
class ScriptedQueue final : public v1::Queue::Service {
 public:
  grpc::Status GetTaskStatus(grpc::ServerContext*,
                             const v1::TaskIdRequest* request,
                             v1::TaskStatusResponse* response) override {
    if (request->task_id() == "missing") {
      return rpc::ToGrpcStatus(NotFoundError("task", "missing"));
    }
    v1::TaskStatus* s = response->mutable_status();
    s->set_task_id(request->task_id());
    s->set_state("pending");
    s->set_task_queue_id("a/b");
    s->set_retries_left(5);
    v1::RunStatus* run = s->add_runs();
    run->set_state("pending");
    run->set_reason_created("scheduled");
    return grpc::Status::OK;
  }
  grpc::Status CancelTask(grpc::ServerContext*,
                          const v1::TaskIdRequest* request,
                          v1::TaskStatusResponse* response) override {
    v1::TaskStatus* s = response->mutable_status();
    s->set_task_id(request->task_id());
    s->set_state("exception");
    v1::RunStatus* run = s->add_runs();
    run->set_state("exception");
    run->set_reason_created("scheduled");
    run->set_reason_resolved("canceled");
    return grpc::Status::OK;
  }
  grpc::Status ListTaskQueues(grpc::ServerContext*,
                              const v1::ListTaskQueuesRequest* request,
                              v1::ListTaskQueuesResponse* response) override {
    // Two pages: the CLI must follow the continuation token.
    v1::TaskQueueInfo* q = response->add_task_queues();
    if (request->continuation_token().empty()) {
      q->set_task_queue_id("a/first");
      q->set_pending(2);
      response->set_continuation_token("page-2");
    } else {
      q->set_task_queue_id("b/second");
      q->set_claimed(1);
    }
    return grpc::Status::OK;
  }
};

class CliServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    url_ = "127.0.0.1:" + std::to_string(port_);
  }
  void TearDown() override {
    server_->Shutdown(std::chrono::system_clock::now());
  }

  ScriptedQueue service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string url_;
};

TEST_F(CliServerTest, StatusPrintsATableAndJson) {
  Result human = RunDrover({"--url", url_, "task", "status", "t1"});
  ASSERT_EQ(human.code, kExitOk) << human.err;
  EXPECT_EQ(human.out.rfind("task       t1\nstate      pending\n", 0), 0u)
      << human.out;
  EXPECT_NE(human.out.find("\n0    pending  scheduled"), std::string::npos)
      << human.out;

  // --json after the subcommand works too.
  Result machine = RunDrover({"task", "status", "t1", "--json", "--url", url_});
  ASSERT_EQ(machine.code, kExitOk) << machine.err;
  json doc = json::parse(machine.out);
  EXPECT_EQ(doc["status"]["taskId"], "t1");
  EXPECT_EQ(doc["status"]["runs"][0]["reasonCreated"], "scheduled");
  EXPECT_EQ(doc["status"]["retriesLeft"], 5);
}

TEST_F(CliServerTest, ServerErrorsExitOneWithDetails) {
  Result r = RunDrover({"--url", url_, "task", "status", "missing"});
  EXPECT_EQ(r.code, kExitRequestFailed);
  EXPECT_EQ(r.err,
            "error: ResourceNotFound: task missing not found\n"
            "  id: missing\n"
            "  kind: task\n");
  EXPECT_TRUE(r.out.empty());
}

TEST_F(CliServerTest, CancelPrintsOneLine) {
  Result r = RunDrover({"--url", url_, "task", "cancel", "t1"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "t1  exception  run 0: scheduled -> canceled\n");
}

TEST_F(CliServerTest, QueueListFollowsPages) {
  Result r = RunDrover({"--url", url_, "queue", "list"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_EQ(r.out,
            "QUEUE     PENDING  CLAIMED  LAST-ACTIVE\n"
            "a/first   2        0        -\n"
            "b/second  0        1        -\n");
  Result machine = RunDrover({"--url", url_, "--json", "queue", "list"});
  ASSERT_EQ(machine.code, kExitOk) << machine.err;
  json doc = json::parse(machine.out);
  ASSERT_EQ(doc["taskQueues"].size(), 2u);
  EXPECT_EQ(doc["continuationToken"], "");
}

TEST_F(CliServerTest, UnimplementedRpcIsARequestFailure) {
  Result r = RunDrover({"--url", url_, "queue", "counts", "a/b"});
  EXPECT_EQ(r.code, kExitRequestFailed);
  EXPECT_EQ(r.err.rfind("error: Unimplemented: ", 0), 0u) << r.err;
}

}  // namespace
}  // namespace drover::cli
