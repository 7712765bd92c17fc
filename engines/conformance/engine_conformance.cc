#include "engines/conformance/engine_conformance.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "gmock/gmock.h"

namespace drover::engines::conformance {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr char kStandardPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

// Keeps everything written, for assertions on the text. Thread-safe.
class CaptureLog final : public LogSink {
 public:
  void Write(std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    text_.append(bytes);
    cv_.notify_all();
  }
  std::string text() const {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  // True once `needle` has been written, false after `timeout`.
  bool WaitFor(std::string_view needle, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(
        lock, timeout, [&] { return text_.find(needle) != std::string::npos; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
};

// Checks a stream against a repeating line without keeping it. Thread-safe.
class PatternLog final : public LogSink {
 public:
  explicit PatternLog(std::string line) : line_(std::move(line)) {}
  void Write(std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (char c : bytes) {
      if (c != line_[bytes_ % line_.size()] && first_mismatch_ < 0) {
        first_mismatch_ = static_cast<int64_t>(bytes_);
      }
      ++bytes_;
    }
  }
  uint64_t bytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return bytes_;
  }
  int64_t first_mismatch() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_mismatch_;
  }

 private:
  const std::string line_;
  mutable std::mutex mu_;
  uint64_t bytes_ = 0;
  int64_t first_mismatch_ = -1;
};

// Resident memory of this process in bytes; nullopt where unknown.
std::optional<uint64_t> ResidentBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (absl::StartsWith(line, "VmRSS:")) {
      absl::string_view rest =
          absl::StripAsciiWhitespace(absl::string_view(line).substr(6));
      uint64_t kb = 0;
      if (absl::SimpleAtoi(absl::StripSuffix(rest, " kB"), &kb)) {
        return kb * 1024;
      }
    }
  }
  return std::nullopt;
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// A short, printable fingerprint of some bytes (size and FNV-1a hash), so
// failures name the difference without dumping megabytes.
std::string Fingerprint(std::string_view bytes) {
  uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ULL;
  }
  return absl::StrCat(bytes.size(), " bytes, fnv ", absl::Hex(hash));
}

// Every entry below `root` by relative path: files map to their content's
// fingerprint, directories to "<dir>".
std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> tree;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    std::string rel = entry.path().lexically_relative(root).string();
    tree[rel] =
        entry.is_directory() ? "<dir>" : Fingerprint(ReadFile(entry.path()));
  }
  return tree;
}

// True when `pid` no longer runs (gone or a zombie waiting for its reaper).
bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string content((std::istreambuf_iterator<char>(stat)),
                      std::istreambuf_iterator<char>());
  size_t close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() &&
         content[close + 2] == 'Z';
}

std::string RandomSuffix() {
  std::random_device rd;
  return absl::StrCat(getpid(), "-", rd() % 1000000);
}

struct Run {
  std::unique_ptr<Sandbox> sandbox;
  Result result;
};

// Starts a daemon that double-forks out of the task's process group and
// session (setsid where available) and appends to hb/beats every 50 ms, plus
// a plain background child; waits until both run, then prints `ready`.
constexpr char kStartDaemons[] =
    "mkdir -p hb\n"
    "S=$(command -v setsid || true)\n"
    "( $S sh -c 'echo $$ > hb/daemon.pid; "
    "while :; do echo beat >> hb/beats; sleep 0.05; done' "
    "</dev/null >/dev/null 2>&1 & )\n"
    "sleep 600 </dev/null >/dev/null 2>&1 &\n"
    "echo $! > hb/bg.pid\n"
    "while [ ! -s hb/daemon.pid ] || [ ! -s hb/beats ]; do sleep 0.02; done\n"
    "echo ready\n";

}  // namespace

std::string EngineFactoryName(
    const ::testing::TestParamInfo<EngineFactory>& info) {
  return info.param.name;
}

void PrintTo(const EngineFactory& factory, std::ostream* os) {
  *os << factory.name;
}

