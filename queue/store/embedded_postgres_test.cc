// EmbeddedPostgres with a recording launcher (exact commands, failures)
// and for real (initdb, start, reuse, stop), plus SubprocessLauncher.
#include "queue/store/embedded_postgres.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"

namespace drover::queue::store {
namespace {

namespace fs = std::filesystem;

// Records every command; answers with scripted outcomes by program name
// (the last path component of argv[0] plus argv[1] for pg_ctl).
class RecordingLauncher final : public ProcessLauncher {
 public:
  absl::StatusOr<ProcessOutcome> Run(const ProcessSpec& spec) override {
    calls.push_back(spec);
    std::string key = fs::path(spec.argv[0]).filename().string();
    if (key == "pg_ctl" && spec.argv.size() > 1) key += " " + spec.argv[1];
    auto it = outcomes.find(key);
    if (it == outcomes.end()) return ProcessOutcome{0, ""};
    return it->second;
  }
  std::vector<std::string> Programs() const {
    std::vector<std::string> out;
    for (const auto& c : calls) {
      std::string p = fs::path(c.argv[0]).filename().string();
      if (p == "pg_ctl") p += " " + c.argv[1];
      out.push_back(p);
    }
    return out;
  }
  std::vector<ProcessSpec> calls;
  std::map<std::string, ProcessOutcome> outcomes;
};

class TempDir {
 public:
  TempDir() {
    auto dir = drover::testing::MakeTempDir("drover-ep-test-");
    if (!dir.ok()) {
      ADD_FAILURE() << dir.status();
      return;
    }
    path_ = dir->string();
    // Searchable, so the postgres user (when root) can reach inside.
    fs::permissions(path_, fs::perms::owner_all | fs::perms::group_exec |
                               fs::perms::others_exec);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

EmbeddedPostgresOptions FakeOptions(const std::string& data_dir) {
  EmbeddedPostgresOptions o;
  o.data_dir = data_dir;
  o.bin_dir = "/fake/pg/bin";
  return o;
}

TEST(EmbeddedPostgresTest, FirstStartRunsInitdbThenStartsOnASocketOnly) {
  TempDir dir;
  RecordingLauncher launcher;
  launcher.outcomes["pg_ctl status"] = {3, "pg_ctl: no server running"};
  EmbeddedPostgres pg(FakeOptions(dir.path() + "/data"), &launcher);
  auto started = pg.Start();
  // Nothing listens on the socket, so preparing the database fails - after
  // the commands this test is about.
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("cannot connect"),
            std::string::npos)
      << started.status();
  std::vector<std::string> want = {"initdb", "pg_ctl status", "pg_ctl start"};
  ASSERT_EQ(launcher.Programs(), want);

  std::string cluster = dir.path() + "/data/postgres";
  const ProcessSpec& initdb = launcher.calls[0];
  EXPECT_EQ(initdb.argv[0], "/fake/pg/bin/initdb");
  std::string initdb_args = absl::StrJoin(initdb.argv, " ");
  EXPECT_TRUE(absl::StrContains(initdb_args, "-D " + cluster)) << initdb_args;
  EXPECT_TRUE(absl::StrContains(initdb_args, "-U drover"));
  EXPECT_TRUE(absl::StrContains(initdb_args, "--auth=trust"));
  // initdb refuses root: as root it runs as the postgres user.
  EXPECT_EQ(initdb.run_as_user, geteuid() == 0 ? "postgres" : "");

  const ProcessSpec& start = launcher.calls[2];
  std::string start_args = absl::StrJoin(start.argv, " ");
  EXPECT_TRUE(absl::StrContains(start_args, "-w")) << start_args;
  EXPECT_TRUE(absl::StrContains(start_args, "-c 'listen_addresses='"))
      << start_args;
  EXPECT_TRUE(absl::StrContains(
      start_args, "-c 'unix_socket_directories=" + dir.path() + "/data/run'"))
      << start_args;
  EXPECT_TRUE(
      absl::StrContains(start_args, "-l " + dir.path() + "/data/postgres.log"));
  EXPECT_TRUE(fs::is_directory(cluster));
  EXPECT_TRUE(fs::is_directory(dir.path() + "/data/run"));
}

TEST(EmbeddedPostgresTest, ExistingClusterIsReusedWithoutInitdb) {
  TempDir dir;
  fs::create_directories(dir.path() + "/postgres");
  std::ofstream(dir.path() + "/postgres/PG_VERSION") << "15\n";
  RecordingLauncher launcher;
  launcher.outcomes["pg_ctl status"] = {3, ""};
  EmbeddedPostgres pg(FakeOptions(dir.path()), &launcher);
  (void)pg.Start();
  std::vector<std::string> want = {"pg_ctl status", "pg_ctl start"};
  EXPECT_EQ(launcher.Programs(), want);
}

TEST(EmbeddedPostgresTest, RunningServerIsAdoptedAndStoppedFast) {
  TempDir dir;
  fs::create_directories(dir.path() + "/postgres");
  std::ofstream(dir.path() + "/postgres/PG_VERSION") << "15\n";
  RecordingLauncher launcher;  // status answers 0: running.
  EmbeddedPostgres pg(FakeOptions(dir.path()), &launcher);
  (void)pg.Start();
  EXPECT_EQ(launcher.Programs(), std::vector<std::string>{"pg_ctl status"});
  ASSERT_TRUE(pg.Stop().ok());
  ASSERT_EQ(launcher.calls.size(), 2u);
  std::string stop = absl::StrJoin(launcher.calls[1].argv, " ");
  EXPECT_TRUE(absl::StrContains(stop, "stop")) << stop;
  EXPECT_TRUE(absl::StrContains(stop, "-m fast")) << stop;
}

TEST(EmbeddedPostgresTest, InitdbFailureCarriesItsOutput) {
  TempDir dir;
  RecordingLauncher launcher;
  launcher.outcomes["initdb"] = {1, "initdb: error: the sky is falling\n"};
  EmbeddedPostgres pg(FakeOptions(dir.path()), &launcher);
  auto started = pg.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(GetErrorInfo(started.status()).code, ErrorCode::kInternalError);
  EXPECT_NE(started.status().message().find("the sky is falling"),
            std::string::npos);
  EXPECT_NE(started.status().message().find("exit 1"), std::string::npos);
  EXPECT_EQ(launcher.calls.size(), 1u) << "nothing is started after a failure";
}

TEST(EmbeddedPostgresTest, StartFailureQuotesTheServerLog) {
  TempDir dir;
  fs::create_directories(dir.path() + "/postgres");
  std::ofstream(dir.path() + "/postgres/PG_VERSION") << "15\n";
  std::ofstream(dir.path() + "/postgres.log") << "FATAL:  lock file exists\n";
  RecordingLauncher launcher;
  launcher.outcomes["pg_ctl status"] = {3, ""};
  launcher.outcomes["pg_ctl start"] = {1, "pg_ctl: could not start server"};
  EmbeddedPostgres pg(FakeOptions(dir.path()), &launcher);
  auto started = pg.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("could not start server"),
            std::string::npos);
  EXPECT_NE(started.status().message().find("lock file exists"),
            std::string::npos);
}

TEST(EmbeddedPostgresTest, LongDataDirectoriesGetAShortSocketDirectory) {
  std::string shallow = "/srv/drover/.drover";
  EXPECT_EQ(EmbeddedPostgres::ChooseSocketDir(shallow, 5432, "/tmp"),
            "/srv/drover/.drover/run");
  std::string deep = "/srv/" + std::string(100, 'd') + "/.drover";
  std::string fallback = EmbeddedPostgres::ChooseSocketDir(deep, 5432, "/tmp");
  EXPECT_TRUE(absl::StartsWith(fallback, "/tmp/drover-pg-")) << fallback;
  EXPECT_LE(fallback.size() + std::string("/.s.PGSQL.5432").size(), 107u);
  // Stable for a directory, distinct across directories.
  EXPECT_EQ(EmbeddedPostgres::ChooseSocketDir(deep, 5432, "/tmp"), fallback);
  EXPECT_NE(EmbeddedPostgres::ChooseSocketDir(deep + "2", 5432, "/tmp"),
            fallback);
  // Paths the server's list syntax would split also fall back.
  EXPECT_TRUE(absl::StartsWith(
      EmbeddedPostgres::ChooseSocketDir("/srv/a,b", 5432, "/tmp"),
      "/tmp/drover-pg-"));
}

TEST(EmbeddedPostgresTest, MissingBinariesAreResourceNotFound) {
  // Discovery only ever asks pg_config; make it fail and point the search
  // root nowhere by having no binaries in /usr/lib/postgresql is not
  // something a test can arrange, so check the pg_config path is used.
  TempDir dir;
  RecordingLauncher launcher;
  launcher.outcomes["pg_config"] = {0, "/definitely/not/here\n"};
  EmbeddedPostgresOptions o;
  o.data_dir = dir.path();
  EmbeddedPostgres pg(o, &launcher);
  auto started = pg.Start();
  ASSERT_FALSE(launcher.calls.empty());
  EXPECT_EQ(launcher.calls[0].argv,
            (std::vector<std::string>{"pg_config", "--bindir"}));
  if (!fs::exists("/usr/lib/postgresql")) {
    EXPECT_EQ(GetErrorInfo(started.status()).code,
              ErrorCode::kResourceNotFound);
  } else {
    // Found under /usr/lib/postgresql/*/bin instead of pg_config's answer.
    ASSERT_GE(launcher.calls.size(), 2u);
    EXPECT_TRUE(
        absl::StartsWith(launcher.calls[1].argv[0], "/usr/lib/postgresql/"))
        << launcher.calls[1].argv[0];
  }
}

// The real thing, in a deep directory so the socket falls back to /tmp.
TEST(EmbeddedPostgresTest, RealClusterStartsStopsAndIsReused) {
  TempDir dir;
  std::string data = dir.path() + "/" + std::string(60, 'x') + "/" +
                     std::string(30, 'y') + "/.drover";
  // The /tmp socket fallback is outside `dir`: remove it however we leave.
  struct RemoveSocketDir {
    std::string path;
    ~RemoveSocketDir() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  } remove_socket_dir{EmbeddedPostgres::ChooseSocketDir(data, 5432, "/tmp")};
  SubprocessLauncher launcher;
  EmbeddedPostgresOptions options;
  options.data_dir = data;
  options.fast_initdb = true;
  options.settings = {{"fsync", "off"}};
  {
    EmbeddedPostgres pg(options, &launcher);
    auto conn = pg.Start();
    if (!conn.ok() &&
        GetErrorInfo(conn.status()).code == ErrorCode::kResourceNotFound) {
      GTEST_SKIP() << "PostgreSQL binaries unavailable: "
                   << conn.status().message();
    }
    ASSERT_TRUE(conn.ok()) << conn.status();
    EXPECT_TRUE(absl::StartsWith(pg.socket_dir(), "/tmp/drover-pg-"));
    pqxx::connection c(*conn);
    pqxx::nontransaction txn(c);
    txn.exec("CREATE TABLE kept (v text)");
    txn.exec("INSERT INTO kept VALUES ('still here')");
    // No TCP listener.
    EXPECT_EQ(txn.exec1("SHOW listen_addresses")[0].as<std::string>(), "");
    ASSERT_TRUE(pg.Stop().ok());
    EXPECT_TRUE(pg.Stop().ok()) << "stopping a stopped server is fine";
  }
  {
    EmbeddedPostgres pg(options, &launcher);
    auto conn = pg.Start();
    ASSERT_TRUE(conn.ok()) << conn.status();
    {
      pqxx::connection c(*conn);
      EXPECT_EQ(pqxx::nontransaction(c)
                    .exec1("SELECT v FROM kept")[0]
                    .as<std::string>(),
                "still here");
    }
    // A crash: the server dies without a clean shutdown and leaves a stale
    // postmaster.pid behind. The next start recovers.
    std::ifstream pid_file(data + "/postgres/postmaster.pid");
    pid_t pid = 0;
    pid_file >> pid;
    ASSERT_GT(pid, 0);
    pid_t group = getpgid(pid);
    ASSERT_GT(group, 1);
    ASSERT_EQ(kill(-group, SIGKILL), 0);
    for (int i = 0; i < 200 && kill(pid, 0) == 0; ++i) usleep(50000);
    // Backends notice their postmaster is gone and exit shortly after.
    usleep(500000);
    ASSERT_TRUE(fs::exists(data + "/postgres/postmaster.pid"));
  }
  {
    EmbeddedPostgres pg(options, &launcher);
    auto conn = pg.Start();
    ASSERT_TRUE(conn.ok()) << conn.status();
    pqxx::connection c(*conn);
    EXPECT_EQ(pqxx::nontransaction(c)
                  .exec1("SELECT v FROM kept")[0]
                  .as<std::string>(),
              "still here");
    // The destructor stops it.
  }
  std::ifstream pid(data + "/postgres/postmaster.pid");
  EXPECT_FALSE(pid.good()) << "server still running after destruction";
}

TEST(EmbeddedPostgresTest, UnreachableDataDirectoryIsExplainedWhenRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "only root hands the cluster to postgres";
  TempDir dir;
  fs::permissions(dir.path(), fs::perms::owner_all);  // 0700: a dead end.
  RecordingLauncher launcher;
  EmbeddedPostgres pg(FakeOptions(dir.path() + "/inner/.drover"), &launcher);
  auto started = pg.Start();
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(GetErrorInfo(started.status()).code, ErrorCode::kInputError);
  EXPECT_NE(started.status().message().find(dir.path()), std::string::npos)
      << started.status();
  EXPECT_TRUE(launcher.calls.empty()) << "initdb must not run";
}

TEST(SubprocessLauncherTest, CapturesOutputAndExitCode) {
  SubprocessLauncher launcher;
  auto out = launcher.Run(
      {{"/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"}, ""});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->exit_code, 3);
  EXPECT_NE(out->output.find("to-stdout"), std::string::npos);
  EXPECT_NE(out->output.find("to-stderr"), std::string::npos);
}

TEST(SubprocessLauncherTest, MissingProgramAndUserAreErrors) {
  SubprocessLauncher launcher;
  auto missing = launcher.Run({{"/nonexistent/drover-program"}, ""});
  EXPECT_EQ(GetErrorInfo(missing.status()).code, ErrorCode::kResourceNotFound);
  auto empty = launcher.Run({{}, ""});
  EXPECT_EQ(GetErrorInfo(empty.status()).code, ErrorCode::kInputError);
  auto user = launcher.Run({{"/bin/true"}, "no-such-user-drover"});
  EXPECT_EQ(GetErrorInfo(user.status()).code, ErrorCode::kInputError);
}

TEST(SubprocessLauncherTest, RunsAsAnotherUserWhenRoot) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
  SubprocessLauncher launcher;
  auto out = launcher.Run({{"id", "-un"}, "postgres"});
  if (!out.ok() && GetErrorInfo(out.status()).code == ErrorCode::kInputError) {
    GTEST_SKIP() << "no postgres user: " << out.status().message();
  }
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->output, "postgres\n");
}

}  // namespace
}  // namespace drover::queue::store
