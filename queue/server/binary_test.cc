// The real drover-queue binary on an embedded PostgreSQL in a temporary
// data directory: serve, talk gRPC, SIGTERM, serve again and find the
// task; `migrate`; refusal of a schema newer than the binary.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/grpc_status.h"
#include "common/slugid.h"
#include "common/testing/temp_dir.h"
#include "drover/v1/queue.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pqxx/pqxx"
#include "queue/store/embedded_postgres.h"
#include "queue/store/migrations.h"

extern char** environ;

namespace drover::queue::server {
namespace {

namespace fs = std::filesystem;

bool PostgresAvailable() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (fs::exists(entry.path() / "bin" / "initdb")) return true;
  }
  return std::system("pg_config --bindir >/dev/null 2>&1") == 0;
}

// A drover-queue child process with its stdout on a pipe and its stderr in
// a file.
class QueueProcess {
 public:
  ~QueueProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) close(stdout_fd_);
  }

  bool Spawn(const std::vector<std::string>& args,
             const std::string& stderr_path) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return false;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO,
                                     stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<std::string> argv_storage = {DROVER_QUEUE_BINARY};
    argv_storage.insert(argv_storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_storage) argv.push_back(a.data());
    argv.push_back(nullptr);
    int rc = posix_spawn(&pid_, DROVER_QUEUE_BINARY, &actions, nullptr,
                         argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(fds[1]);
    stdout_fd_ = fds[0];
    return rc == 0;
  }

  // Reads stdout until a line matches `pattern` or the process exits or
  // `timeout` passes; returns the line.
  std::optional<std::string> WaitForLine(const std::regex& pattern,
                                         std::chrono::seconds timeout) {
    auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      size_t newline;
      while ((newline = buffer_.find('\n')) != std::string::npos) {
        std::string line = buffer_.substr(0, newline);
        buffer_.erase(0, newline + 1);
        if (std::regex_search(line, pattern)) return line;
      }
      pollfd pfd{stdout_fd_, POLLIN, 0};
      if (poll(&pfd, 1, 200) > 0) {
        char chunk[4096];
        ssize_t n = read(stdout_fd_, chunk, sizeof(chunk));
        if (n <= 0) return std::nullopt;  // Exited.
        buffer_.append(chunk, static_cast<size_t>(n));
      }
    }
    return std::nullopt;
  }

  // Waits for the exit; the exit code, or -1 on timeout, 128+N for a
  // signal.
  int Wait(std::chrono::seconds timeout) {
    auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      int status = 0;
      pid_t r = waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        pid_ = -1;
        if (WIFEXITED(status)) return WEXITSTATUS(status);
        if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
        return -2;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
  }

  void Signal(int signo) { kill(pid_, signo); }

 private:
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  std::string buffer_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class DroverQueueBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!PostgresAvailable()) {
      GTEST_SKIP() << "PostgreSQL server binaries (initdb) not installed";
    }
    auto dir = drover::testing::MakeTempDir("drover-queue-binary-");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = dir->string();
    // The PostgreSQL programs may run as the postgres user (when the test
    // runs as root); they must be able to reach the data directory.
    chmod(dir_.c_str(), 0755);
    data_dir_ = dir_ + "/data";
    stderr_path_ = dir_ + "/stderr.log";
  }

  void TearDown() override {
    if (!dir_.empty()) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // Starts `drover-queue` (with `extra` flags) and returns the gRPC port it
  // printed.
  int StartServer(QueueProcess& process, std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {
        "--data-dir",    data_dir_,     "--listen",       "127.0.0.1:0",
        "--http-listen", "127.0.0.1:0", "--poll-timeout", "1s",
        "--log-level",   "info"};
    args.insert(args.end(), extra.begin(), extra.end());
    EXPECT_TRUE(process.Spawn(args, stderr_path_));
    auto line = process.WaitForLine(
        std::regex("gRPC listening on 127\\.0\\.0\\.1:([0-9]+)"),
        std::chrono::seconds(180));
    if (!line) {
      ADD_FAILURE() << "drover-queue did not report its address; stderr:\n"
                    << ReadFile(stderr_path_);
      return 0;
    }
    std::smatch m;
    std::regex_search(*line, m, std::regex("127\\.0\\.0\\.1:([0-9]+)"));
    EXPECT_NE(line->find("embedded PostgreSQL in " + data_dir_),
              std::string::npos)
        << *line;
    return std::stoi(m[1]);
  }

  std::unique_ptr<v1::Queue::Stub> Connect(int port) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                       grpc::InsecureChannelCredentials());
    return v1::Queue::NewStub(channel);
  }

  // Carries the root credentials the server's first start wrote into the
  // data directory (every RPC needs credentials).
  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::seconds(30));
    auto root = nlohmann::json::parse(
        ReadFile(data_dir_ + "/root-credentials.json"), nullptr, false);
    EXPECT_TRUE(root.is_object()) << "no root credentials in " << data_dir_;
    if (root.is_object()) {
      context->AddMetadata("drover-client-id",
                           root.value("clientId", std::string()));
      context->AddMetadata("drover-access-token",
                           root.value("accessToken", std::string()));
    }
    return context;
  }

  // libpq connection string of the running server's embedded cluster,
  // through its unix socket.
  std::string ClusterConnectionString() const {
    return "host=" +
           store::EmbeddedPostgres::ChooseSocketDir(
               fs::absolute(data_dir_).string(), 5432, "/tmp") +
           " port=5432 dbname=drover user=drover";
  }

  void StopWithSigterm(QueueProcess& process) {
    process.Signal(SIGTERM);
    EXPECT_EQ(process.Wait(std::chrono::seconds(120)), 0)
        << "stderr:\n"
        << ReadFile(stderr_path_);
    // The embedded cluster was shut down with the server.
    std::string cluster = data_dir_ + "/postgres";
    EXPECT_TRUE(fs::exists(cluster + "/PG_VERSION"));
    EXPECT_FALSE(fs::exists(cluster + "/postmaster.pid"));
  }

  std::string dir_;
  std::string data_dir_;
  std::string stderr_path_;
};

