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
// exception/resource-unavailable.
//
// Docker engine (skipped, saying why, when dockerd does not answer on
// /var/run/docker.sock or the test image is missing): a task's files come
// out of the container as artifacts; and with the worker pointed at a
// socket where nothing listens, the worker reports itself unhealthy and
// claims nothing (the task stays pending, nothing lost) until a dockerd
// answers there, then runs it.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/connection.h"
#include "client/credentials.h"
#include "client/queue_client.h"
#include "client/task_json.h"
#include "common/rpc/grpc_status.h"
#include "drover/v1/auth.grpc.pb.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

extern char** environ;

namespace drover {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr char kDockerSocket[] = "/var/run/docker.sock";
constexpr char kDockerImage[] = "drover-test/busybox:latest";

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

template <typename Condition>
bool Eventually(Condition condition, absl::Duration timeout,
                absl::Duration step = absl::Milliseconds(100)) {
  const absl::Time give_up = absl::Now() + timeout;
  while (absl::Now() < give_up) {
    if (condition()) return true;
    absl::SleepFor(step);
  }
  return condition();
}

bool PostgresAvailable() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (fs::exists(entry.path() / "bin" / "initdb")) return true;
  }
  return std::system("pg_config --bindir >/dev/null 2>&1") == 0;
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

int ConnectUnix(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// One HTTP/1.0 request to dockerd; the raw response ("" when unreachable).
std::string DockerRequest(const std::string& target) {
  int fd = ConnectUnix(kDockerSocket);
  if (fd < 0) return "";
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  const std::string request =
      "GET " + target + " HTTP/1.0\r\nHost: docker\r\n\r\n";
  std::string response;
  if (write(fd, request.data(), request.size()) ==
      static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0)
      response.append(buffer, n);
  }
  close(fd);
  return response;
}

// Why docker tests cannot run here, or "" when they can.
std::string DockerUnavailableReason() {
  std::string ping = DockerRequest("/_ping");
  if (ping.find("200 OK") == std::string::npos) {
    return std::string("dockerd does not answer on ") + kDockerSocket +
           " (start it with scripts/start-docker.sh)";
  }
  std::string image =
      DockerRequest(std::string("/images/") + kDockerImage + "/json");
  if (image.find("200 OK") == std::string::npos) {
    return std::string("the test image ") + kDockerImage +
           " is missing (build it with scripts/make-test-images.sh)";
  }
  return "";
}

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

// A child process with stdout and stderr in files and its own environment.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  bool Spawn(const std::vector<std::string>& argv,
             const std::vector<std::string>& env, const fs::path& out,
             const fs::path& err) {
    out_ = out;
    err_ = err;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null",
                                     O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    int rc = posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(),
                         envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) pid_ = -1;
    return rc == 0;
  }

  // Exit code, 128+N after signal N, -1 on timeout.
  int Wait(absl::Duration timeout) {
    const absl::Time give_up = absl::Now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        exit_code_ =
            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (absl::Now() > give_up) return -1;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return exit_code_;
  }

  bool Running() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    return true;
  }

  void Signal(int signo) {
    if (pid_ > 0) kill(pid_, signo);
  }
  std::string Stdout() const { return ReadFile(out_); }
  std::string Stderr() const { return ReadFile(err_); }
  std::string Output() const {
    return "stdout:\n" + Stdout() + "\nstderr:\n" + Stderr();
  }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  fs::path out_;
  fs::path err_;
};

// The test's environment without DROVER_* variables, plus `extra`.
std::vector<std::string> ChildEnvironment(
    const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    if (entry.rfind("DROVER_", 0) == 0 || entry.rfind("HOME=", 0) == 0) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};

std::ostream& operator<<(std::ostream& os, const CliResult& r) {
  return os << "exit " << r.code << "\n--- stdout\n"
            << r.out << "\n--- stderr\n"
            << r.err;
}

bool IsResolved(const std::string& state) {
  return state == "completed" || state == "failed" || state == "exception";
}

std::string Describe(const v1::TaskStatus& status) {
  std::string text = status.task_id() + " " + status.state() + ":";
  for (const auto& run : status.runs()) {
    absl::StrAppend(&text, " [run ", run.run_id(), " ", run.state(), "/",
                    run.reason_resolved(), " on ", run.worker_id(), "]");
  }
  return text;
}

class ArtifactsEndToEndTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!PostgresAvailable()) {
      skip_reason_ = "PostgreSQL server binaries (initdb) are not installed";
      return;
    }
    std::string pattern = "/tmp/drover-artifacts-e2e-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) {
      setup_error_ = "mkdtemp failed";
      return;
    }
    dir_ = pattern;
    // The embedded PostgreSQL may run as the postgres user (tests as root).
    chmod(dir_.c_str(), 0755);
    fs::create_directories(dir_ / "home");
    grpc_port_ = FreePort();
    queue_ = new Child();
    std::vector<std::string> argv = {DROVER_QUEUE_BINARY,
                                     "--data-dir",
                                     (dir_ / "data").string(),
                                     "--listen",
                                     url(),
                                     "--http-listen",
                                     "127.0.0.1:0",
                                     "--claim-timeout",
                                     "20s",
                                     "--poll-timeout",
                                     "5s",
                                     "--log-level",
                                     "info"};
    if (!queue_->Spawn(argv, ChildEnvironment({}), dir_ / "queue.out",
                       dir_ / "queue.err")) {
      setup_error_ = "cannot start " DROVER_QUEUE_BINARY;
      return;
    }
    const fs::path credentials_file = dir_ / "data" / "root-credentials.json";
    Eventually(
        [&] {
          return !queue_->Running() ||
                 (fs::exists(credentials_file) &&
                  queue_->Stdout().find("listening") != std::string::npos);
        },
        absl::Seconds(300), absl::Milliseconds(250));
    if (!queue_->Running() || !fs::exists(credentials_file)) {
      setup_error_ = "drover-queue did not come up:\n" + queue_->Output();
      return;
    }
    auto credentials = client::ReadCredentialsFile(credentials_file.string());
    if (!credentials.ok()) {
      setup_error_ = credentials.status().ToString();
      return;
    }
    client::ConnectionOptions options;
    options.url = url();
    options.credentials = *credentials;
    auto connection = client::Connection::Create(options);
    if (!connection.ok()) {
      setup_error_ = connection.status().ToString();
      return;
    }
    client_ = new client::QueueClient(*connection);
    absl::Status last;
    bool ready = Eventually(
        [&] {
          v1::ListTaskQueuesRequest request;
          client::CallOptions quick;
          quick.timeout = absl::Seconds(2);
          quick.retry.max_attempts = 1;
          last = client_->ListTaskQueues(request, quick).status();
          return last.ok() || !queue_->Running();
        },
        absl::Seconds(120), absl::Milliseconds(250));
    if (!ready || !last.ok()) {
      setup_error_ = "drover-queue did not answer (" + last.ToString() +
                     "):\n" + queue_->Output();
    }
  }

  static void TearDownTestSuite() {
    delete client_;
    client_ = nullptr;
    if (queue_ != nullptr) {
      queue_->Signal(SIGTERM);
      queue_->Wait(absl::Seconds(120));
      delete queue_;
      queue_ = nullptr;
    }
    std::error_code ec;
    if (!dir_.empty() && std::getenv("DROVER_KEEP_TEST_DIR") == nullptr) {
      fs::remove_all(dir_, ec);
    }
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    test_dir_ = dir_ / info->name();
    fs::create_directories(test_dir_);
    chmod(test_dir_.c_str(), 0755);
    pool_ = absl::StrCat("e2e/", std::string(info->name()).substr(0, 38));
  }

  static std::string url() { return absl::StrCat("127.0.0.1:", grpc_port_); }

  // A permanent client holding `scopes`; returns its access token.
  static absl::StatusOr<std::string> CreateClient(
      const std::string& client_id, const std::vector<std::string>& scopes) {
    v1::CreateClientRequest request;
    request.set_client_id(client_id);
    request.set_description("artifacts end-to-end test");
    for (const auto& scope : scopes) request.add_scopes(scope);
    request.mutable_expires()->set_seconds(
        absl::ToUnixSeconds(absl::Now() + absl::Hours(24)));
    grpc::ClientContext context;
    client_->connection().PrepareContext(&context,
                                         absl::Now() + absl::Seconds(30));
    v1::CreateClientResponse response;
    grpc::Status status = v1::Auth::NewStub(client_->connection().channel())
                              ->CreateClient(&context, request, &response);
    if (!status.ok()) return rpc::FromGrpcStatus(status);
    return response.access_token();
  }

  // Starts a worker with every artifact-moving plugin on `engine`; waits
  // until it serves.
  std::unique_ptr<Child> StartWorker(const std::string& worker_id,
                                     const json& engine, int metrics_port = 0) {
    const std::string client_id = "worker/" + pool_ + "/" + worker_id;
    auto token = CreateClient(client_id, {"queue:claim-work:" + pool_,
                                          "queue:worker-id:e2e/" + worker_id});
    EXPECT_TRUE(token.ok()) << token.status();
    json plugins = json::object();
    json config = {
        {"queue_url", url()},
        {"worker_pool_id", pool_},
        {"worker_group", "e2e"},
        {"worker_id", worker_id},
        {"capacity", 2},
        {"credentials",
         {{"client_id", client_id}, {"access_token", token.value_or("")}}},
        {"engine", engine},
        {"work_dir", (test_dir_ / ("work-" + worker_id)).string()},
        {"shutdown_grace_seconds", 10},
        {"log_level", "debug"}};
    if (metrics_port > 0) {
      config["metrics_listen"] = absl::StrCat("127.0.0.1:", metrics_port);
    }
    // Written by hand to keep the hook order (nlohmann::json sorts keys).
    std::string text = config.dump(2);
    text.insert(text.rfind('}'),
                ",\n  \"plugins\": {\"logprefix\": {}, \"env\": {}, "
                "\"maxruntime\": {}, \"exit-status\": {}, \"mounts\": {}, "
                "\"artifacts\": {}, \"livelog\": {}}\n");
    const fs::path config_file = test_dir_ / (worker_id + ".json");
    std::ofstream(config_file) << text;
    auto child = std::make_unique<Child>();
    EXPECT_TRUE(
        child->Spawn({DROVER_WORKER_BINARY, "--config", config_file.string()},
                     ChildEnvironment({}), test_dir_ / (worker_id + ".out"),
                     test_dir_ / (worker_id + ".err")));
    bool serving = Eventually(
        [&] {
          return !child->Running() ||
                 child->Stdout().find("serving") != std::string::npos;
        },
        absl::Seconds(60));
    EXPECT_TRUE(serving && child->Running()) << child->Output();
    return child;
  }

  static json NativeEngine() {
    return {{"name", "native"}, {"config", {{"kill_grace_seconds", 1}}}};
  }

  std::string CreateTask(const json& payload) {
    json doc = {{"taskQueueId", pool_},
                {"deadline", "+1 hour"},
                {"retries", 0},
                {"payload", payload},
                {"metadata",
                 {{"name", "artifacts end-to-end test"},
                  {"description", "run by the real drover-worker"},
                  {"owner", "tests@example.com"},
                  {"source", "https://example.com/artifacts-e2e"}}}};
    auto task = client::TaskDefinitionFromJson(doc, absl::Now());
    EXPECT_TRUE(task.ok()) << task.status();
    v1::CreateTaskRequest request;
    request.set_task_id(client::NewTaskId());
    *request.mutable_task() = *task;
    auto created = client_->CreateTask(request);
    EXPECT_TRUE(created.ok()) << created.status();
    return request.task_id();
  }

  static std::optional<v1::TaskStatus> Status(const std::string& task_id) {
    v1::TaskIdRequest request;
    request.set_task_id(task_id);
    auto status = client_->GetTaskStatus(request);
    if (!status.ok()) return std::nullopt;
    return status->status();
  }

  static v1::TaskStatus WaitResolved(
      const std::string& task_id, absl::Duration timeout = absl::Seconds(120)) {
    std::optional<v1::TaskStatus> status;
    Eventually(
        [&] {
          status = Status(task_id);
          return status && IsResolved(status->state());
        },
        timeout, absl::Milliseconds(200));
    return status.value_or(v1::TaskStatus());
  }

  // Runs the real `drover` CLI; `root` uses the bootstrapped root
  // credentials, otherwise it calls anonymously.
  CliResult Drover(const std::vector<std::string>& args, bool root = true) {
    const fs::path base = test_dir_ / absl::StrCat("cli-", cli_calls_++);
    std::vector<std::string> argv = {DROVER_CLI_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<std::string> extra = {"DROVER_URL=" + url(),
                                      "HOME=" + (dir_ / "home").string()};
    if (root) {
      extra.push_back("DROVER_CREDENTIALS_FILE=" +
                      (dir_ / "data" / "root-credentials.json").string());
    }
    Child cli;
    CliResult result;
    if (!cli.Spawn(argv, ChildEnvironment(extra), base.string() + ".out",
                   base.string() + ".err")) {
      return result;
    }
    result.code = cli.Wait(absl::Seconds(60));
    result.out = cli.Stdout();
    result.err = cli.Stderr();
    return result;
  }

  // `drover` started in the background (for `task logs -f`).
  std::unique_ptr<Child> DroverInBackground(
      const std::vector<std::string>& args) {
    const fs::path base = test_dir_ / absl::StrCat("cli-", cli_calls_++);
    std::vector<std::string> argv = {DROVER_CLI_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    auto cli = std::make_unique<Child>();
    EXPECT_TRUE(cli->Spawn(
        argv,
        ChildEnvironment(
            {"DROVER_URL=" + url(), "HOME=" + (dir_ / "home").string(),
             "DROVER_CREDENTIALS_FILE=" +
                 (dir_ / "data" / "root-credentials.json").string()}),
        base.string() + ".out", base.string() + ".err"));
    return cli;
  }

  static inline std::string skip_reason_;
  static inline std::string setup_error_;
  static inline fs::path dir_;
  static inline int grpc_port_ = 0;
  static inline Child* queue_ = nullptr;
  static inline client::QueueClient* client_ = nullptr;
  fs::path test_dir_;
  std::string pool_;
  int cli_calls_ = 0;
};

std::string RandomBytes(size_t n) {
  std::mt19937_64 rng(std::random_device{}());
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

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
