// Shared harness of the end-to-end tests that run the real binaries: child
// processes with their output in files, runs of the `drover` CLI, a
// drover-queue on a throw-away embedded PostgreSQL (with the root client it
// bootstraps), a suite's shared set-up and its skip reasons, permanent
// clients and worker-manager pools/workers for workers, drover-worker
// daemons started from a generated config, task creation, waiting for a
// task to resolve, reading a run's log, and a few probes of dockerd.
//
// Everything here is for tests: helpers report problems with gtest
// EXPECTs or return a description of what went wrong; none of it is
// thread-safe unless said otherwise.
#ifndef DROVER_TESTS_SUPPORT_E2E_SUPPORT_H_
#define DROVER_TESTS_SUPPORT_E2E_SUPPORT_H_

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/credentials.h"
#include "client/queue_client.h"
#include "client/worker_manager_client.h"
#include "drover/v1/queue.pb.h"
#include "drover/v1/worker_manager.pb.h"
#include "nlohmann/json.hpp"

namespace drover::tests::support {

// The whole file ("" when it cannot be read), bytes as they are.
std::string ReadFile(const std::filesystem::path& path);

// What a run of the `drover` CLI printed and how it exited; printed in
// full when an assertion on it fails.
struct CliResult {
  int code = -1;
  std::string out;
  std::string err;
};
std::ostream& operator<<(std::ostream& os, const CliResult& r);

// Polls `condition` every `step` until it holds or `timeout` passed;
// returns its last value.
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

// True when PostgreSQL server binaries (initdb) are installed.
bool PostgresAvailable();
// Why tests on an embedded PostgreSQL cannot run here, or "" when they can
// (the reason a suite skips with).
std::string PostgresUnavailableReason();

// A loopback TCP port nobody listens on right now.
int FreePort();

// A fresh directory <TMPDIR>/<prefix>-XXXXXX, mode 0755 (the embedded
// PostgreSQL may run as the postgres user when tests run as root); empty,
// after a test failure that says why, when it cannot be made.
std::filesystem::path MakeTempDir(const std::string& prefix);

// <suite_dir>/<current test's name>, created with mode 0755.
std::filesystem::path MakeTestDir(const std::filesystem::path& suite_dir);
// "<prefix>/<current test's name, at most 38 characters>": a task queue of
// the test's own.
std::string PoolForTest(const std::string& prefix);
// Removes a suite's directory unless DROVER_KEEP_TEST_DIR is set.
void RemoveSuiteDir(const std::filesystem::path& dir);
// `n` random bytes (incompressible).
std::string RandomBytes(size_t n);

// The test's environment without DROVER_* and HOME, plus `extra`
// ("NAME=value" entries).
std::vector<std::string> ChildEnvironment(
    const std::vector<std::string>& extra);

struct SpawnOptions {
  // The child's environment; unset: ChildEnvironment({}).
  std::optional<std::vector<std::string>> env;
  // The child's stdin; empty: /dev/null.
  std::filesystem::path stdin_file;
  // Append to the output files instead of truncating them (a process
  // restarted on the same files keeps its earlier output).
  bool append_output = false;
};

// A child process with stdout/stderr in files (stdin as SpawnOptions says).
// Killed (SIGKILL) and reaped when destroyed while still running.
class Child {
 public:
  Child() = default;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();

  // argv[0] is the binary's path. Returns false when it cannot start.
  bool Spawn(const std::vector<std::string>& argv,
             const std::filesystem::path& out, const std::filesystem::path& err,
             const SpawnOptions& options = {});
  // Exit code, 128+N after signal N, -1 on timeout.
  int Wait(absl::Duration timeout);
  bool Running();
  void Signal(int signo);
  // SIGTERM, then Wait(timeout): a graceful stop.
  int Terminate(absl::Duration timeout);
  pid_t pid() const { return pid_; }
  std::string Stdout() const { return ReadFile(out_); }
  std::string Stderr() const { return ReadFile(err_); }
  std::string Output() const {
    return "stdout:\n" + Stdout() + "\nstderr:\n" + Stderr();
  }

 private:
  pid_t pid_ = -1;
  int exit_code_ = -1;
  std::filesystem::path out_;
  std::filesystem::path err_;
};

// One drover-queue (binary `binary`) on an embedded PostgreSQL under
// `dir`/data, gRPC on a free loopback port, HTTP on any port; restartable
// on the same data directory and port.
class QueueServer {
 public:
  QueueServer(std::string binary, std::filesystem::path dir,
              std::vector<std::string> extra_flags);
  // Stops it cleanly so its PostgreSQL does not outlive the test.
  ~QueueServer();

  // Starts it and waits until it answers with the root credentials it
  // bootstrapped. Returns "" or why it failed (with its output).
  std::string Start();
  // SIGTERM and wait for a clean exit; returns the exit code.
  int Stop();