TEST_F(DroverQueueBinaryTest,
       FirstStartWritesRootCredentialsAndRefusesAnonymous) {
  QueueProcess process;
  int port = StartServer(process);
  ASSERT_GT(port, 0);
  const std::string file = data_dir_ + "/root-credentials.json";
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0) << file;
  EXPECT_EQ(st.st_mode & 0777, 0600);
  const std::string token =
      nlohmann::json::parse(ReadFile(file)).value("accessToken", "");
  ASSERT_FALSE(token.empty());
  // The token is in the file only: never in the server's log.
  EXPECT_EQ(ReadFile(stderr_path_).find(token), std::string::npos);
  auto stub = Connect(port);
  v1::TaskIdRequest id;
  id.set_task_id(NewSlugId());
  v1::GetTaskResponse got;
  grpc::ClientContext anonymous;
  anonymous.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
  grpc::Status status = stub->GetTask(&anonymous, id, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::PERMISSION_DENIED)
      << status.error_message();
  status = stub->GetTask(Context().get(), id, &got);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND)
      << status.error_message();
  StopWithSigterm(process);
}

TEST_F(DroverQueueBinaryTest, ServesStopsOnSigtermAndKeepsTasksAcrossRestarts) {
  const std::string task_id = NewSlugId();
  {
    QueueProcess process;
    int port = StartServer(process);
    ASSERT_GT(port, 0);
    auto stub = Connect(port);
    v1::CreateTaskRequest request;
    request.set_task_id(task_id);
    auto* task = request.mutable_task();
    task->set_task_queue_id("binary-test/worker");
    absl::Time now = absl::Now();
    task->mutable_created()->set_seconds(absl::ToUnixSeconds(now));
    task->mutable_deadline()->set_seconds(absl::ToUnixSeconds(now) + 3600);
    task->set_payload(R"({"n":1})");
    task->mutable_metadata()->set_name("survivor");
    task->mutable_metadata()->set_description("must outlive a restart");
    task->mutable_metadata()->set_owner("tests@example.com");
    task->mutable_metadata()->set_source("https://example.com/binary");
    v1::CreateTaskResponse response;
    grpc::Status status = stub->CreateTask(Context().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status().state(), "pending");
    StopWithSigterm(process);
  }
  EXPECT_NE(ReadFile(stderr_path_).find("shutting down"), std::string::npos);
  {
    QueueProcess process;
    int port = StartServer(process);
    ASSERT_GT(port, 0);
    auto stub = Connect(port);
    v1::TaskIdRequest id;
    id.set_task_id(task_id);
    v1::GetTaskResponse got;
    grpc::Status status = stub->GetTask(Context().get(), id, &got);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(got.task().metadata().name(), "survivor");
    v1::ClaimWorkRequest claim;
    claim.set_task_queue_id("binary-test/worker");
    claim.set_worker_group("g");
    claim.set_worker_id("w");
    claim.set_max_tasks(1);
    v1::ClaimWorkResponse claimed;
    status = stub->ClaimWork(Context().get(), claim, &claimed);
    ASSERT_TRUE(status.ok()) << status.error_message();
    ASSERT_EQ(claimed.tasks_size(), 1);
    EXPECT_EQ(claimed.tasks(0).task_id(), task_id);
    StopWithSigterm(process);
  }
}