void EngineConformanceTest::SetUp() {
  if (factory().unavailable_reason) {
    std::string reason = factory().unavailable_reason();
    if (!reason.empty()) GTEST_SKIP() << reason;
  }
  scratch_dir_ =
      fs::temp_directory_path() /
      absl::StrCat("drover-conformance-", factory().name, "-", RandomSuffix());
  fs::remove_all(scratch_dir_);
  fs::create_directories(scratch_dir_ / "work");
  fs::create_directories(scratch_dir_ / "tasks");
  fs::create_directories(scratch_dir_ / "out");
  // Task users must reach their task directories.
  fs::permissions(scratch_dir_, fs::perms::owner_all | fs::perms::group_exec |
                                    fs::perms::others_exec);
  auto engine = factory().make_engine(scratch_dir_ / "work");
  ASSERT_TRUE(engine.ok()) << engine.status();
  engine_ = std::move(*engine);
}

void EngineConformanceTest::TearDown() {
  engine_.reset();
  if (!scratch_dir_.empty()) {
    std::error_code ec;
    fs::remove_all(scratch_dir_, ec);
  }
}

SandboxSpec EngineConformanceTest::MakeSpec(
    const std::vector<std::string>& commands, LogSink* log,
    const std::map<std::string, std::string>& env, int max_run_time_seconds) {
  SandboxSpec spec;
  int n = next_task_++;
  spec.task_id = absl::StrCat("conformanceTask", n);
  spec.run_id = 0;
  spec.worker_group = "conformance";
  spec.worker_id = "local";
  spec.payload = factory().build_payload(commands, env, max_run_time_seconds);
  spec.task_dir = scratch_dir_ / "tasks" / absl::StrCat("task-", n);
  fs::create_directories(spec.task_dir);
  spec.env = env;
  spec.env["PATH"] = kStandardPath;
  spec.log = log;
  return spec;
}

namespace {

// NewSandbox + Start + Wait, with gtest failures on errors.
absl::StatusOr<Run> RunTask(Engine& engine, SandboxSpec spec) {
  Run run;
  DROVER_ASSIGN_OR_RETURN(run.sandbox, engine.NewSandbox(std::move(spec)));
  DROVER_RETURN_IF_ERROR(run.sandbox->Start());
  DROVER_ASSIGN_OR_RETURN(run.result, run.sandbox->Wait());
  return run;
}

}  // namespace

// ---------------------------------------------------------------- payloads

TEST_P(EngineConformanceTest, BuiltPayloadIsValid) {
  nlohmann::json payload =
      factory().build_payload({"echo a", "echo b"}, {{"X", "y"}}, 30);
  EXPECT_TRUE(engine().ValidatePayload(payload).ok())
      << engine().ValidatePayload(payload) << "\n"
      << payload.dump();
  std::vector<std::string> keys = engine().PayloadKeys();
  for (const auto& item : payload.items()) {
    EXPECT_NE(std::find(keys.begin(), keys.end(), item.key()), keys.end())
        << "payload key " << item.key() << " is not in PayloadKeys()";
  }
}

TEST_P(EngineConformanceTest, NonObjectPayloadsAreMalformed) {
  for (const nlohmann::json& payload :
       {nlohmann::json("echo hi"), nlohmann::json(42),
        nlohmann::json::array({"echo", "hi"}), nlohmann::json(nullptr)}) {
    absl::Status status = engine().ValidatePayload(payload);
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kMalformedPayload))
        << payload.dump() << " -> " << status;
  }
}