  std::string url() const;
  const std::filesystem::path& dir() const { return dir_; }
  // root-credentials.json in the data directory.
  std::filesystem::path credentials_file() const;
  const client::Credentials& credentials() const { return credentials_; }
  std::shared_ptr<const client::Connection> connection() const {
    return connection_;
  }
  client::QueueClient& client() { return *client_; }
  client::WorkerManagerClient& worker_manager() { return *worker_manager_; }
  Child& process() { return *process_; }

  // Creates a permanent client holding `scopes` (as root, valid a day);
  // returns its access token.
  absl::StatusOr<std::string> CreateClient(
      const std::string& client_id, const std::vector<std::string>& scopes,
      const std::string& description = "end-to-end test");
  // Creates a static worker pool (as root) with `config` (owner and
  // description filled in when empty).
  absl::StatusOr<v1::WorkerPool> CreateWorkerPool(const std::string& pool,
                                                  v1::WorkerPoolConfig config);
  // Creates a worker of a static pool; returns its static secret.
  absl::StatusOr<std::string> CreateWorker(const std::string& pool,
                                           const std::string& group,
                                           const std::string& worker_id,
                                           int capacity);

 private:
  std::string binary_;
  std::filesystem::path dir_;
  std::vector<std::string> extra_flags_;
  int port_ = 0;
  std::unique_ptr<Child> process_;
  client::Credentials credentials_;
  std::shared_ptr<const client::Connection> connection_;
  std::unique_ptr<client::QueueClient> client_;
  std::unique_ptr<client::WorkerManagerClient> worker_manager_;
};

// What the tests of one end-to-end suite share, made in its
// SetUpTestSuite and deleted in its TearDownTestSuite: a directory of its
// own and the drover-queue it runs there; or why the suite cannot run here
// (a skip: something it needs is not installed or not running) or why its
// set-up failed (each test fails). A step does nothing once an earlier one
// recorded a skip or a failure, so that every test reports the first
// problem; each test's SetUp says it:
//
//   if (!suite_->skip_reason().empty()) GTEST_SKIP() << suite_->skip_reason();
//   ASSERT_TRUE(suite_->setup_error().empty()) << suite_->setup_error();
class E2eSuite {
 public:
  E2eSuite() = default;
  E2eSuite(const E2eSuite&) = delete;
  E2eSuite& operator=(const E2eSuite&) = delete;
  // Stops the queue, so that its PostgreSQL does not outlive the suite,
  // then removes the directory (RemoveSuiteDir).
  ~E2eSuite();

  // The usual steps in order: skips without PostgreSQL
  // (PostgresUnavailableReason), then with what `unavailable_reason` says
  // when it says anything; makes the directory (MakeDir) and starts the
  // queue there (StartQueue). Returns whether the queue serves.
  bool Start(const std::string& dir_prefix, const std::string& queue_binary,
             std::vector<std::string> queue_flags,
             const std::function<std::string()>& unavailable_reason = nullptr);

  // Records `reason` as why the suite skips unless it is empty. Returns
  // whether the suite can go on.
  bool SkipIf(const std::string& reason);
  // Records `error` as why the set-up failed unless it is empty.
  void Fail(const std::string& error);
  // Makes /tmp/<prefix>-XXXXXX (MakeTempDir) with an empty home/ for the
  // CLI runs. Returns whether it could.
  bool MakeDir(const std::string& prefix);
  // Starts `binary` as drover-queue with `flags` on the directory
  // (QueueServer). Returns whether it serves.
  bool StartQueue(const std::string& binary, std::vector<std::string> flags);

  // Nothing recorded: the suite's tests can run.
  bool ok() const { return skip_reason_.empty() && setup_error_.empty(); }
  const std::string& skip_reason() const { return skip_reason_; }
  const std::string& setup_error() const { return setup_error_; }
  const std::filesystem::path& dir() const { return dir_; }
  // HOME of the suite's CLI runs.
  std::filesystem::path home() const { return dir_ / "home"; }
  // Only after StartQueue succeeded.
  QueueServer& queue() const { return *queue_; }

