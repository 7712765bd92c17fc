#include "queue/server/server_config.h"

#include <cctype>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "common/status.h"

namespace drover::queue::server {
namespace {

// Adds an option whose environment variable follows the flag name.
template <typename T>
CLI::Option* Option(CLI::App& app, const std::string& name, T& value,
                    const std::string& help) {
  return app.add_option("--" + name, value, help)
      ->envname(EnvName(name))
      ->capture_default_str();
}

// Parses one --embedded-postgres-setting value, NAME=VALUE, into
// `settings` (replacing an earlier value of NAME). NAME is a PostgreSQL
// parameter name (letters, digits, '_' and '.'); VALUE is non-empty and
// has no line break. Errors: InputError naming the flag.
absl::Status AddEmbeddedPostgresSetting(
    std::string_view text, std::map<std::string, std::string>* settings) {
  constexpr std::string_view kFlag = "embedded-postgres-setting";
  const size_t eq = text.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InputError(kFlag, text, "must be NAME=VALUE, e.g. max_wal_size=8GB");
  }
  const std::string_view name = text.substr(0, eq);
  const std::string_view value = text.substr(eq + 1);
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
          c == '.')) {
      return InputError(kFlag, text,
                        "the setting name may hold only letters, digits, "
                        "'_' and '.'");
    }
  }
  if (value.empty()) {
    return InputError(kFlag, text, "the setting has no value after '='");
  }
  if (value.find_first_of("\r\n") != std::string_view::npos) {
    return InputError(kFlag, text, "the value must not hold a line break");
  }
  (*settings)[std::string(name)] = std::string(value);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationFlag(std::string_view field,
                                                 std::string_view text) {
  std::string s(text);
  if (s.empty()) return InputError(field, text, "a duration is required");
  bool digits_only = true;
  for (char c : s) {
    digits_only = digits_only &&
                  (std::isdigit(static_cast<unsigned char>(c)) || c == '.');
  }
  if (digits_only) s += "s";
  // absl knows h/m/s/ms/us/ns; days are common enough for deadlines.
  if (s.size() > 1 && s.back() == 'd' &&
      std::isdigit(static_cast<unsigned char>(s[s.size() - 2]))) {
    std::string number = s.substr(0, s.size() - 1);
    bool ok = !number.empty();
    for (char c : number) {
      ok = ok && std::isdigit(static_cast<unsigned char>(c));
    }
    if (ok) return absl::Hours(24) * std::stoll(number);
  }
  absl::Duration d;
  if (!absl::ParseDuration(s, &d) || d < absl::ZeroDuration()) {
    return InputError(field, text,
                      "not a duration; use e.g. 250ms, 20s, 20m, 1h30m, 5d");
  }
  return d;
}