TEST_F(DroverQueueBinaryTest, EmbeddedClusterRunsWithItsSettings) {
  QueueProcess process;
  int port = StartServer(
      process, {"--embedded-postgres-setting", "work_mem=7MB",
                "--embedded-postgres-setting", "checkpoint_timeout=20min"});
  ASSERT_GT(port, 0);
  try {
    pqxx::connection conn(ClusterConnectionString());
    pqxx::nontransaction txn(conn);
    auto show = [&](const std::string& name) {
      return txn.exec1("SHOW " + txn.quote_name(name))[0].as<std::string>();
    };
    EXPECT_EQ(show("max_wal_size"), "4GB");          // default
    EXPECT_EQ(show("checkpoint_timeout"), "20min");  // overridden
    EXPECT_EQ(show("work_mem"), "7MB");              // added
  } catch (const std::exception& e) {
    FAIL() << "cannot reach the embedded cluster: " << e.what();
  }
  StopWithSigterm(process);
}

TEST_F(DroverQueueBinaryTest, ABadEmbeddedSettingStopsTheStartWithItsReason) {
  QueueProcess process;
  ASSERT_TRUE(process.Spawn(
      {"--data-dir", data_dir_, "--listen", "127.0.0.1:0", "--http-listen", "",
       "--embedded-postgres-setting", "max_wal_size=banana"},
      stderr_path_));
  EXPECT_EQ(process.Wait(std::chrono::seconds(180)), 1);
  const std::string err = ReadFile(stderr_path_);
  EXPECT_NE(err.find("invalid value for parameter \"max_wal_size\""),
            std::string::npos)
      << err;
  // Nothing is left running on the data directory.
  EXPECT_FALSE(fs::exists(data_dir_ + "/postgres/postmaster.pid"));
}

TEST_F(DroverQueueBinaryTest, MigrateThenRefuseANewerSchema) {
  {
    QueueProcess process;
    ASSERT_TRUE(
        process.Spawn({"migrate", "--data-dir", data_dir_}, stderr_path_));
    auto line = process.WaitForLine(std::regex("schema version ([0-9]+)"),
                                    std::chrono::seconds(180));
    ASSERT_TRUE(line) << ReadFile(stderr_path_);
    EXPECT_NE(line->find(absl::StrCat("schema version ",
                                      store::LatestKnownSchemaVersion())),
              std::string::npos)
        << *line;
    EXPECT_EQ(process.Wait(std::chrono::seconds(60)), 0);
  }
  // Record a migration from the future while a server runs, through the
  // cluster's unix socket.
  {
    QueueProcess process;
    int port = StartServer(process);
    ASSERT_GT(port, 0);
    try {
      pqxx::connection conn(ClusterConnectionString());
      pqxx::work txn(conn);
      txn.exec(
          "INSERT INTO schema_migrations (version, name) VALUES (9999, "
          "'from_the_future')");
      txn.commit();
    } catch (const std::exception& e) {
      FAIL() << "cannot reach the embedded cluster: " << e.what();
    }
    StopWithSigterm(process);
  }
  QueueProcess process;
  ASSERT_TRUE(process.Spawn(
      {"--data-dir", data_dir_, "--listen", "127.0.0.1:0", "--http-listen", ""},
      stderr_path_));
  EXPECT_EQ(process.Wait(std::chrono::seconds(120)), 1);
  std::string err = ReadFile(stderr_path_);
  EXPECT_NE(err.find("9999"), std::string::npos) << err;
  EXPECT_NE(err.find(absl::StrCat("(", store::LatestKnownSchemaVersion(), ")")),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("RequestConflict"), std::string::npos) << err;
}

}  // namespace
}  // namespace drover::queue::server
