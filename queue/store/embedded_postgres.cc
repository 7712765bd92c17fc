#include "queue/store/embedded_postgres.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/status.h"
#include "queue/store/pg_util.h"
#include "spdlog/spdlog.h"

namespace drover::queue::store {
namespace {

namespace fs = std::filesystem;

// sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
constexpr size_t kMaxSocketPath = 107;
// How much of the server log an error message quotes.
constexpr size_t kLogTailBytes = 3000;
constexpr char kStartTimeoutSeconds[] = "120";

constexpr char kDatabaseExistsSql[] =
    "SELECT 1 FROM pg_database WHERE datname = $1";

// Quotes one word for /bin/sh: pg_ctl hands -o to the shell.
std::string ShellQuote(std::string_view word) {
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  out += '\'';
  return out;
}

uint64_t Fnv1a(std::string_view s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// Characters the server's list-valued unix_socket_directories setting or a
// shell word would need extra quoting for; such paths use the fallback.
bool IsPlainPath(std::string_view path) {
  return path.find_first_of(" ,\"'\\\t\n") == std::string_view::npos;
}

std::string ReadTail(const std::string& path, size_t bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  in.seekg(0, std::ios::end);
  std::streamoff size = in.tellg();
  std::streamoff start = size > static_cast<std::streamoff>(bytes)
                             ? size - static_cast<std::streamoff>(bytes)
                             : 0;
  in.seekg(start);
  std::string out(static_cast<size_t>(size - start), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  return out;
}

bool IsExecutable(const fs::path& p) { return access(p.c_str(), X_OK) == 0; }

// "15" < "16" numerically; other names sort last.
int VersionOf(const fs::path& dir) {
  int v = 0;
  if (!absl::SimpleAtoi(dir.filename().string(), &v)) return -1;
  return v;
}

}  // namespace

EmbeddedPostgres::EmbeddedPostgres(EmbeddedPostgresOptions options,
                                   ProcessLauncher* launcher)
    : options_(std::move(options)), launcher_(launcher) {}

EmbeddedPostgres::~EmbeddedPostgres() {
  if (running_) {
    if (absl::Status s = Stop(); !s.ok()) {
      spdlog::warn("embedded PostgreSQL did not stop cleanly: {}",
                   s.ToString());
    }
  }
}

std::string EmbeddedPostgres::ChooseSocketDir(const std::string& data_dir,
                                              int port,
                                              const std::string& short_parent) {
  std::string in_tree = (fs::path(data_dir) / "run").string();
  std::string socket_file = absl::StrCat("/.s.PGSQL.", port);
  if (in_tree.size() + socket_file.size() <= kMaxSocketPath &&
      IsPlainPath(in_tree)) {
    return in_tree;
  }
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016llx",
                static_cast<unsigned long long>(Fnv1a(data_dir)));
  return (fs::path(short_parent) / absl::StrCat("drover-pg-", hash)).string();
}

std::string EmbeddedPostgres::ConnectionStringFor(
    const std::string& database) const {
  return absl::StrCat("host=", pg::QuoteConnValue(socket_dir_),
                      " port=", options_.port,
                      " user=", pg::QuoteConnValue(options_.superuser),
                      " dbname=", pg::QuoteConnValue(database));
}

absl::StatusOr<std::string> EmbeddedPostgres::Start() {
  DROVER_RETURN_IF_ERROR(FindBinaries());
  DROVER_RETURN_IF_ERROR(PrepareDirectories());
  if (!fs::exists(fs::path(cluster_dir_) / "PG_VERSION")) {
    DROVER_RETURN_IF_ERROR(InitCluster());
  }
  DROVER_RETURN_IF_ERROR(StartServer());
  DROVER_RETURN_IF_ERROR(CreateDatabase());
  connection_string_ = ConnectionStringFor(options_.database);
  return connection_string_;
}

absl::Status EmbeddedPostgres::FindBinaries() {
  if (!options_.bin_dir.empty()) {
    bin_dir_ = options_.bin_dir;
    return absl::OkStatus();
  }
  // pg_config (libpq-dev) names the server's bindir on Debian.
  auto pg_config = launcher_->Run({{"pg_config", "--bindir"}, ""});
  if (pg_config.ok() && pg_config->exit_code == 0) {
    std::string dir(absl::StripAsciiWhitespace(pg_config->output));
    if (IsExecutable(fs::path(dir) / "initdb") &&
        IsExecutable(fs::path(dir) / "pg_ctl")) {
      bin_dir_ = dir;
      return absl::OkStatus();
    }
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/usr/lib/postgresql", ec)) {
    fs::path bin = entry.path() / "bin";
    if (IsExecutable(bin / "initdb") && IsExecutable(bin / "pg_ctl")) {
      candidates.push_back(entry.path());
    }
  }
  if (candidates.empty()) {
    return MakeError(
        ErrorCode::kResourceNotFound,
        "PostgreSQL server binaries (initdb, pg_ctl) not found: neither "
        "`pg_config --bindir` nor /usr/lib/postgresql/*/bin has them; install "
        "postgresql-15 (scripts/install-deps.sh) or configure a database URL",
        {{"searched", "pg_config --bindir, /usr/lib/postgresql/*/bin"}});
  }
  std::sort(candidates.begin(), candidates.end(),
            [](const fs::path& a, const fs::path& b) {
              return VersionOf(a) > VersionOf(b);
            });
  bin_dir_ = (candidates.front() / "bin").string();
  return absl::OkStatus();
}

absl::Status EmbeddedPostgres::Chown(const std::string& path) {
  if (run_as_.empty()) return absl::OkStatus();
  passwd* pw = getpwnam(run_as_.c_str());
  if (pw == nullptr) {
    return InputError("root_run_as", run_as_,
                      "running as root needs this system user to run "
                      "PostgreSQL (initdb refuses root)");
  }
  if (chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return MakeError(ErrorCode::kInternalError,
                     absl::StrCat("cannot give ", path, " to ", run_as_, ": ",
                                  std::strerror(errno)),
                     {{"path", path}});
  }
  return absl::OkStatus();
}

absl::Status EmbeddedPostgres::CheckReachable(const std::string& dir) {
  passwd* pw = getpwnam(run_as_.c_str());
  if (pw == nullptr) return Chown(dir);  // Reports the missing user.
  // initdb and the server run as run_as_ and must pass through every
  // ancestor; say which one stops them rather than quoting initdb's
  // "permission denied".
  for (fs::path p = fs::path(dir).parent_path();; p = p.parent_path()) {
    struct stat st;
    if (stat(p.c_str(), &st) == 0) {
      bool searchable = (st.st_mode & S_IXOTH) ||
                        (st.st_uid == pw->pw_uid && (st.st_mode & S_IXUSR)) ||
                        (st.st_gid == pw->pw_gid && (st.st_mode & S_IXGRP));
      if (!searchable) {
        return InputError(
            "data_dir", dir,
            absl::StrCat("PostgreSQL runs as ", run_as_,
                         " (initdb refuses "
                         "root), which cannot enter ",
                         p.string(),
                         "; choose a data directory whose parents are "
                         "searchable (chmod o+x) or run as another user"));
      }
    }
    if (p == p.root_path() || p.empty()) break;
  }
  return absl::OkStatus();
}

absl::Status EmbeddedPostgres::PrepareDirectories() {
  std::error_code ec;
  fs::path data = fs::absolute(options_.data_dir, ec).lexically_normal();
  if (ec) {
    return InputError("data_dir", options_.data_dir, ec.message());
  }
  data_dir_ = data.string();
  if (!data_dir_.empty() && data_dir_.size() > 1 && data_dir_.back() == '/') {
    data_dir_.pop_back();
  }
  cluster_dir_ = (data / "postgres").string();
  log_file_ = (data / "postgres.log").string();
  socket_dir_ =
      ChooseSocketDir(data_dir_, options_.port, options_.short_socket_parent);
  run_as_ = geteuid() == 0 ? options_.root_run_as : "";

  auto make_dir = [&](const std::string& path, fs::perms perms,
                      bool give_away) -> absl::Status {
    std::error_code err;
    fs::create_directories(path, err);
    if (err) {
      return MakeError(
          ErrorCode::kInternalError,
          absl::StrCat("cannot create ", path, ": ", err.message()),
          {{"path", path}});
    }
    fs::permissions(path, perms, err);
    if (give_away) return Chown(path);
    return absl::OkStatus();
  };

  // The data directory may hold other secrets, so it stays private; as root
  // the postgres user only needs to pass through it (o+x).
  bool existed = fs::exists(data);
  DROVER_RETURN_IF_ERROR(make_dir(
      data_dir_,
      existed ? fs::status(data).permissions() : fs::perms::owner_all, false));
  if (!run_as_.empty()) {
    fs::permissions(data, fs::perms::others_exec | fs::perms::group_exec,
                    fs::perm_options::add, ec);
    DROVER_RETURN_IF_ERROR(CheckReachable(data));
  }
  DROVER_RETURN_IF_ERROR(
      make_dir(cluster_dir_, fs::perms::owner_all, !run_as_.empty()));
  DROVER_RETURN_IF_ERROR(
      make_dir(socket_dir_, fs::perms::owner_all, !run_as_.empty()));
  if (!fs::exists(log_file_)) {
    std::ofstream create(log_file_, std::ios::app);
    if (!create) {
      return MakeError(ErrorCode::kInternalError,
                       "cannot create the server log " + log_file_,
                       {{"path", log_file_}});
    }
  }
  fs::permissions(log_file_, fs::perms::owner_read | fs::perms::owner_write,
                  ec);
  return Chown(log_file_);
}

absl::StatusOr<ProcessOutcome> EmbeddedPostgres::RunTool(
    const std::string& tool, std::vector<std::string> args) {
  ProcessSpec spec;
  spec.argv.push_back((fs::path(bin_dir_) / tool).string());
  for (auto& a : args) spec.argv.push_back(std::move(a));
  spec.run_as_user = run_as_;
  return launcher_->Run(spec);
}

absl::Status EmbeddedPostgres::ToolError(const std::string& what,
                                         const ProcessOutcome& outcome) {
  std::string log = ReadTail(log_file_, kLogTailBytes);
  std::string message =
      absl::StrCat(what, " failed (exit ", outcome.exit_code,
                   "): ", absl::StripAsciiWhitespace(outcome.output));
  if (!log.empty()) {
    absl::StrAppend(&message, "\n--- ", log_file_, " (tail) ---\n", log);
  }
  return MakeError(ErrorCode::kInternalError, message,
                   {{"data_dir", data_dir_},
                    {"exit_code", std::to_string(outcome.exit_code)}});
}

absl::Status EmbeddedPostgres::InitCluster() {
  spdlog::info("initialising PostgreSQL cluster in {}", cluster_dir_);
  std::vector<std::string> args = {
      "-D",           cluster_dir_,      "-U",        options_.superuser,
      "--auth=trust", "--encoding=UTF8", "--locale=C"};
  if (options_.fast_initdb) args.push_back("--no-sync");
  DROVER_ASSIGN_OR_RETURN(ProcessOutcome outcome, RunTool("initdb", args));
  if (outcome.exit_code != 0) return ToolError("initdb", outcome);
  return absl::OkStatus();
}

absl::Status EmbeddedPostgres::StartServer() {
  DROVER_ASSIGN_OR_RETURN(ProcessOutcome status,
                          RunTool("pg_ctl", {"status", "-D", cluster_dir_}));
  if (status.exit_code == 0) {
    // Left running by an earlier process on this data directory: adopt it.
    spdlog::info("PostgreSQL in {} is already running; reusing it",
                 cluster_dir_);
    running_ = true;
    return absl::OkStatus();
  }
  std::vector<std::string> settings = {
      "listen_addresses=",
      absl::StrCat("unix_socket_directories=", socket_dir_),
      absl::StrCat("port=", options_.port),
  };
  for (const auto& [name, value] : options_.settings) {
    settings.push_back(absl::StrCat(name, "=", value));
  }
  std::vector<std::string> server_args;
  for (const auto& s : settings) server_args.push_back("-c " + ShellQuote(s));
  DROVER_ASSIGN_OR_RETURN(
      ProcessOutcome outcome,
      RunTool("pg_ctl",
              {"start", "-D", cluster_dir_, "-w", "-t", kStartTimeoutSeconds,
               "-s", "-l", log_file_, "-o", absl::StrJoin(server_args, " ")}));
  if (outcome.exit_code != 0) return ToolError("pg_ctl start", outcome);
  running_ = true;
  return absl::OkStatus();
}

absl::Status EmbeddedPostgres::CreateDatabase() {
  DROVER_ASSIGN_OR_RETURN(auto conn,
                          pg::Connect(ConnectionStringFor("postgres")));
  try {
    pqxx::nontransaction txn(*conn);
    if (txn.exec_params(kDatabaseExistsSql, options_.database).empty()) {
      // CREATE DATABASE takes no parameters; the name is quoted instead.
      txn.exec("CREATE DATABASE " + txn.quote_name(options_.database));
    }
  } catch (const pqxx::sql_error& e) {
    // 42P04: another process created it in the meantime.
    if (e.sqlstate() != "42P04") {
      return pg::CurrentExceptionToStatus("creating database " +
                                          options_.database);
    }
  } catch (...) {
    return pg::CurrentExceptionToStatus("creating database " +
                                        options_.database);
  }
  return absl::OkStatus();
}

absl::Status EmbeddedPostgres::Stop() {
  if (bin_dir_.empty()) return absl::OkStatus();  // Never started.
  DROVER_ASSIGN_OR_RETURN(
      ProcessOutcome outcome,
      RunTool("pg_ctl", {"stop", "-D", cluster_dir_, "-m", "fast", "-w", "-t",
                         kStartTimeoutSeconds, "-s"}));
  if (outcome.exit_code != 0) {
    DROVER_ASSIGN_OR_RETURN(ProcessOutcome status,
                            RunTool("pg_ctl", {"status", "-D", cluster_dir_}));
    // 3: not running, which is what we wanted.
    if (status.exit_code != 3) return ToolError("pg_ctl stop", outcome);
  }
  running_ = false;
  return absl::OkStatus();
}

}  // namespace drover::queue::store