 private:
  std::string skip_reason_;
  std::string setup_error_;
  std::filesystem::path dir_;
  std::unique_ptr<QueueServer> queue_;
};

// The native engine with a 1 s kill grace.
nlohmann::json NativeEngine();

// The plugins the artifact tests want, in hook order.
nlohmann::ordered_json AllPlugins();

struct WorkerOptions {
  std::string binary;  // drover-worker
  std::string pool;
  std::string group = "e2e";
  std::string worker_id;
  int capacity = 1;
  double shutdown_grace_seconds = 30;
  nlohmann::json engine = NativeEngine();
  // Empty: <dir>/work-<worker_id>.
  std::filesystem::path work_dir;
  int metrics_port = 0;
  // Plugins in hook order; null: the worker's defaults.
  nlohmann::ordered_json plugins;
  // Non-empty: register with the worker manager using the static secret
  // in this file (plus `registration` settings) instead of a permanent
  // client created for the worker.
  std::filesystem::path registration_secret_file;
  nlohmann::json registration = nlohmann::json::object();
};

// Options of a worker with every plugin (AllPlugins) that gives its runs
// 10 s to stop when it shuts down, as the artifact and docker suites run
// theirs; the native engine unless the caller sets another.
WorkerOptions PluginWorkerOptions(const std::string& binary,
                                  const std::string& pool,
                                  const std::string& worker_id, int capacity);

// The environment of a `drover` CLI run against the server at `url`:
// DROVER_URL, HOME=`home` and, unless `credentials_file` is empty,
// DROVER_CREDENTIALS_FILE naming it (otherwise the CLI calls anonymously).
std::vector<std::string> CliEnvironment(
    const std::string& url, const std::filesystem::path& credentials_file,
    const std::filesystem::path& home);
// The same against `queue`; `root`: with the root credentials it
// bootstrapped.
std::vector<std::string> CliEnvironment(const QueueServer& queue,
                                        const std::filesystem::path& home,
                                        bool root = true);

// Runs the `drover` CLI (`binary`) with `args` as `spawn` says, its output
// in <base>.out and <base>.err, and waits up to `timeout`, killing it
// after that. Code -1 when it could not start or did not finish in time.
CliResult RunCli(const std::string& binary,
                 const std::vector<std::string>& args,
                 const std::filesystem::path& base,
                 const SpawnOptions& spawn = {},
                 absl::Duration timeout = absl::Seconds(60));

// Writes <dir>/<worker_id>.json and starts drover-worker on it (output in
// <dir>/<worker_id>.out/.err); waits until it serves. Without a
// registration secret the worker gets a permanent client
// "worker/<pool>/<id>" holding only queue:claim-work:<pool> and
// queue:worker-id:<group>/<id>; reclaims and reports use each run's task
// credentials.
std::unique_ptr<Child> StartWorker(QueueServer& queue,
                                   const WorkerOptions& options,
                                   const std::filesystem::path& dir);

// Task definition from the CLI's JSON format: `payload` on task queue
// `pool`, deadline in an hour, `retries` retries.
std::string CreateTask(client::QueueClient& queue, const std::string& pool,
                       const nlohmann::json& payload, int retries = 0,
                       const std::string& name = "end-to-end test");
std::optional<v1::TaskStatus> TaskStatus(client::QueueClient& queue,
                                         const std::string& task_id);
bool IsResolved(const std::string& state);
// Waits until the task is resolved; its last status (empty on failure).
v1::TaskStatus WaitResolved(client::QueueClient& queue,
                            const std::string& task_id,
                            absl::Duration timeout = absl::Seconds(120));
// "<id> <state>: [run 0 failed/failed on w1] ...".
std::string Describe(const v1::TaskStatus& status);

// The whole log of a resolved run (the latest run when `run_id` is unset),
// through TailLog as the queue's root client. Needs the livelog plugin on
// the worker. Errors: the server's.
absl::StatusOr<std::string> ReadTaskLog(
    const QueueServer& queue, const std::string& task_id,
    std::optional<int> run_id = std::nullopt);

// The bytes of artifact `name` of run `run_id` (gzip content encoding
// decoded), fetched through GetArtifact's URL as the root client. Errors:
// the server's or the download's.
absl::StatusOr<std::string> DownloadArtifact(const QueueServer& queue,
                                             const std::string& task_id,
                                             int run_id,
                                             const std::string& name);

// ---- dockerd ---------------------------------------------------------------

inline constexpr char kDockerSocket[] = "/var/run/docker.sock";
inline constexpr char kDockerImage[] = "drover-test/busybox:latest";

// A connected unix stream socket, or -1.
int ConnectUnix(const std::string& path);
// One HTTP/1.0 request to dockerd on kDockerSocket with an optional JSON
// body; the raw response ("" when unreachable).
std::string DockerRequest(const std::string& method, const std::string& target,
                          const std::string& json_body = "");
// The HTTP status code of a raw response (0 when there is none).
int HttpStatus(const std::string& response);
// The body of a raw HTTP response ("" when there is none).
std::string HttpBody(const std::string& response);
// Why docker tests cannot run here, or "" when they can.
std::string DockerUnavailableReason();
// Ids of the containers (any state) carrying label `key`=`value`; nullopt
// when dockerd does not answer.
std::optional<std::vector<std::string>> DockerContainersWithLabel(
    const std::string& key, const std::string& value);

}  // namespace drover::tests::support

#endif  // DROVER_TESTS_SUPPORT_E2E_SUPPORT_H_