ServerFlags::ServerFlags(CLI::App& app, ServerConfig* config)
    : config_(config), auth_flags_(app, &config->auth) {
  AddJsonConfigOption(app);
  Option(app, "data-dir", config->data_dir,
         "Directory for the embedded PostgreSQL cluster");
  Option(app, "database-url", config->database_url,
         "PostgreSQL connection string; empty starts an embedded cluster "
         "under --data-dir");
  app.add_option(
         "--embedded-postgres-setting", embedded_postgres_settings_,
         absl::StrCat("NAME=VALUE: a server setting of the embedded "
                      "PostgreSQL cluster, on top of the defaults ",
                      absl::StrJoin(config->embedded_postgres_settings, " ",
                                    absl::PairFormatter("=")),
                      " (repeatable)"))
      ->envname(EnvName("embedded-postgres-setting"));
  Option(app, "listen", config->listen, "gRPC listen address (host:port)");
  Option(app, "http-listen", config->http_listen,
         "HTTP listen address for /metrics and /healthz; empty disables");
  Option(app, "db-pool-size", config->db_pool_size,
         "PostgreSQL connections per process");
  Option(app, "db-plan-refresh", db_plan_refresh_,
         "How often pooled connections rebuild their query plans from the "
         "tables' current sizes (0: never)");
  Option(app, "report-batch", config->report_batch,
         "Most reports (ReportCompleted/Failed/Exception) resolved together "
         "in one statement and commit");
  Option(app, "report-batches-in-flight", config->report_batches_in_flight,
         "Report batches running at once");
  Option(app, "rpc-threads", config->rpc_threads,
         "Threads running blocking RPC work (0: 8 x --db-pool-size)");
  Option(app, "rpc-queue", config->rpc_queue,
         "RPC work items allowed to wait before calls are refused");
  Option(app, "claim-timeout", claim_timeout_,
         "How long a claim lasts before it must be reclaimed");
  Option(app, "poll-timeout", poll_timeout_,
         "How long ClaimWork waits for work before answering empty");
  Option(app, "safety-poll-interval", safety_poll_,
         "How often waiting ClaimWork calls re-check without a notification");
  Option(app, "max-deadline", max_deadline_,
         "Longest allowed task deadline after its creation");
  Option(app, "max-payload-bytes", max_payload_bytes_,
         "Largest accepted task payload (and extra), in bytes");
  Option(app, "max-dependencies", max_dependencies_,
         "Most dependencies a task may have");
  Option(app, "shutdown-grace", shutdown_grace_,
         "How long in-flight RPCs may take to finish on shutdown");
  Option(app, "resolvers", config->run_resolvers,
         "Run the background resolvers in this process");
  Option(app, "resolver-batch", config->resolvers.batch,
         "Rows each resolver handles per transaction");
  Option(app, "claim-expiry-interval", claim_expiry_interval_,
         "How often expired claims are resolved");
  Option(app, "deadline-interval", deadline_interval_,
         "How often tasks past their deadline are resolved");
  Option(app, "expiry-interval", expiry_interval_,
         "How often tasks past their expiry are deleted");
  Option(app, "blob-store", config->blobs.kind,
         "Where artifact bytes live: filesystem (served on --http-listen) "
         "or s3");
  Option(app, "blob-dir", config->blobs.dir,
         "filesystem blob store directory (default: <data-dir>/blobs)");
  Option(app, "blob-public-url", config->blobs.public_url,
         "Base URL (scheme://host:port) under which workers and clients "
         "reach --http-listen for artifact bytes (default: "
         "http://<http-listen>)");
  Option(app, "s3-endpoint", config->blobs.s3_endpoint,
         "s3 blob store: scheme://host[:port] of the S3-compatible service");
  Option(app, "s3-region", config->blobs.s3_region, "s3 blob store: region");
  Option(app, "s3-bucket", config->blobs.s3_bucket, "s3 blob store: bucket");
  Option(app, "s3-access-key-id", config->blobs.s3_access_key_id,
         "s3 blob store: access key id");
  Option(app, "s3-secret-access-key", config->blobs.s3_secret_access_key,
         "s3 blob store: secret access key (prefer the environment "
         "variable DROVER_S3_SECRET_ACCESS_KEY)");
  Option(app, "s3-path-style", config->blobs.s3_path_style,
         "s3 blob store: bucket in the path, not the host name (MinIO, "
         "s3rver)");
  Option(app, "s3-key-prefix", config->blobs.s3_key_prefix,
         "s3 blob store: prefix of every object key, e.g. drover/");
  Option(app, "artifact-upload-url-ttl", artifact_upload_url_ttl_,
         "How long an artifact upload URL stays valid");
  Option(app, "artifact-download-url-ttl", artifact_download_url_ttl_,
         "How long an artifact download URL stays valid");
  Option(app, "artifact-expiry-interval", artifact_expiry_interval_,
         "How often expired artifacts and their blobs are deleted");
  Option(app, "event-retention", event_retention_,
         "How long events stay in the event log (WatchEvents replay); "
         "older ones are deleted in batches of --resolver-batch");
  Option(app, "event-retention-interval", event_retention_interval_,
         "How often expired events are looked for");
  Option(app, "log-format", log_format_, "Log format: text or json");
  Option(app, "log-level", config->log.level,
         "Log level: trace, debug, info, warn, error, critical, off");
}

