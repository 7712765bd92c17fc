// `drover artifacts list|get` and `drover task logs` run in-process against
// a real queue (PostgreSQL, filesystem blob store over HTTP, gRPC).
#include "cli/commands/artifacts.h"

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/commands/logs.h"
#include "common/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "queue/artifacts/testing/artifacts_test_env.h"

namespace drover::cli::commands {
namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code = 0;
  std::string out;
  std::string err;
};

class CliArtifactsTest : public ::testing::Test {
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
    auto task = env_->StartRunningTask();
    ASSERT_TRUE(task.ok());
    task_id_ = *task;
    auto connection = client::Connection::Create(
        {.url = env_->grpc_target(), .ca_file = "", .credentials = {}});
    ASSERT_TRUE(connection.ok());
    client_ = std::make_unique<client::ArtifactsClient>(*connection);
  }

  Result Drover(std::vector<std::string> args) {
    std::istringstream in;
    std::ostringstream out, err;
    Context context({in, out, err}, client::FixedEnvironment({}), clock_,
                    "test-host");
    context.options().url = env_->grpc_target();
    CLI::App app("drover");
    app.require_subcommand(1);
    app.fallthrough();
    AddArtifactCommands(app, context);
    CLI::App* task = app.add_subcommand("task")->require_subcommand(1);
    AddTaskLogsCommand(*task, context);
    app.add_flag("--json", context.options().json);
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    Result result;
    try {
      app.parse(reversed);
      result.exit_code = context.exit_code();
    } catch (const CLI::ParseError& e) {
      result.exit_code = kExitUsage;
      err << e.what();
    }
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  void Put(const std::string& name, const std::string& content) {
    auto file = std::filesystem::temp_directory_path() /
                absl::StrCat("drover-cli-test-", task_id_);
    std::ofstream(file, std::ios::binary) << content;
    client::BlobArtifactUpload upload;
    upload.task_id = task_id_;
    upload.name = name;
    upload.content_type = "application/octet-stream";
    upload.file = file;
    auto uploaded = client::UploadBlobArtifact(*client_, upload);
    ASSERT_TRUE(uploaded.ok()) << uploaded.status();
    std::filesystem::remove(file);
  }

  SystemClock clock_;
  std::unique_ptr<queue::artifacts::testing::ArtifactsTestEnv> env_;
  std::unique_ptr<client::ArtifactsClient> client_;
  std::string task_id_;
};

TEST_F(CliArtifactsTest, ListAndGet) {
  Put("public/hello.txt", "hello, world\n");
  std::string big(3 << 20, 'b');
  Put("public/big.bin", big);
  v1::CreateArtifactRequest error;
  error.set_task_id(task_id_);
  error.set_name("public/missing.txt");
  error.mutable_error()->set_reason("file-missing-on-worker");
  error.mutable_error()->set_message("path missing.txt does not exist");
  ASSERT_TRUE(client_->CreateArtifact(error).ok());

  Result list = Drover({"artifacts", "list", task_id_});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_THAT(list.out,
              ::testing::ContainsRegex("public/hello.txt +blob +13 B"));
  EXPECT_THAT(list.out, HasSubstr("3.0 MiB"));
  EXPECT_THAT(list.out, HasSubstr("file-missing-on-worker"));
  Result json =
      Drover({"artifacts", "list", task_id_, "--json", "--page-size", "1"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"name\": \"public/missing.txt\""));

  Result get = Drover({"artifacts", "get", task_id_, "public/hello.txt"});
  ASSERT_EQ(get.exit_code, 0) << get.err;
  EXPECT_EQ(get.out, "hello, world\n");

  const auto out_file = std::filesystem::temp_directory_path() /
                        absl::StrCat("drover-cli-out-", task_id_);
  Result to_file = Drover({"artifacts", "get", task_id_, "public/big.bin", "-o",
                           out_file.string(), "--run", "0"});
  ASSERT_EQ(to_file.exit_code, 0) << to_file.err;
  EXPECT_THAT(to_file.err, HasSubstr("3.0 MiB / 3.0 MiB (100%)"));
  std::ifstream in(out_file, std::ios::binary);
  std::string written((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
  EXPECT_EQ(written, big);
  std::filesystem::remove(out_file);

  Result failed = Drover({"artifacts", "get", task_id_, "public/missing.txt"});
  EXPECT_EQ(failed.exit_code, kExitRequestFailed);
  EXPECT_THAT(failed.err, HasSubstr("file-missing-on-worker"));
  Result unknown = Drover({"artifacts", "get", task_id_, "public/nope"});
  EXPECT_EQ(unknown.exit_code, kExitRequestFailed);
  EXPECT_THAT(unknown.err, HasSubstr("ResourceNotFound"));
}

TEST_F(CliArtifactsTest, TaskLogsPrintsAndFollowsUntilTheRunResolves) {
  int64_t offset = 0;
  auto append = [&](const std::string& text) {
    v1::AppendLogRequest request;
    request.set_task_id(task_id_);
    request.set_offset(offset);
    request.set_data(text);
    auto appended = client_->AppendLog(request);
    ASSERT_TRUE(appended.ok()) << appended.status();
    offset = appended->length();
  };
  append("first\n");
  Result now = Drover({"task", "logs", task_id_});
  ASSERT_EQ(now.exit_code, 0) << now.err;
  EXPECT_EQ(now.out, "first\n");

  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    append("second\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    append("third\n");
    ASSERT_TRUE(env_->ResolveRun(task_id_, 0).ok());
  });
  Result followed = Drover({"task", "logs", task_id_, "-f"});
  writer.join();
  ASSERT_EQ(followed.exit_code, 0) << followed.err;
  EXPECT_EQ(followed.out, "first\nsecond\nthird\n");
  EXPECT_THAT(followed.err, HasSubstr("[drover] run 0 completed"));
}

}  // namespace
}  // namespace drover::cli::commands
