// EmbeddedPostgres: a private PostgreSQL cluster under a data directory,
// for `drover-queue` without a configured database and for tests.
//
// Start() initialises the cluster with initdb when <data>/postgres does not
// hold one yet, starts it with pg_ctl listening only on a unix socket (no
// TCP), creates the database, and returns a libpq connection string. The
// next Start() on the same directory reuses the cluster (pg_ctl copes with a
// stale postmaster.pid). Stop() shuts it down (pg_ctl stop -m fast).
//
// The socket lives in <data>/run; unix socket paths are limited to 107
// bytes, so a deep data directory falls back to /tmp/drover-pg-<hash>.
// When the process runs as root the PostgreSQL programs run as the
// `postgres` system user (initdb refuses root), which then owns the cluster
// directories. Binaries come from `pg_config --bindir`, else the newest
// /usr/lib/postgresql/*/bin.
#ifndef DROVER_QUEUE_STORE_EMBEDDED_POSTGRES_H_
#define DROVER_QUEUE_STORE_EMBEDDED_POSTGRES_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "queue/store/process_launcher.h"

namespace drover::queue::store {

struct EmbeddedPostgresOptions {
  // Holds postgres/ (the cluster), run/ (the socket) and postgres.log.
  std::string data_dir = ".drover";
  // Created on first start.
  std::string database = "drover";
  // The cluster's superuser role (initdb -U); connections use it.
  std::string superuser = "drover";
  // Directory holding initdb and pg_ctl; empty: discover.
  std::string bin_dir;
  // System user the programs run as when the process is root.
  std::string root_run_as = "postgres";
  // Port number; with unix sockets only it just names the socket file.
  int port = 5432;
  // Extra server settings passed as -c name=value (fsync=off for tests).
  std::map<std::string, std::string> settings;
  // initdb --no-sync: faster, for throw-away clusters.
  bool fast_initdb = false;
  // Where the socket directory falls back to when <data>/run is too long.
  std::string short_socket_parent = "/tmp";
};

class EmbeddedPostgres {
 public:
  // `launcher` must outlive this object.
  EmbeddedPostgres(EmbeddedPostgresOptions options, ProcessLauncher* launcher);
  // Stops the cluster if this object started it and Stop() was not called.
  ~EmbeddedPostgres();

  EmbeddedPostgres(const EmbeddedPostgres&) = delete;
  EmbeddedPostgres& operator=(const EmbeddedPostgres&) = delete;

  // Initialises (first time), starts and prepares the cluster; returns the
  // connection string of the database. Not thread-safe. Errors:
  // ResourceNotFound when no PostgreSQL binaries are found; InputError
  // (field "data_dir") when, as root, the postgres user cannot reach the
  // data directory; InternalError when a directory cannot be prepared or
  // initdb/pg_ctl fail (the message carries their output and the tail of
  // the server log).
  absl::StatusOr<std::string> Start();

  // Stops the server (fast shutdown). A server that is not running is not
  // an error. Not thread-safe.
  absl::Status Stop();

  // libpq connection string of the database; valid after Start().
  const std::string& connection_string() const { return connection_string_; }
  // The same, for another database of the cluster (e.g. "postgres").
  std::string ConnectionStringFor(const std::string& database) const;

  // Resolved paths, valid after Start().
  const std::string& cluster_dir() const { return cluster_dir_; }
  const std::string& socket_dir() const { return socket_dir_; }
  const std::string& log_file() const { return log_file_; }

  // The socket directory Start() will use for `data_dir` (absolute): the
  // in-tree one when short enough, else the /tmp fallback.
  static std::string ChooseSocketDir(const std::string& data_dir, int port,
                                     const std::string& short_parent);

 private:
  absl::Status FindBinaries();
  absl::Status PrepareDirectories();
  absl::Status InitCluster();
  absl::Status StartServer();
  absl::Status CreateDatabase();
  absl::StatusOr<ProcessOutcome> RunTool(const std::string& tool,
                                         std::vector<std::string> args);
  absl::Status ToolError(const std::string& what,
                         const ProcessOutcome& outcome);
  absl::Status Chown(const std::string& path);
  absl::Status CheckReachable(const std::string& dir);

  EmbeddedPostgresOptions options_;
  ProcessLauncher* launcher_;
  std::string bin_dir_;
  std::string run_as_;  // empty: the current user
  std::string data_dir_;
  std::string cluster_dir_;
  std::string socket_dir_;
  std::string log_file_;
  std::string connection_string_;
  bool running_ = false;
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_EMBEDDED_POSTGRES_H_