absl::Status ServerFlags::Resolve() {
  auto duration = [](const char* field, const std::string& text,
                     absl::Duration* out) -> absl::Status {
    DROVER_ASSIGN_OR_RETURN(*out, ParseDurationFlag(field, text));
    return absl::OkStatus();
  };
  queue_service::QueueServiceOptions& service = config_->service;
  DROVER_RETURN_IF_ERROR(
      duration("claim-timeout", claim_timeout_, &service.claim.claim_timeout));
  DROVER_RETURN_IF_ERROR(
      duration("poll-timeout", poll_timeout_, &service.claim.poll_timeout));
  DROVER_RETURN_IF_ERROR(duration("safety-poll-interval", safety_poll_,
                                  &service.claim.safety_poll_interval));
  DROVER_RETURN_IF_ERROR(
      duration("max-deadline", max_deadline_, &service.limits.max_deadline));
  DROVER_RETURN_IF_ERROR(
      duration("shutdown-grace", shutdown_grace_, &config_->shutdown_grace));
  DROVER_RETURN_IF_ERROR(duration("db-plan-refresh", db_plan_refresh_,
                                  &config_->db_plan_refresh));
  DROVER_RETURN_IF_ERROR(duration("claim-expiry-interval",
                                  claim_expiry_interval_,
                                  &config_->resolvers.claim_expiry_interval));
  DROVER_RETURN_IF_ERROR(duration("deadline-interval", deadline_interval_,
                                  &config_->resolvers.deadline_interval));
  DROVER_RETURN_IF_ERROR(duration("expiry-interval", expiry_interval_,
                                  &config_->resolvers.expiry_interval));
  DROVER_RETURN_IF_ERROR(duration("event-retention", event_retention_,
                                  &config_->resolvers.event_retention));
  DROVER_RETURN_IF_ERROR(
      duration("event-retention-interval", event_retention_interval_,
               &config_->resolvers.event_retention_interval));
  // Shorter would cut replays (WatchEvents after_event_id) of clients that
  // merely reconnect.
  if (config_->resolvers.event_retention < absl::Hours(1)) {
    return InputError("event-retention", event_retention_,
                      "event-retention must be at least 1h");
  }
  if (config_->resolvers.event_retention_interval < absl::Seconds(1)) {
    return InputError("event-retention-interval", event_retention_interval_,
                      "event-retention-interval must be at least 1s");
  }
  ArtifactsConfig& artifacts = config_->artifacts;
  DROVER_RETURN_IF_ERROR(duration("artifact-upload-url-ttl",
                                  artifact_upload_url_ttl_,
                                  &artifacts.upload_url_ttl));
  DROVER_RETURN_IF_ERROR(duration("artifact-download-url-ttl",
                                  artifact_download_url_ttl_,
                                  &artifacts.download_url_ttl));
  DROVER_RETURN_IF_ERROR(duration("artifact-expiry-interval",
                                  artifact_expiry_interval_,
                                  &artifacts.expiry_interval));
  // Shorter URLs would expire while a large upload is still starting.
  if (artifacts.upload_url_ttl < absl::Seconds(10) ||
      artifacts.upload_url_ttl > absl::Hours(24 * 7)) {
    return InputError("artifact-upload-url-ttl", artifact_upload_url_ttl_,
                      "artifact-upload-url-ttl must be within 10s..7d");
  }
  if (artifacts.download_url_ttl < absl::Seconds(10) ||
      artifacts.download_url_ttl > absl::Hours(24 * 7)) {
    return InputError("artifact-download-url-ttl", artifact_download_url_ttl_,
                      "artifact-download-url-ttl must be within 10s..7d");
  }
  if (artifacts.expiry_interval < absl::Seconds(1)) {
    return InputError("artifact-expiry-interval", artifact_expiry_interval_,
                      "artifact-expiry-interval must be at least 1s");
  }
  const BlobStoreConfig& blobs = config_->blobs;
  if (blobs.kind == "s3") {
    // S3BlobStore::Create checks the shapes; here only what is missing, so
    // the error names the flag.
    for (const auto& [flag, value] :
         {std::pair<const char*, const std::string*>{"s3-endpoint",
                                                     &blobs.s3_endpoint},
          {"s3-bucket", &blobs.s3_bucket},
          {"s3-access-key-id", &blobs.s3_access_key_id},
          {"s3-secret-access-key", &blobs.s3_secret_access_key}}) {
      if (value->empty()) {
        return InputError(
            flag, "", std::string(flag) + " is required with --blob-store s3");
      }
    }
  } else if (blobs.kind != "filesystem") {
    return InputError("blob-store", blobs.kind,
                      "blob-store must be filesystem or s3");
  }
  if (!blobs.public_url.empty() && blobs.public_url.rfind("http://", 0) != 0 &&
      blobs.public_url.rfind("https://", 0) != 0) {
    return InputError("blob-public-url", blobs.public_url,
                      "blob-public-url must start with http:// or https://");
  }
  if (service.claim.claim_timeout < absl::Seconds(1)) {
    return InputError("claim-timeout",
                      absl::FormatDuration(service.claim.claim_timeout),
                      "claim-timeout must be at least 1s");
  }
  if (service.claim.safety_poll_interval < absl::Milliseconds(10)) {
    return InputError("safety-poll-interval",
                      absl::FormatDuration(service.claim.safety_poll_interval),
                      "safety-poll-interval must be at least 10ms");
  }
  if (service.limits.max_deadline <= absl::ZeroDuration()) {
    return InputError("max-deadline", max_deadline_,
                      "max-deadline must be positive");
  }
  if (max_payload_bytes_ < 2) {
    return InputError("max-payload-bytes", std::to_string(max_payload_bytes_),
                      "max-payload-bytes must be at least 2 (\"{}\")");
  }
  service.limits.max_payload_bytes = static_cast<size_t>(max_payload_bytes_);
  if (max_dependencies_ < 0) {
    return InputError("max-dependencies", std::to_string(max_dependencies_),
                      "max-dependencies must not be negative");
  }
  service.limits.max_dependencies = static_cast<size_t>(max_dependencies_);
  if (config_->db_pool_size < 1 || config_->db_pool_size > 1000) {
    return InputError("db-pool-size", std::to_string(config_->db_pool_size),
                      "db-pool-size must be within 1..1000");
  }
  if (config_->report_batch < 1 || config_->report_batch > 1000) {
    return InputError("report-batch", std::to_string(config_->report_batch),
                      "report-batch must be within 1..1000");
  }
  if (config_->report_batches_in_flight < 1 ||
      config_->report_batches_in_flight > config_->db_pool_size) {
    return InputError("report-batches-in-flight",
                      std::to_string(config_->report_batches_in_flight),
                      "report-batches-in-flight must be within 1..db-pool-size");
  }
  if (config_->rpc_threads < 0 || config_->rpc_threads > 1000) {
    return InputError("rpc-threads", std::to_string(config_->rpc_threads),
                      "rpc-threads must be within 0..1000");
  }
  if (config_->rpc_queue < 1) {
    return InputError("rpc-queue", std::to_string(config_->rpc_queue),
                      "rpc-queue must be at least 1");
  }
  if (config_->resolvers.batch < 1 || config_->resolvers.batch > 10000) {
    return InputError("resolver-batch",
                      std::to_string(config_->resolvers.batch),
                      "resolver-batch must be within 1..10000");
  }
  for (const std::string& setting : embedded_postgres_settings_) {
    DROVER_RETURN_IF_ERROR(AddEmbeddedPostgresSetting(
        setting, &config_->embedded_postgres_settings));
  }
  if (config_->listen.empty()) {
    return InputError("listen", "", "listen (host:port) is required");
  }
  DROVER_RETURN_IF_ERROR(
      ParseLogFormat(log_format_, "log-format", &config_->log.format));
  DROVER_RETURN_IF_ERROR(auth_flags_.Resolve());
  return absl::OkStatus();
}

}  // namespace drover::queue::server
