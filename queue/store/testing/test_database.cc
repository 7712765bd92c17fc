#include "queue/store/testing/test_database.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "common/testing/temp_dir.h"
#include "queue/store/embedded_postgres.h"
#include "queue/store/migrations.h"
#include "queue/store/pg_util.h"

namespace drover::queue::store::testing {
namespace {

// Set to a keyword/value libpq connection string of an existing server
// (a role allowed to CREATE DATABASE) to run against it instead of a
// private cluster; databases are created and dropped there.
constexpr char kExternalServerEnv[] = "DROVER_TEST_DATABASE_URL";

// Starts a process that outlives this one by as little as possible: it
// blocks reading a pipe only this process holds, and when the pipe closes
// (this process exited, however abruptly: a crash, a timeout's SIGKILL) it
// shuts the server down immediately (SIGQUIT) and removes `dir`. After a
// normal exit Shutdown() has already done both and it finds nothing to do.
void StartWatchdog(const std::string& dir) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  std::string pid_file = dir + "/postgres/postmaster.pid";
  std::string script = "read _; if [ -f '" + pid_file +
                       "' ]; then kill -QUIT \"$(head -n 1 '" + pid_file +
                       "')\" 2>/dev/null; sleep 1; fi; rm -rf '" + dir + "'";
  pid_t pid = fork();
  if (pid == 0) {
    setsid();  // Out of the terminal's process group: Ctrl-C spares it.
    dup2(fds[0], STDIN_FILENO);
    for (int fd = 3; fd < 1024; ++fd) close(fd);
    execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  // fds[1] stays open (close-on-exec) until this process ends.
}

// The per-binary cluster. Lives until static destruction at exit, which
// stops the server and removes its directory.
class SharedCluster {
 public:
  static SharedCluster* Instance() {
    // Never deleted: Shutdown() runs from atexit and releases what matters.
    static SharedCluster* cluster = new SharedCluster();
    return cluster;
  }

  static absl::StatusOr<SharedCluster*> Get() {
    SharedCluster* cluster = Instance();
    static std::once_flag once;
    std::call_once(once, [cluster] { cluster->status_ = cluster->Start(); });
    if (!cluster->status_.ok()) return cluster->status_;
    return cluster;
  }

  absl::StatusOr<std::string> CreateDatabase(bool migrated) {
    std::string name =
        absl::StrCat("test_", getpid(), "_", counter_.fetch_add(1));
    std::lock_guard<std::mutex> lock(mu_);
    try {
      pqxx::nontransaction txn(*admin_);
      txn.exec(absl::StrCat(
          "CREATE DATABASE ", txn.quote_name(name),
          migrated ? absl::StrCat(" TEMPLATE ", txn.quote_name(template_))
                   : std::string()));
    } catch (...) {
      return pg::CurrentExceptionToStatus("creating test database " + name);
    }
    return name;
  }

  void DropDatabase(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    try {
      pqxx::nontransaction txn(*admin_);
      txn.exec(absl::StrCat("DROP DATABASE IF EXISTS ", txn.quote_name(name),
                            " WITH (FORCE)"));
    } catch (const std::exception& e) {
      // Leaking a database in a throw-away cluster is harmless.
    }
  }

  std::string ConnectionStringFor(const std::string& db) const {
    // In keyword/value form a later keyword overrides an earlier one.
    return absl::StrCat(base_, " dbname=", pg::QuoteConnValue(db));
  }

 private:
  SharedCluster() = default;
  // Registered with atexit by Start(); also cleans up after a failed start.
  static void Shutdown() {
    SharedCluster* c = Instance();
    if (c->admin_ != nullptr && c->postgres_ == nullptr) {
      // An external server outlives us: remove what we made there.
      try {
        pqxx::nontransaction(*c->admin_)
            .exec("DROP DATABASE IF EXISTS " +
                  c->admin_->quote_name(c->template_) + " WITH (FORCE)");
      } catch (const std::exception&) {
      }
    }
    c->admin_.reset();
    if (c->postgres_ != nullptr) (void)c->postgres_->Stop();
    c->postgres_.reset();
    std::error_code ec;
    if (!c->dir_.empty()) std::filesystem::remove_all(c->dir_, ec);
  }

