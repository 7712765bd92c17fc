// ServerConfig: everything drover-queue reads from its flags, its JSON
// config file (--config) and DROVER_* environment variables (see
// common/config.h for the precedence), and the CLI11 wiring for it.
#ifndef DROVER_QUEUE_SERVER_SERVER_CONFIG_H_
#define DROVER_QUEUE_SERVER_SERVER_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/logging.h"
#include "queue/auth/auth_config.h"
#include "queue/queue_service/queue_service.h"
#include "queue/resolvers/resolvers.h"

namespace drover::queue::server {

// Where artifact bytes live (queue/blobstore).
struct BlobStoreConfig {
  // "filesystem" (files served by this process's HTTP listener on signed
  // URLs) or "s3" (presigned URLs; workers and clients move bytes to and
  // from the bucket directly).
  std::string kind = "filesystem";
  // filesystem: the blob directory; empty: <data_dir>/blobs. Replicas
  // must share it (or use s3).
  std::string dir;
  // filesystem: scheme://host[:port] under which workers and clients reach
  // the HTTP listener; empty: http://<http-listen> (127.0.0.1 for a
  // wildcard host).
  std::string public_url;
  // s3: see queue/blobstore/s3/s3_blob_store.h.
  std::string s3_endpoint;
  std::string s3_region = "us-east-1";
  std::string s3_bucket;
  std::string s3_access_key_id;
  std::string s3_secret_access_key;
  bool s3_path_style = false;
  std::string s3_key_prefix;
};

// The Artifacts service and its expiry reaper.
struct ArtifactsConfig {
  // Validity of upload URLs handed to workers.
  absl::Duration upload_url_ttl = absl::Hours(1);
  // Validity of download URLs handed to readers.
  absl::Duration download_url_ttl = absl::Minutes(10);
  // How often expired artifacts (rows and blobs) are deleted.
  absl::Duration expiry_interval = absl::Minutes(5);
};

struct ServerConfig {
  // Holds the embedded PostgreSQL cluster (when no database URL is given).
  std::string data_dir = "./.drover";
  // libpq connection string or URL; empty: embedded PostgreSQL.
  std::string database_url;
  // Server settings of the embedded cluster, passed as -c name=value at
  // each start (nothing is written to its postgresql.conf). The defaults
  // space checkpoints out: at PostgreSQL's own (1 GB of WAL, 5 minutes) a
  // big task graph checkpoints every 20-60 s and each checkpoint makes the
  // next write of every page log the whole page (docs/performance.md).
  // --embedded-postgres-setting adds to or overrides these.
  std::map<std::string, std::string> embedded_postgres_settings = {
      {"max_wal_size", "4GB"}, {"checkpoint_timeout", "15min"}};
  std::string listen = "127.0.0.1:50051";
  // HTTP listener (/metrics, /healthz); empty disables it.
  std::string http_listen = "127.0.0.1:8080";
  int db_pool_size = 8;
  // How often pooled connections rebuild their cached query plans (0:
  // never); see PgStoreOptions::plan_refresh_interval.
  absl::Duration db_plan_refresh = absl::Seconds(5);
  // Concurrent reports share one statement and commit: at most this many
  // per batch, and this many batches at once (PgStoreOptions).
  int report_batch = 64;
  int report_batches_in_flight = 1;
  // Threads running blocking RPC work; 0: 8 x db_pool_size.
  int rpc_threads = 0;
  // Work items waiting for an RPC thread before calls are refused.
  int rpc_queue = 4096;
  // Grace period for in-flight RPCs on shutdown.
  absl::Duration shutdown_grace = absl::Seconds(10);
  // Cache lifetime of the per-queue counts /metrics reports.
  absl::Duration queue_metrics_ttl = absl::Seconds(5);
  bool run_resolvers = true;
  queue_service::QueueServiceOptions service;
  resolvers::ResolverOptions resolvers;
  LogOptions log;
  // Keys, bootstrap, static clients and TLS (queue/auth/auth_config.h).
  auth::AuthConfig auth;
  BlobStoreConfig blobs;
  ArtifactsConfig artifacts;
};

// Parses "20m", "1h30m", "250ms", "5d" (days) or a bare number of
// seconds. Errors: InputError naming `field`.
absl::StatusOr<absl::Duration> ParseDurationFlag(std::string_view field,
                                                 std::string_view text);

// Binds config's options to `app` (each with an env variable DROVER_<NAME>)
// and adds --config. Call Resolve() after app.parse().
class ServerFlags {
 public:
  ServerFlags(CLI::App& app, ServerConfig* config);
  // Converts the textual durations and checks ranges. Errors: InputError
  // naming the flag.
  absl::Status Resolve();

 private:
  ServerConfig* config_;
  auth::AuthFlags auth_flags_;
  std::string claim_timeout_ = "20m";
  std::string poll_timeout_ = "20s";
  std::string safety_poll_ = "1s";
  std::string max_deadline_ = "5d";
  std::string shutdown_grace_ = "10s";
  std::string db_plan_refresh_ = "5s";
  std::string claim_expiry_interval_ = "5s";
  std::string deadline_interval_ = "10s";
  std::string expiry_interval_ = "5m";
  std::string log_format_ = "text";
  std::string artifact_upload_url_ttl_ = "1h";
  std::string artifact_download_url_ttl_ = "10m";
  std::string artifact_expiry_interval_ = "5m";
  std::string event_retention_ = "7d";
  std::string event_retention_interval_ = "5m";
  int64_t max_payload_bytes_ = 256 * 1024;
  int64_t max_dependencies_ = 10000;
  std::vector<std::string> embedded_postgres_settings_;
};


}  // namespace drover::queue::server

#endif  // DROVER_QUEUE_SERVER_SERVER_CONFIG_H_