TEST_P(EngineConformanceTest, MalformedPayloadsNameTheField) {
  ASSERT_FALSE(factory().malformed_payloads.empty())
      << "the factory must list malformed payload cases";
  for (const auto& bad : factory().malformed_payloads) {
    absl::Status status = engine().ValidatePayload(bad.payload);
    ErrorInfo info = GetErrorInfo(status);
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kMalformedPayload))
        << bad.description << ": " << status;
    EXPECT_EQ(info.details["field"], bad.field)
        << bad.description << ": " << status;
    // NewSandbox must not accept it either.
    CaptureLog log;
    SandboxSpec spec = MakeSpec({"true"}, &log);
    spec.payload = bad.payload;
    auto sandbox = engine().NewSandbox(std::move(spec));
    EXPECT_FALSE(sandbox.ok()) << bad.description;
  }
}

// ------------------------------------------------------------------ output

TEST_P(EngineConformanceTest, EchoReachesTheLog) {
  CaptureLog log;
  auto run = RunTask(engine(), MakeSpec({"echo hello-from-the-task"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result.exit_code, 0);
  EXPECT_FALSE(run->result.aborted);
  EXPECT_THAT(log.text(), ::testing::HasSubstr("hello-from-the-task\n"));
}

TEST_P(EngineConformanceTest, StdoutAndStderrAreBothCaptured) {
  CaptureLog log;
  auto run =
      RunTask(engine(),
              MakeSpec({"echo line-on-stdout; echo line-on-stderr >&2"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result.exit_code, 0);
  EXPECT_THAT(log.text(), ::testing::HasSubstr("line-on-stdout\n"));
  EXPECT_THAT(log.text(), ::testing::HasSubstr("line-on-stderr\n"));
}

// --------------------------------------------------------------- exit codes

TEST_P(EngineConformanceTest, ExitCodesPropagate) {
  for (int code : {0, 1, 42}) {
    CaptureLog log;
    auto run = RunTask(
        engine(), MakeSpec({absl::StrCat("echo exiting; exit ", code)}, &log));
    ASSERT_TRUE(run.ok()) << run.status();
    EXPECT_EQ(run->result.exit_code, code);
    EXPECT_FALSE(run->result.signal.has_value()) << "exit " << code;
    EXPECT_FALSE(run->result.aborted);
  }
}

TEST_P(EngineConformanceTest, DeathBySignalIsAFailure) {
  CaptureLog log;
  auto run = RunTask(engine(), MakeSpec({"kill -KILL $$"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_NE(run->result.exit_code, 0);
  EXPECT_TRUE(run->result.signal == SIGKILL || run->result.exit_code == 137)
      << "exit " << run->result.exit_code;
  EXPECT_FALSE(run->result.aborted);
}

TEST_P(EngineConformanceTest, DurationIsMeasured) {
  CaptureLog log;
  auto run = RunTask(engine(), MakeSpec({"sleep 0.3"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_GE(run->result.duration, absl::Milliseconds(250));
  EXPECT_LT(run->result.duration, absl::Seconds(30));
}

// ------------------------------------------------------------- environment

TEST_P(EngineConformanceTest, EnvironmentIsVisible) {
  CaptureLog log;
  std::map<std::string, std::string> env = {
      {"CONFORMANCE_PLAIN", "alpha"},
      {"CONFORMANCE_SPACES", "two words  and=signs"},
  };
  auto run =
      RunTask(engine(), MakeSpec({"printf '[%s][%s]\\n' \"$CONFORMANCE_PLAIN\" "
                                  "\"$CONFORMANCE_SPACES\""},
                                 &log, env));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result.exit_code, 0);
  EXPECT_THAT(log.text(),
              ::testing::HasSubstr("[alpha][two words  and=signs]\n"));
}

// ---------------------------------------------------------- multi-command

TEST_P(EngineConformanceTest, CommandsRunInOrder) {
  CaptureLog log;
  auto run =
      RunTask(engine(), MakeSpec({"echo step-1 > order.txt; echo step-1",
                                  "echo step-2 >> order.txt; echo step-2",
                                  "echo step-3 >> order.txt; echo step-3"},
                                 &log));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result.exit_code, 0);
  std::string text = log.text();
  size_t one = text.find("step-1"), two = text.find("step-2"),
         three = text.find("step-3");
  ASSERT_NE(three, std::string::npos) << text;
  EXPECT_LT(one, two);
  EXPECT_LT(two, three);
  fs::path out = scratch_dir() / "out" / "order.txt";
  ASSERT_TRUE(run->sandbox->Extract("order.txt", out).ok());
  EXPECT_EQ(ReadFile(out), "step-1\nstep-2\nstep-3\n");
}

TEST_P(EngineConformanceTest, CommandsStopAtTheFirstFailure) {
  CaptureLog log;
  auto run = RunTask(
      engine(),
      MakeSpec({"echo first-ran", "exit 3", "echo third-must-not-run"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result.exit_code, 3);
  EXPECT_THAT(log.text(), ::testing::HasSubstr("first-ran"));
  EXPECT_THAT(log.text(),
              ::testing::Not(::testing::HasSubstr("third-must-not-run")));
}

// ------------------------------------------------------------------- abort

TEST_P(EngineConformanceTest, AbortKillsASleepingTaskPromptly) {
  CaptureLog log;
  auto sandbox =
      engine().NewSandbox(MakeSpec({"echo sleeping; sleep 600"}, &log));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE(log.WaitFor("sleeping", std::chrono::seconds(30)));
  Clock::time_point aborted_at;
  std::thread aborter([&] {
    aborted_at = Clock::now();
    (*sandbox)->Abort();
  });
  auto result = (*sandbox)->Wait();
  auto waited = Clock::now();
  aborter.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->aborted);
  // The task would sleep 600 s; an abort that kills it ends the wait in
  // well under a second on an idle machine. The bound leaves room for a
  // loaded one (5.4 s seen for docker while the whole suite and a compiler
  // shared two cores) and still fails an abort that waits out the task.
  EXPECT_LT(waited - aborted_at, std::chrono::seconds(30));
  // Idempotent, and harmless after Wait().
  (*sandbox)->Abort();
  (*sandbox)->Abort();
}

TEST_P(EngineConformanceTest, WaitAfterAbortReportsAborted) {
  CaptureLog log;
  auto sandbox = engine().NewSandbox(MakeSpec({"sleep 600"}, &log));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_TRUE((*sandbox)->Start().ok());
  (*sandbox)->Abort();
  (*sandbox)->Abort();
  auto started = Clock::now();
  auto result = (*sandbox)->Wait();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->aborted);
  EXPECT_LT(Clock::now() - started, std::chrono::seconds(5));
}

TEST_P(EngineConformanceTest, AbortKillsBackgroundAndDaemonisedGrandchildren) {
  CaptureLog log;
  auto sandbox = engine().NewSandbox(
      MakeSpec({std::string(kStartDaemons) + "sleep 600"}, &log));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();
  ASSERT_TRUE((*sandbox)->Start().ok());
  ASSERT_TRUE(log.WaitFor("ready", std::chrono::seconds(30))) << log.text();
  std::thread aborter([&] { (*sandbox)->Abort(); });
  auto result = (*sandbox)->Wait();
  aborter.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->aborted);

  // Nothing may still be writing heartbeats.
  fs::path first = scratch_dir() / "out" / "beats-1";
  fs::path second = scratch_dir() / "out" / "beats-2";
  ASSERT_TRUE((*sandbox)->Extract("hb/beats", first).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE((*sandbox)->Extract("hb/beats", second).ok());
  EXPECT_GT(fs::file_size(first), 0u);
  EXPECT_EQ(fs::file_size(first), fs::file_size(second))
      << "the daemonised grandchild survived the abort";

  if (factory().capabilities.host_pids) {
    for (const char* file : {"hb/daemon.pid", "hb/bg.pid"}) {
      fs::path out = scratch_dir() / "out" / fs::path(file).filename();
      ASSERT_TRUE((*sandbox)->Extract(file, out).ok());
      pid_t pid = 0;
      ASSERT_TRUE(
          absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(out)), &pid));
      EXPECT_TRUE(ProcessGone(pid)) << file << " " << pid << " still runs";
    }
  }
}

TEST_P(EngineConformanceTest, TaskEndKillsWhatItLeftRunning) {
  CaptureLog log;
  auto run = RunTask(
      engine(), MakeSpec({std::string(kStartDaemons) + "echo done"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result.exit_code, 0) << log.text();
  EXPECT_FALSE(run->result.aborted);
  fs::path first = scratch_dir() / "out" / "beats-1";
  fs::path second = scratch_dir() / "out" / "beats-2";
  ASSERT_TRUE(run->sandbox->Extract("hb/beats", first).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  ASSERT_TRUE(run->sandbox->Extract("hb/beats", second).ok());
  EXPECT_EQ(fs::file_size(first), fs::file_size(second))
      << "a daemon outlived its task";
  if (factory().capabilities.host_pids) {
    for (const char* file : {"hb/daemon.pid", "hb/bg.pid"}) {
      fs::path out = scratch_dir() / "out" / fs::path(file).filename();
      ASSERT_TRUE(run->sandbox->Extract(file, out).ok());
      pid_t pid = 0;
      ASSERT_TRUE(
          absl::SimpleAtoi(absl::StripAsciiWhitespace(ReadFile(out)), &pid));
      EXPECT_TRUE(ProcessGone(pid)) << file << " " << pid << " still runs";
    }
  }
}

// ----------------------------------------------------------------- extract

namespace {

std::string ExpectedSmallBinary() {
  return std::string("line one\nbinary:\001\002\377\000end\n", 24);
}

std::string ExpectedRows(int rows) {
  std::string out;
  for (int i = 0; i < rows; ++i) absl::StrAppend(&out, "row ", i, " of many\n");
  return out;
}

constexpr char kWriteFiles[] =
    "printf 'line one\\nbinary:\\001\\002\\377\\000end\\n' > small.bin\n"
    "i=0; while [ $i -lt 5000 ]; do echo \"row $i of many\"; i=$((i+1)); "
    "done > rows.txt\n"
    "mkdir -p out/sub/deeper out/emptydir\n"
    "cp small.bin out/sub/small.bin\n"
    "cp rows.txt out/sub/deeper/rows.txt\n"
    "printf '' > out/empty.txt\n"
    "printf 'A' > out/a.txt\n";

}  // namespace

TEST_P(EngineConformanceTest, ExtractedFilesAreByteIdentical) {
  CaptureLog log;
  auto run = RunTask(engine(), MakeSpec({kWriteFiles}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->result.exit_code, 0) << log.text();
  fs::path small = scratch_dir() / "out" / "small.bin";
  fs::path rows = scratch_dir() / "out" / "nested" / "rows.txt";
  ASSERT_TRUE(run->sandbox->Extract("small.bin", small).ok());
  ASSERT_TRUE(run->sandbox->Extract("rows.txt", rows).ok());
  EXPECT_EQ(ReadFile(small), ExpectedSmallBinary());
  EXPECT_EQ(Fingerprint(ReadFile(rows)), Fingerprint(ExpectedRows(5000)));
  // A path through a directory works too.
  fs::path deep = scratch_dir() / "out" / "deep.txt";
  ASSERT_TRUE(run->sandbox->Extract("out/sub/deeper/rows.txt", deep).ok());
  EXPECT_EQ(Fingerprint(ReadFile(deep)), Fingerprint(ExpectedRows(5000)));
}

TEST_P(EngineConformanceTest, ExtractedDirectoriesAreByteIdentical) {
  CaptureLog log;
  auto run = RunTask(engine(), MakeSpec({kWriteFiles}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->result.exit_code, 0) << log.text();
  fs::path dest = scratch_dir() / "out" / "tree";
  absl::Status status = run->sandbox->Extract("out", dest);
  ASSERT_TRUE(status.ok()) << status;
  std::map<std::string, std::string> expected = {
      {"a.txt", Fingerprint("A")},
      {"empty.txt", Fingerprint("")},
      {"emptydir", "<dir>"},
      {"sub", "<dir>"},
      {"sub/small.bin", Fingerprint(ExpectedSmallBinary())},
      {"sub/deeper", "<dir>"},
      {"sub/deeper/rows.txt", Fingerprint(ExpectedRows(5000))},
  };
  EXPECT_EQ(Tree(dest), expected);
}

TEST_P(EngineConformanceTest, ExtractRefusesPathsEscapingTheTask) {
  CaptureLog log;
  auto run =
      RunTask(engine(), MakeSpec({"echo inside > inside.txt; "
                                  "ln -s /etc/passwd link-out; ln -s .. up"},
                                 &log));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->result.exit_code, 0) << log.text();
  for (const char* path : {"../escape.txt", "/etc/passwd", "link-out", "up",
                           "up/etc", "sub/../../x"}) {
    fs::path dest = scratch_dir() / "out" / "refused";
    absl::Status status = run->sandbox->Extract(path, dest);
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError))
        << path << " -> " << status;
    EXPECT_FALSE(fs::exists(dest)) << path << " was copied";
  }
}

TEST_P(EngineConformanceTest, ExtractOfAMissingPathIsResourceNotFound) {
  CaptureLog log;
  auto run = RunTask(engine(), MakeSpec({"mkdir -p present"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  for (const char* path : {"does-not-exist", "present/missing.txt"}) {
    absl::Status status =
        run->sandbox->Extract(path, scratch_dir() / "out" / "missing");
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kResourceNotFound))
        << path << " -> " << status;
  }
}

// ------------------------------------------------------------ concurrency

TEST_P(EngineConformanceTest, ManySandboxesRunConcurrently) {
  constexpr int kSandboxes = 16;
  std::vector<std::unique_ptr<CaptureLog>> logs;
  std::vector<std::unique_ptr<Sandbox>> sandboxes;
  for (int i = 0; i < kSandboxes; ++i) {
    logs.push_back(std::make_unique<CaptureLog>());
    // Each task stamps its start and end (whole seconds of the shared
    // clock) around a 3 s sleep.
    auto sandbox = engine().NewSandbox(MakeSpec(
        {absl::StrCat("echo token-", i, "-end; echo window $(date +%s); ",
                      "sleep 3; echo window $(date +%s); exit ", i % 3)},
        logs.back().get()));
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    sandboxes.push_back(std::move(*sandbox));
  }
  std::vector<absl::StatusOr<Result>> results(kSandboxes,
                                              InternalError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < kSandboxes; ++i) {
    threads.emplace_back([&, i] {
      if (absl::Status s = sandboxes[i]->Start(); !s.ok()) {
        results[i] = s;
        return;
      }
      results[i] = sandboxes[i]->Wait();
    });
  }
  for (auto& t : threads) t.join();
  // The tasks ran side by side, not one after another: some of their
  // [start, end) windows overlap. Judged from the tasks' own clock rather
  // than the test's elapsed time, which a loaded machine stretches
  // (sixteen containers took 20 s to start and finish in one CI run).
  std::vector<std::pair<int64_t, int>> edges;  // (second, +1 start/-1 end)
  for (int i = 0; i < kSandboxes; ++i) {
    std::vector<int64_t> window;
    for (absl::string_view line : absl::StrSplit(logs[i]->text(), '\n')) {
      int64_t second = 0;
      if (absl::ConsumePrefix(&line, "window ") &&
          absl::SimpleAtoi(line, &second)) {
        window.push_back(second);
      }
    }
    ASSERT_EQ(window.size(), 2u) << i << ": " << logs[i]->text();
    edges.emplace_back(window[0], +1);
    edges.emplace_back(window[1], -1);
  }
  std::sort(edges.begin(), edges.end());  // an end before a start at a tie
  int running = 0, most = 0;
  for (const auto& [second, step] : edges) {
    running += step;
    most = std::max(most, running);
  }
  EXPECT_GE(most, 2) << "no two tasks ran at the same time";
  for (int i = 0; i < kSandboxes; ++i) {
    ASSERT_TRUE(results[i].ok()) << i << ": " << results[i].status();
    EXPECT_EQ(results[i]->exit_code, i % 3) << i;
    std::string text = logs[i]->text();
    EXPECT_THAT(text, ::testing::HasSubstr(absl::StrCat("token-", i, "-end")));
    for (int j = 0; j < kSandboxes; ++j) {
      if (j == i) continue;
      EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr(
                            absl::StrCat("token-", j, "-end"))))
          << "output of sandbox " << j << " leaked into " << i;
    }
  }
}

TEST_P(EngineConformanceTest, LargeOutputIsStreamedWithoutMemoryGrowth) {
  constexpr uint64_t kBytes = 50ull * 1024 * 1024;
  const std::string line =
      "0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ-"
      "drover\n";
  PatternLog log(line);
  std::string yes_word = line.substr(0, line.size() - 1);
  auto sandbox = engine().NewSandbox(
      MakeSpec({absl::StrCat("yes ", yes_word, " | head -c ", kBytes)}, &log));
  ASSERT_TRUE(sandbox.ok()) << sandbox.status();

  std::optional<uint64_t> baseline = ResidentBytes();
  std::atomic<bool> done{false};
  std::atomic<uint64_t> peak{baseline.value_or(0)};
  std::thread sampler([&] {
    while (!done.load()) {
      if (auto rss = ResidentBytes(); rss && *rss > peak.load()) peak = *rss;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  ASSERT_TRUE((*sandbox)->Start().ok());
  auto result = (*sandbox)->Wait();
  done = true;
  sampler.join();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_EQ(log.bytes(), kBytes);
  EXPECT_EQ(log.first_mismatch(), -1)
      << "output corrupted at byte " << log.first_mismatch();
  if (baseline) {
    uint64_t growth = peak.load() - *baseline;
    EXPECT_LT(growth, 24ull * 1024 * 1024)
        << "resident memory grew by " << growth << " bytes for " << kBytes
        << " bytes of output";
  } else {
    ADD_FAILURE() << "cannot read this process's resident memory here";
  }
}

// ------------------------------------------------------------- the engine

TEST_P(EngineConformanceTest, TaskRunsAsItsOwnUser) {
  if (!factory().capabilities.per_task_user) {
    GTEST_SKIP() << factory().name << " runs tasks as the worker's user";
  }
  CaptureLog log;
  auto run =
      RunTask(engine(), MakeSpec({"echo uid=$(id -u)=", "touch mine"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->result.exit_code, 0) << log.text();
  std::string text = log.text();
  size_t at = text.find("uid=");
  ASSERT_NE(at, std::string::npos) << text;
  size_t end = text.find('=', at + 4);
  uid_t uid = 0;
  ASSERT_TRUE(absl::SimpleAtoi(text.substr(at + 4, end - at - 4), &uid))
      << text;
  EXPECT_NE(uid, ::getuid());
}

TEST_P(EngineConformanceTest, CleanUpLeftoversLeavesTheEngineUsable) {
  ASSERT_TRUE(engine().CleanUpLeftovers().ok());
  CaptureLog log;
  auto run = RunTask(engine(), MakeSpec({"echo after-cleanup"}, &log));
  ASSERT_TRUE(run.ok()) << run.status();
  EXPECT_EQ(run->result.exit_code, 0);
  EXPECT_THAT(log.text(), ::testing::HasSubstr("after-cleanup"));
}

}  // namespace drover::engines::conformance
