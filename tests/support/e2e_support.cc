#include "tests/support/e2e_support.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "client/artifacts_client.h"
#include "client/auth_client.h"
#include "client/task_json.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"

extern char** environ;

namespace drover::tests::support {

namespace fs = std::filesystem;
using nlohmann::json;

std::ostream& operator<<(std::ostream& os, const CliResult& r) {
  return os << "exit " << r.code << "\n--- stdout\n"
            << r.out << "\n--- stderr\n"
            << r.err;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

bool PostgresAvailable() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    if (fs::exists(entry.path() / "bin" / "initdb")) return true;
  }
  return std::system("pg_config --bindir >/dev/null 2>&1") == 0;
}

std::string PostgresUnavailableReason() {
  if (PostgresAvailable()) return "";
  return "PostgreSQL server binaries (initdb) are not installed";
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

fs::path MakeTempDir(const std::string& prefix) {
  auto dir = drover::testing::MakeTempDir(prefix + "-");
  if (!dir.ok()) {
    ADD_FAILURE() << dir.status();
    return {};
  }
  chmod(dir->c_str(), 0755);
  return *dir;
}

fs::path MakeTestDir(const fs::path& suite_dir) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  fs::path dir = suite_dir / (info != nullptr ? info->name() : "no-test");
  fs::create_directories(dir);
  chmod(dir.c_str(), 0755);
  return dir;
}

std::string PoolForTest(const std::string& prefix) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string name = info != nullptr ? info->name() : "no-test";
  return absl::StrCat(prefix, "/", name.substr(0, 38));
}

void RemoveSuiteDir(const fs::path& dir) {
  if (dir.empty() || std::getenv("DROVER_KEEP_TEST_DIR") != nullptr) return;
  std::error_code ec;
  fs::remove_all(dir, ec);
}

std::string RandomBytes(size_t n) {
  std::mt19937_64 rng(std::random_device{}());
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

std::vector<std::string> ChildEnvironment(
    const std::vector<std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    // The test's own DROVER_* settings must not leak into the binaries
    // under test; HOME is set per test where the CLI needs one.
    if (entry.rfind("DROVER_", 0) == 0 || entry.rfind("HOME=", 0) == 0) {
      continue;
    }
    env.emplace_back(entry);
  }
  env.insert(env.end(), extra.begin(), extra.end());
  return env;
}

// ---- Child -----------------------------------------------------------------

Child::~Child() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

bool Child::Spawn(const std::vector<std::string>& argv, const fs::path& out,
                  const fs::path& err, const SpawnOptions& options) {
  out_ = out;
  err_ = err;
  const int mode =
      O_WRONLY | O_CREAT | (options.append_output ? O_APPEND : O_TRUNC);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  const std::string stdin_file = options.stdin_file.empty()
                                     ? std::string("/dev/null")
                                     : options.stdin_file.string();
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, stdin_file.c_str(),
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), mode,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), mode,
                                   0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> env =
      options.env.has_value() ? *options.env : ChildEnvironment({});
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  int rc = posix_spawn(&pid_, argv[0].c_str(), &actions, nullptr, args.data(),
                       envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) pid_ = -1;
  return rc == 0;
}