  absl::Status Start() {
    template_ = absl::StrCat("drover_template_", getpid());
    std::atexit(&SharedCluster::Shutdown);
    if (const char* external = std::getenv(kExternalServerEnv);
        external != nullptr && *external != '\0') {
      base_ = external;
      auto admin = pg::Connect(ConnectionStringFor("postgres"));
      if (!admin.ok()) {
        return absl::UnavailableError(
            absl::StrCat(kExternalServerEnv,
                         " is set but unusable: ", admin.status().message()));
      }
      admin_ = std::move(admin).value();
      return MakeTemplate();
    }
    // Under TMPDIR: scripts/test.sh points it at a tmpfs, where the
    // files each test database creates and drops cost no disk journal.
    DROVER_ASSIGN_OR_RETURN(std::filesystem::path dir,
                            drover::testing::MakeTempDir("drover-test-"));
    dir_ = dir.string();
    EmbeddedPostgresOptions options;
    options.data_dir = dir_;
    options.database = "postgres";
    options.fast_initdb = true;
    // Durability buys nothing in a cluster deleted at exit.
    options.settings = {{"fsync", "off"},
                        {"synchronous_commit", "off"},
                        {"full_page_writes", "off"},
                        {"max_connections", "300"},
                        {"shared_buffers", "64MB"}};
    postgres_ = std::make_unique<EmbeddedPostgres>(options, &launcher_);
    auto conn = postgres_->Start();
    if (!conn.ok()) {
      // The one failure that means "cannot run here" rather than "broken".
      return absl::UnavailableError("PostgreSQL could not start: " +
                                    std::string(conn.status().message()));
    }
    StartWatchdog(dir_);
    base_ = postgres_->ConnectionStringFor("postgres");
    DROVER_ASSIGN_OR_RETURN(admin_,
                            pg::Connect(ConnectionStringFor("postgres")));
    return MakeTemplate();
  }

  // The template every migrated test database copies.
  absl::Status MakeTemplate() {
    try {
      pqxx::nontransaction txn(*admin_);
      txn.exec("DROP DATABASE IF EXISTS " + txn.quote_name(template_));
      txn.exec("CREATE DATABASE " + txn.quote_name(template_));
    } catch (...) {
      return pg::CurrentExceptionToStatus("creating the template database");
    }
    // Migrate closes its connection: a template must have none open.
    return Migrate(ConnectionStringFor(template_));
  }

  absl::Status status_;
  std::string base_;      // Connection string; dbname is appended.
  std::string template_;  // Migrated template database.
  std::string dir_;
  SubprocessLauncher launcher_;
  std::unique_ptr<EmbeddedPostgres> postgres_;
  std::mutex mu_;
  std::unique_ptr<pqxx::connection> admin_;
  std::atomic<int> counter_{0};
};

}  // namespace

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::Make(
    bool migrated) {
  DROVER_ASSIGN_OR_RETURN(SharedCluster * cluster, SharedCluster::Get());
  DROVER_ASSIGN_OR_RETURN(std::string name, cluster->CreateDatabase(migrated));
  return std::unique_ptr<TestDatabase>(
      new TestDatabase(name, cluster->ConnectionStringFor(name)));
}

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::Create() {
  return Make(true);
}

absl::StatusOr<std::unique_ptr<TestDatabase>> TestDatabase::CreateEmpty() {
  return Make(false);
}

TestDatabase::~TestDatabase() {
  auto cluster = SharedCluster::Get();
  if (cluster.ok()) (*cluster)->DropDatabase(name_);
}

absl::StatusOr<std::string> AdminConnectionString() {
  DROVER_ASSIGN_OR_RETURN(SharedCluster * cluster, SharedCluster::Get());
  return cluster->ConnectionStringFor("postgres");
}

void DatabaseTest::SetUp() {
  auto db = TestDatabase::Create();
  if (!db.ok()) {
    if (db.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << "real PostgreSQL unavailable: " << db.status().message();
    }
    FAIL() << "cannot create a test database: " << db.status();
  }
  db_ = std::move(db).value();
}

}  // namespace drover::queue::store::testing