int Child::Wait(absl::Duration timeout) {
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

bool Child::Running() {
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

void Child::Signal(int signo) {
  if (pid_ > 0) kill(pid_, signo);
}

int Child::Terminate(absl::Duration timeout) {
  Signal(SIGTERM);
  return Wait(timeout);
}

// ---- QueueServer -----------------------------------------------------------

QueueServer::QueueServer(std::string binary, fs::path dir,
                         std::vector<std::string> extra_flags)
    : binary_(std::move(binary)),
      dir_(std::move(dir)),
      extra_flags_(std::move(extra_flags)),
      port_(FreePort()) {}

QueueServer::~QueueServer() {
  if (process_ && process_->Running()) Stop();
}

std::string QueueServer::url() const {
  return absl::StrCat("127.0.0.1:", port_);
}

fs::path QueueServer::credentials_file() const {
  return dir_ / "data" / "root-credentials.json";
}

std::string QueueServer::Start() {
  process_ = std::make_unique<Child>();
  std::vector<std::string> argv = {
      binary_,       "--data-dir",  (dir_ / "data").string(),
      "--listen",    url(),         "--http-listen",
      "127.0.0.1:0", "--log-level", "info"};
  argv.insert(argv.end(), extra_flags_.begin(), extra_flags_.end());
  SpawnOptions spawn;
  spawn.append_output = true;  // a restart keeps the earlier output
  if (!process_->Spawn(argv, dir_ / "queue.out", dir_ / "queue.err", spawn)) {
    return "cannot start " + binary_;
  }
  // The first start bootstraps a root client and writes its credentials
  // into the data directory; every call needs credentials.
  const fs::path file = credentials_file();
  Eventually(
      [&] {
        return !process_->Running() ||
               (fs::exists(file) &&
                process_->Stdout().find("listening") != std::string::npos);
      },
      absl::Seconds(300), absl::Milliseconds(250));
  if (!process_->Running() || !fs::exists(file)) {
    return "drover-queue did not come up:\n" + process_->Output();
  }
  auto credentials = client::ReadCredentialsFile(file.string());
  if (!credentials.ok()) return credentials.status().ToString();
  credentials_ = *credentials;
  client::ConnectionOptions options;
  options.url = url();
  options.credentials = credentials_;
  auto connection = client::Connection::Create(options);
  if (!connection.ok()) return connection.status().ToString();
  connection_ = *connection;
  client_ = std::make_unique<client::QueueClient>(connection_);
  worker_manager_ = std::make_unique<client::WorkerManagerClient>(connection_);
  absl::Status last;
  bool ready = Eventually(
      [&] {
        if (!process_->Running()) return true;
        v1::ListTaskQueuesRequest request;
        client::CallOptions quick;
        quick.timeout = absl::Seconds(2);
        quick.retry.max_attempts = 1;
        last = client_->ListTaskQueues(request, quick).status();
        return last.ok();
      },
      absl::Seconds(120), absl::Milliseconds(250));
  if (!ready || !process_->Running()) {
    return "drover-queue did not answer (" + last.ToString() + "):\n" +
           process_->Output();
  }
  return "";
}

int QueueServer::Stop() { return process_->Terminate(absl::Seconds(120)); }

absl::StatusOr<std::string> QueueServer::CreateClient(
    const std::string& client_id, const std::vector<std::string>& scopes,
    const std::string& description) {
  client::AuthClient auth(connection_);
  v1::CreateClientRequest request;
  request.set_client_id(client_id);
  request.set_description(description);
  for (const auto& scope : scopes) request.add_scopes(scope);
  request.mutable_expires()->set_seconds(
      absl::ToUnixSeconds(absl::Now() + absl::Hours(24)));
  auto response = auth.CreateClient(request);
  if (!response.ok()) return response.status();
  return response->access_token();
}

absl::StatusOr<v1::WorkerPool> QueueServer::CreateWorkerPool(
    const std::string& pool, v1::WorkerPoolConfig config) {
  if (config.owner().empty()) config.set_owner("tests@example.com");
  if (config.description().empty()) config.set_description("end-to-end test");
  v1::CreateWorkerPoolRequest request;
  request.set_worker_pool_id(pool);
  *request.mutable_config() = std::move(config);
  return worker_manager_->CreateWorkerPool(request);
}

absl::StatusOr<std::string> QueueServer::CreateWorker(
    const std::string& pool, const std::string& group,
    const std::string& worker_id, int capacity) {
  v1::CreateWorkerRequest request;
  request.set_worker_pool_id(pool);
  request.set_worker_group(group);
  request.set_worker_id(worker_id);
  request.set_capacity(capacity);
  auto response = worker_manager_->CreateWorker(request);
  if (!response.ok()) return response.status();
  return response->static_secret();
}

// ---- E2eSuite --------------------------------------------------------------

E2eSuite::~E2eSuite() {
  queue_.reset();  // stops it
  RemoveSuiteDir(dir_);
}

bool E2eSuite::Start(const std::string& dir_prefix,
                     const std::string& queue_binary,
                     std::vector<std::string> queue_flags,
                     const std::function<std::string()>& unavailable_reason) {
  if (!SkipIf(PostgresUnavailableReason())) return false;
  // Asked only when PostgreSQL is there, so that a machine without either
  // is told about PostgreSQL first.
  if (unavailable_reason != nullptr && !SkipIf(unavailable_reason())) {
    return false;
  }
  return MakeDir(dir_prefix) &&
         StartQueue(queue_binary, std::move(queue_flags));
}

bool E2eSuite::SkipIf(const std::string& reason) {
  if (!ok()) return false;
  skip_reason_ = reason;
  return ok();
}

void E2eSuite::Fail(const std::string& error) {
  if (ok()) setup_error_ = error;
}

bool E2eSuite::MakeDir(const std::string& prefix) {
  if (!ok()) return false;
  dir_ = MakeTempDir(prefix);
  if (dir_.empty()) {
    Fail("mkdtemp failed");
    return false;
  }
  fs::create_directories(home());
  return true;
}

bool E2eSuite::StartQueue(const std::string& binary,
                          std::vector<std::string> flags) {
  if (!ok()) return false;
  queue_ = std::make_unique<QueueServer>(binary, dir_, std::move(flags));
  Fail(queue_->Start());
  return ok();
}

// ---- workers ---------------------------------------------------------------

json NativeEngine() {
  return {{"name", "native"}, {"config", {{"kill_grace_seconds", 1}}}};
}

nlohmann::ordered_json AllPlugins() {
  nlohmann::ordered_json plugins = nlohmann::ordered_json::object();
  for (const char* name : {"logprefix", "env", "maxruntime", "exit-status",
                           "mounts", "artifacts", "livelog"}) {
    plugins[name] = nlohmann::ordered_json::object();
  }
  return plugins;
}

WorkerOptions PluginWorkerOptions(const std::string& binary,
                                  const std::string& pool,
                                  const std::string& worker_id, int capacity) {
  WorkerOptions options;
  options.binary = binary;
  options.pool = pool;
  options.worker_id = worker_id;
  options.capacity = capacity;
  options.shutdown_grace_seconds = 10;
  options.plugins = AllPlugins();
  return options;
}

std::vector<std::string> CliEnvironment(const std::string& url,
                                        const fs::path& credentials_file,
                                        const fs::path& home) {
  std::vector<std::string> extra = {"DROVER_URL=" + url,
                                    "HOME=" + home.string()};
  if (!credentials_file.empty()) {
    extra.push_back("DROVER_CREDENTIALS_FILE=" + credentials_file.string());
  }
  return ChildEnvironment(extra);
}

std::vector<std::string> CliEnvironment(const QueueServer& queue,
                                        const fs::path& home, bool root) {
  return CliEnvironment(queue.url(),
                        root ? queue.credentials_file() : fs::path(), home);
}

CliResult RunCli(const std::string& binary,
                 const std::vector<std::string>& args, const fs::path& base,
                 const SpawnOptions& spawn, absl::Duration timeout) {
  std::vector<std::string> argv = {binary};
  argv.insert(argv.end(), args.begin(), args.end());
  CliResult result;
  Child cli;  // killed when it outlives `timeout`
  if (!cli.Spawn(argv, base.string() + ".out", base.string() + ".err", spawn)) {
    return result;
  }
  result.code = cli.Wait(timeout);
  result.out = cli.Stdout();
  result.err = cli.Stderr();
  return result;
}

std::unique_ptr<Child> StartWorker(QueueServer& queue,
                                   const WorkerOptions& options,
                                   const fs::path& dir) {
  const std::string& id = options.worker_id;
  // Ordered: the plugins' order in the file is their hook order.
  nlohmann::ordered_json config = {{"queue_url", queue.url()},
                                   {"worker_pool_id", options.pool},
                                   {"worker_group", options.group},
                                   {"worker_id", id},
                                   {"capacity", options.capacity}};
  if (options.registration_secret_file.empty()) {
    const std::string client_id = "worker/" + options.pool + "/" + id;
    auto token = queue.CreateClient(
        client_id, {"queue:claim-work:" + options.pool,
                    "queue:worker-id:" + options.group + "/" + id});
    EXPECT_TRUE(token.ok()) << token.status();
    config["credentials"] = {{"client_id", client_id},
                             {"access_token", token.value_or("")}};
  } else {
    nlohmann::ordered_json registration =
        nlohmann::ordered_json::parse(options.registration.dump());
    registration["secret_file"] = options.registration_secret_file.string();
    config["registration"] = registration;
  }
  config["engine"] = nlohmann::ordered_json::parse(options.engine.dump());
  config["work_dir"] =
      (options.work_dir.empty() ? dir / ("work-" + id) : options.work_dir)
          .string();
  config["shutdown_grace_seconds"] = options.shutdown_grace_seconds;
  config["log_level"] = "debug";
  if (options.metrics_port > 0) {
    config["metrics_listen"] = absl::StrCat("127.0.0.1:", options.metrics_port);
  }
  if (!options.plugins.is_null()) config["plugins"] = options.plugins;
  const fs::path config_file = dir / (id + ".json");
  std::ofstream(config_file) << config.dump(2);
  auto child = std::make_unique<Child>();
  EXPECT_TRUE(child->Spawn({options.binary, "--config", config_file.string()},
                           dir / (id + ".out"), dir / (id + ".err")));
  bool serving = Eventually(
      [&] {
        return !child->Running() ||
               child->Stdout().find("serving") != std::string::npos;
      },
      absl::Seconds(60));
  EXPECT_TRUE(serving && child->Running()) << child->Output();
  return child;
}

// ---- tasks -----------------------------------------------------------------

std::string CreateTask(client::QueueClient& queue, const std::string& pool,
                       const json& payload, int retries,
                       const std::string& name) {
  json doc = {{"taskQueueId", pool},
              {"deadline", "+1 hour"},
              {"retries", retries},
              {"payload", payload},
              {"metadata",
               {{"name", name},
                {"description", "run by the real drover-worker"},
                {"owner", "tests@example.com"},
                {"source", "https://example.com/drover-e2e"}}}};
  auto task = client::TaskDefinitionFromJson(doc, absl::Now());
  EXPECT_TRUE(task.ok()) << task.status();
  if (!task.ok()) return "";
  v1::CreateTaskRequest request;
  request.set_task_id(client::NewTaskId());
  *request.mutable_task() = *task;
  auto created = queue.CreateTask(request);
  EXPECT_TRUE(created.ok()) << created.status();
  return request.task_id();
}

std::optional<v1::TaskStatus> TaskStatus(client::QueueClient& queue,
                                         const std::string& task_id) {
  v1::TaskIdRequest request;
  request.set_task_id(task_id);
  auto status = queue.GetTaskStatus(request);
  if (!status.ok()) return std::nullopt;
  return status->status();
}

bool IsResolved(const std::string& state) {
  return state == "completed" || state == "failed" || state == "exception";
}

v1::TaskStatus WaitResolved(client::QueueClient& queue,
                            const std::string& task_id,
                            absl::Duration timeout) {
  std::optional<v1::TaskStatus> status;
  Eventually(
      [&] {
        status = TaskStatus(queue, task_id);
        return status && IsResolved(status->state());
      },
      timeout, absl::Milliseconds(200));
  return status.value_or(v1::TaskStatus());
}

std::string Describe(const v1::TaskStatus& status) {
  std::string text = status.task_id() + " " + status.state() + ":";
  for (const auto& run : status.runs()) {
    absl::StrAppend(&text, " [run ", run.run_id(), " ", run.state(), "/",
                    run.reason_resolved(), " on ", run.worker_id(), "]");
  }
  return text;
}

absl::StatusOr<std::string> ReadTaskLog(const QueueServer& queue,
                                        const std::string& task_id,
                                        std::optional<int> run_id) {
  client::ArtifactsClient artifacts(queue.connection());
  v1::TailLogRequest request;
  request.set_task_id(task_id);
  if (run_id.has_value()) request.set_run_id(*run_id);
  std::string log;
  auto tailed = artifacts.TailLog(request, [&](std::string_view bytes) {
    log.append(bytes);
    return absl::OkStatus();
  });
  if (!tailed.ok()) return tailed.status();
  return log;
}

absl::StatusOr<std::string> DownloadArtifact(const QueueServer& queue,
                                             const std::string& task_id,
                                             int run_id,
                                             const std::string& name) {
  client::ArtifactsClient artifacts(queue.connection());
  v1::ArtifactRequest request;
  request.set_task_id(task_id);
  request.set_run_id(run_id);
  request.set_name(name);
  auto got = artifacts.GetArtifact(request);
  if (!got.ok()) return got.status();
  std::string bytes;
  auto downloaded = client::Download(
      got->url(), 0,
      [&](std::string_view chunk) {
        bytes.append(chunk);
        return absl::OkStatus();
      },
      /*decode=*/true);
  if (!downloaded.ok()) return downloaded.status();
  return bytes;
}

// ---- dockerd ---------------------------------------------------------------

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

namespace {

// Percent-encodes everything but unreserved characters.
std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      char hex[4];
      std::snprintf(hex, sizeof(hex), "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

}  // namespace

std::string DockerRequest(const std::string& method, const std::string& target,
                          const std::string& json_body) {
  int fd = ConnectUnix(kDockerSocket);
  if (fd < 0) return "";
  timeval timeout{30, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  // HTTP/1.0: dockerd answers without chunking and closes the connection.
  const std::string request =
      absl::StrCat(method, " ", target,
                   " HTTP/1.0\r\nHost: docker\r\n"
                   "Content-Type: application/json\r\nContent-Length: ",
                   json_body.size(), "\r\n\r\n", json_body);
  std::string response;
  if (write(fd, request.data(), request.size()) ==
      static_cast<ssize_t>(request.size())) {
    char buffer[4096];
    ssize_t n;
    while ((n = read(fd, buffer, sizeof(buffer))) > 0) {
      response.append(buffer, n);
    }
  }
  close(fd);
  return response;
}

int HttpStatus(const std::string& response) {
  // "HTTP/1.x NNN ..."
  size_t space = response.find(' ');
  if (space == std::string::npos || response.size() < space + 4) return 0;
  return std::atoi(response.substr(space + 1, 3).c_str());
}

std::string HttpBody(const std::string& response) {
  size_t at = response.find("\r\n\r\n");
  return at == std::string::npos ? "" : response.substr(at + 4);
}

std::string DockerUnavailableReason() {
  std::string ping = DockerRequest("GET", "/_ping");
  if (ping.find("200 OK") == std::string::npos) {
    return std::string("dockerd does not answer on ") + kDockerSocket +
           " (start it with scripts/start-docker.sh)";
  }
  std::string image =
      DockerRequest("GET", std::string("/images/") + kDockerImage + "/json");
  if (image.find("200 OK") == std::string::npos) {
    return std::string("the test image ") + kDockerImage +
           " is missing (build it with scripts/make-test-images.sh)";
  }
  return "";
}

std::optional<std::vector<std::string>> DockerContainersWithLabel(
    const std::string& key, const std::string& value) {
  const json filters = {{"label", json::array({key + "=" + value})}};
  std::string response = DockerRequest(
      "GET", "/containers/json?all=1&filters=" + UrlEncode(filters.dump()));
  if (HttpStatus(response) != 200) return std::nullopt;
  json containers = json::parse(HttpBody(response), nullptr, false);
  if (!containers.is_array()) return std::nullopt;
  std::vector<std::string> ids;
  for (const auto& c : containers) {
    if (c.contains("Id") && c["Id"].is_string()) {
      ids.push_back(c["Id"].get<std::string>());
    }
  }
  return ids;
}

}  // namespace drover::tests::support
