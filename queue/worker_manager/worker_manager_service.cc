#include "queue/worker_manager/worker_manager_service.h"

#include <algorithm>
#include <optional>
#include <utility>

#include "common/status.h"
#include "nlohmann/json.hpp"
#include "queue/auth/rpc_scopes.h"
#include "queue/auth/scopes.h"
#include "queue/queue_service/conversions.h"
#include "queue/queue_service/task_validation.h"
#include "spdlog/spdlog.h"

namespace drover::queue::worker_manager {
namespace {

using queue_service::FromProtoTime;
using queue_service::Rfc3339;
using queue_service::ToProtoTime;
using queue_service::ValidateIdentifier;
using queue_service::ValidateTaskQueueId;

constexpr size_t kMaxDescriptionBytes = 32 * 1024;
constexpr size_t kMaxOwnerLength = 255;
constexpr size_t kMaxWorkerConfigBytes = 64 * 1024;
constexpr size_t kMaxFactLength = 255;
constexpr size_t kMaxQuarantineReason = 1024;

// Subjects the keyed hashes bind secrets to, so a hash copied to another
// row or kind verifies nothing.
std::string StaticSecretSubject(const std::string& path) {
  return "worker-static/" + path;
}
std::string PoolSecretSubject(const std::string& pool) {
  return "worker-pool-registration/" + pool;
}
std::string UsedSecretSubject(const std::string& path) {
  return "worker-reregistration/" + path;
}

ErrorDetails WorkerDetails(const std::string& pool, const std::string& group,
                           const std::string& id) {
  return {{"worker_pool_id", pool}, {"worker_group", group}, {"worker_id", id}};
}

absl::Status ValidateWorkerKey(const std::string& pool,
                               const std::string& group, const std::string& id,
                               std::string_view prefix = "") {
  const std::string p(prefix);
  DROVER_RETURN_IF_ERROR(ValidateTaskQueueId(p + "worker_pool_id", pool));
  DROVER_RETURN_IF_ERROR(ValidateIdentifier(p + "worker_group", group));
  return ValidateIdentifier(p + "worker_id", id);
}

absl::StatusOr<absl::Duration> Timeout(int64_t seconds, std::string_view field,
                                       absl::Duration fallback,
                                       bool zero_disables) {
  if (seconds == 0) return zero_disables ? absl::ZeroDuration() : fallback;
  const absl::Duration d = absl::Seconds(seconds);
  if (seconds < 0 || d < kMinLifecycleTimeout || d > kMaxLifecycleTimeout) {
    return InputError(field, std::to_string(seconds),
                      "must be between 60 seconds and 30 days (2592000), or "
                      "0 for the default");
  }
  return d;
}

absl::StatusOr<int> Capacity(int capacity, std::string_view field,
                             int fallback) {
  if (capacity == 0) return fallback;
  if (capacity < 0 || capacity > kMaxWorkerCapacity) {
    return InputError(
        field, std::to_string(capacity),
        "must be between 1 and " + std::to_string(kMaxWorkerCapacity));
  }
  return capacity;
}

absl::Status ValidateFacts(const v1::WorkerFacts& facts) {
  const std::pair<const char*, const std::string*> fields[] = {
      {"facts.hostname", &facts.hostname()},
      {"facts.os", &facts.os()},
      {"facts.engine", &facts.engine()},
      {"facts.worker_version", &facts.worker_version()}};
  for (const auto& [field, value] : fields) {
    if (value->size() > kMaxFactLength) {
      return InputError(field, value->substr(0, 64) + "...",
                        "longer than 255 characters");
    }
  }
  return absl::OkStatus();
}

WorkerFactsRecord FactsFromProto(const v1::WorkerFacts& facts) {
  WorkerFactsRecord f;
  f.hostname = facts.hostname();
  f.os = facts.os();
  f.engine = facts.engine();
  f.worker_version = facts.worker_version();
  if (facts.has_boot_time()) {
    absl::StatusOr<absl::Time> t = FromProtoTime(facts.boot_time(), "boot");
    if (t.ok()) f.boot_time = absl::FromUnixMicros(absl::ToUnixMicros(*t));
  }
  return f;
}

v1::WorkerPool PoolToProto(const PoolRecord& p) {
  v1::WorkerPool out;
  out.set_worker_pool_id(p.worker_pool_id);
  v1::WorkerPoolConfig* c = out.mutable_config();
  c->set_description(p.config.description);
  c->set_owner(p.config.owner);
  c->set_provider(p.config.provider);
  c->set_min_capacity(p.config.min_capacity);
  c->set_max_capacity(p.config.max_capacity);
  c->set_registration_timeout_seconds(
      absl::ToInt64Seconds(p.config.registration_timeout));
  c->set_reregistration_timeout_seconds(
      absl::ToInt64Seconds(p.config.reregistration_timeout));
  c->set_queue_inactivity_timeout_seconds(
      absl::ToInt64Seconds(p.config.queue_inactivity_timeout));
  if (p.config.reregistration_sunset.has_value()) {
    *c->mutable_reregistration_sunset() =
        ToProtoTime(*p.config.reregistration_sunset);
  }
  c->set_worker_config(p.config.worker_config);
  *out.mutable_created() = ToProtoTime(p.created);
  *out.mutable_last_modified() = ToProtoTime(p.last_modified);
  out.set_has_registration_secret(!p.registration_secret_hash.empty());
  return out;
}

void SetTime(const std::optional<absl::Time>& t,
             google::protobuf::Timestamp* out) {
  if (t.has_value()) *out = ToProtoTime(*t);
}

v1::Worker WorkerToProto(const WorkerRecord& w, absl::Time now) {
  v1::Worker out;
  out.set_worker_pool_id(w.worker_pool_id);
  out.set_worker_group(w.worker_group);
  out.set_worker_id(w.worker_id);
  out.set_provider(w.provider);
  out.set_state(std::string(WorkerStateName(w.state)));
  out.set_capacity(w.capacity);
  *out.mutable_created() = ToProtoTime(w.created);
  if (w.registered) SetTime(w.registered, out.mutable_registered());
  if (w.last_seen) SetTime(w.last_seen, out.mutable_last_seen());
  if (w.credentials_expire) {
    SetTime(w.credentials_expire, out.mutable_credentials_expire());
  }
  if (w.quarantine_until.has_value() && *w.quarantine_until > now) {
    SetTime(w.quarantine_until, out.mutable_quarantine_until());
    out.set_quarantine_reason(w.quarantine_reason);
  }
  if (w.first_claim) SetTime(w.first_claim, out.mutable_first_claim());
  for (const std::string& t : w.recent_tasks) out.add_recent_tasks(t);
  v1::WorkerFacts* f = out.mutable_facts();
  f->set_hostname(w.facts.hostname);
  f->set_os(w.facts.os);
  f->set_engine(w.facts.engine);
  f->set_worker_version(w.facts.worker_version);
  if (w.facts.boot_time) SetTime(w.facts.boot_time, f->mutable_boot_time());
  out.set_running_tasks(w.running_tasks);
  out.set_supports_reregistration(w.supports_reregistration);
  out.set_has_static_secret(!w.static_secret_hash.empty());
  return out;
}

v1::WorkerPoolStats StatsToProto(const PoolStatsRecord& s, absl::Time now) {
  v1::WorkerPoolStats out;
  out.set_worker_pool_id(s.worker_pool_id);
  out.set_min_capacity(s.min_capacity);
  out.set_max_capacity(s.max_capacity);
  out.set_requested_workers(s.requested);
  out.set_running_workers(s.running);
  out.set_stopping_workers(s.stopping);
  out.set_stopped_workers(s.stopped);
  out.set_quarantined_workers(s.quarantined);
  out.set_total_capacity(s.total_capacity);
  out.set_running_tasks(s.running_tasks);
  out.set_idle_capacity(s.idle_capacity);
  out.set_pending_tasks(s.pending_tasks);
  out.set_below_min_capacity(s.total_capacity < s.min_capacity);
  if (s.oldest_pending.has_value()) {
    out.set_oldest_pending_age_seconds(
        std::max<int64_t>(0, absl::ToInt64Seconds(now - *s.oldest_pending)));
  }
  return out;
}

// A registration (or creating a worker) may not take the capacity of the
// pool's workers that are not stopped above max_capacity (0: no limit).
// The worker's own row is not among the others, so a worker registering
// again is counted once. Created workers count too, so that identities
// handed out never add up to more than the pool may run.
absl::Status CheckMaxCapacity(const PoolRecord& p, const WorkerRecord& next) {
  const int requested = next.capacity;
  if (p.config.provider != "static" || p.config.max_capacity <= 0 ||
      !p.other_workers_capacity.has_value()) {
    return absl::OkStatus();
  }
  const int64_t others = *p.other_workers_capacity;
  if (others + requested <= p.config.max_capacity) return absl::OkStatus();
  ErrorDetails details =
      WorkerDetails(p.worker_pool_id, next.worker_group, next.worker_id);
  details["field"] = "capacity";
  details["reason"] = "max-capacity";
  details["max_capacity"] = std::to_string(p.config.max_capacity);
  details["current_capacity"] = std::to_string(others);
  details["requested_capacity"] = std::to_string(requested);
  return MakeError(
      ErrorCode::kRequestConflict,
      "pool " + p.worker_pool_id + " is at its max_capacity of " +
          std::to_string(p.config.max_capacity) + ": its other workers have " +
          std::to_string(others) + " slot(s) and worker " + next.worker_group +
          "/" + next.worker_id + " asks for " + std::to_string(requested) +
          "; stop or remove workers, or raise max_capacity",
      std::move(details));
}

// Why a worker cannot (re-)register in its current state.
absl::Status NotRegistrable(const WorkerRecord& w, std::string_view action) {
  ErrorDetails details =
      WorkerDetails(w.worker_pool_id, w.worker_group, w.worker_id);
  details["state"] = std::string(WorkerStateName(w.state));
  if (!w.stop_reason.empty()) details["stop_reason"] = w.stop_reason;
  std::string message = "worker " + w.worker_group + "/" + w.worker_id +
                        " of pool " + w.worker_pool_id + " is " +
                        std::string(WorkerStateName(w.state));
  if (!w.stop_reason.empty()) message += " (" + w.stop_reason + ")";
  message += " and cannot " + std::string(action);
  if (w.state == WorkerState::kStopped) {
    message += "; an operator must create it again";
  }
  return MakeError(ErrorCode::kRequestConflict, message, std::move(details));
}

}  // namespace

std::string WorkerClientId(std::string_view pool, std::string_view group,
                           std::string_view id) {
  return "worker/" + WorkerPath(pool, group, id);
}

std::vector<std::string> WorkerCredentialScopes(std::string_view pool,
                                                std::string_view group,
                                                std::string_view id) {
  const std::string path = WorkerPath(pool, group, id);
  return auth::NormalizeScopes({
      "queue:claim-work:" + std::string(pool),
      "queue:worker-id:" + std::string(group) + "/" + std::string(id),
      "worker-manager:reregister-worker:" + path,
      "worker-manager:worker:" + path,
      "secrets:get:worker-pool:" + std::string(pool) + "/*",
  });
}

absl::StatusOr<PoolConfig> ValidatePoolConfig(
    const v1::WorkerPoolConfig& config) {
  PoolConfig c;
  if (config.description().size() > kMaxDescriptionBytes) {
    return InputError("config.description", "",
                      "longer than 32 KiB (" +
                          std::to_string(config.description().size()) +
                          " bytes)");
  }
  c.description = config.description();
  if (config.owner().empty() || config.owner().size() > kMaxOwnerLength) {
    return InputError("config.owner", config.owner(),
                      "must be 1..255 characters (who to ask about the pool)");
  }
  c.owner = config.owner();
  if (!config.provider().empty() && config.provider() != "static") {
    return InputError("config.provider", config.provider(),
                      "unknown provider; supported: static");
  }
  c.provider = "static";
  if (config.min_capacity() < 0 || config.min_capacity() > kMaxPoolCapacity) {
    return InputError("config.min_capacity",
                      std::to_string(config.min_capacity()),
                      "must be between 0 and 100000");
  }
  if (config.max_capacity() < 0 || config.max_capacity() > kMaxPoolCapacity) {
    return InputError("config.max_capacity",
                      std::to_string(config.max_capacity()),
                      "must be between 0 and 100000");
  }
  // 0 is "no maximum", which any minimum fits under.
  if (config.max_capacity() != 0 &&
      config.max_capacity() < config.min_capacity()) {
    return InputError("config.max_capacity",
                      std::to_string(config.max_capacity()),
                      "must be 0 (no maximum) or not below min_capacity (" +
                          std::to_string(config.min_capacity()) + ")");
  }
  c.min_capacity = config.min_capacity();
  c.max_capacity = config.max_capacity();
  DROVER_ASSIGN_OR_RETURN(c.registration_timeout,
                          Timeout(config.registration_timeout_seconds(),
                                  "config.registration_timeout_seconds",
                                  kDefaultRegistrationTimeout, false));
  DROVER_ASSIGN_OR_RETURN(c.reregistration_timeout,
                          Timeout(config.reregistration_timeout_seconds(),
                                  "config.reregistration_timeout_seconds",
                                  kDefaultReregistrationTimeout, false));
  DROVER_ASSIGN_OR_RETURN(c.queue_inactivity_timeout,
                          Timeout(config.queue_inactivity_timeout_seconds(),
                                  "config.queue_inactivity_timeout_seconds",
                                  absl::ZeroDuration(), true));
  if (config.has_reregistration_sunset()) {
    DROVER_ASSIGN_OR_RETURN(absl::Time t,
                            FromProtoTime(config.reregistration_sunset(),
                                          "config.reregistration_sunset"));
    c.reregistration_sunset = absl::FromUnixMicros(absl::ToUnixMicros(t));
  }
  if (config.worker_config().size() > kMaxWorkerConfigBytes) {
    return MakeError(ErrorCode::kInputTooLarge,
                     "worker_config is larger than 64 KiB",
                     {{"field", "config.worker_config"}});
  }
  if (!config.worker_config().empty()) {
    nlohmann::json doc =
        nlohmann::json::parse(config.worker_config(), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
      return InputError("config.worker_config",
                        config.worker_config().substr(0, 64),
                        "must be a JSON object");
    }
    c.worker_config = doc.dump();
  }
  return c;
}

WorkerManagerService::WorkerManagerService(const WorkerManagerDeps& deps)
    : deps_(deps), runner_(deps.authorizer, deps.executor) {}

absl::Time WorkerManagerService::Now() const {
  return absl::FromUnixMicros(absl::ToUnixMicros(deps_.clock->Now()));
}

absl::Status WorkerManagerService::Respond(
    const PoolRecord& pool, const WorkerRecord& worker,
    const std::string& secret, v1::RegisterWorkerResponse* response) const {
  response->set_reregistration_secret(secret);
  response->set_worker_config(pool.config.worker_config);
  *response->mutable_worker() = WorkerToProto(worker, Now());
  return absl::OkStatus();
}

absl::StatusOr<int> WorkerManagerService::ResolveRunsOf(
    const WorkerRecord& worker) {
  DROVER_ASSIGN_OR_RETURN(
      std::vector<RunRef> runs,
      deps_.store->RunningRuns(worker.worker_pool_id, worker.worker_group,
                               worker.worker_id));
  int resolved = 0;
  for (const RunRef& run : runs) {
    absl::StatusOr<store::TaskStatus> status =
        deps_.tasks->ResolveRun(run.task_id, run.run_id,
                                store::RunState::kException, "worker-shutdown");
    // A run resolved meanwhile (by the worker or claim expiry) is fine.
    if (status.ok()) {
      ++resolved;
    } else if (!HasErrorCode(status.status(), ErrorCode::kRequestConflict)) {
      return status.status();
    }
  }
  return resolved;
}

// ---- pools -----------------------------------------------------------------

grpc::ServerUnaryReactor* WorkerManagerService::CreateWorkerPool(
    grpc::CallbackServerContext* context,
    const v1::CreateWorkerPoolRequest* request, v1::WorkerPool* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/CreateWorkerPool", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        DROVER_RETURN_IF_ERROR(
            ValidateTaskQueueId("worker_pool_id", request->worker_pool_id()));
        DROVER_ASSIGN_OR_RETURN(PoolConfig config,
                                ValidatePoolConfig(request->config()));
        DROVER_ASSIGN_OR_RETURN(
            PoolRecord pool,
            deps_.store->CreatePool(request->worker_pool_id(), config));
        *response = PoolToProto(pool);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::UpdateWorkerPool(
    grpc::CallbackServerContext* context,
    const v1::UpdateWorkerPoolRequest* request, v1::WorkerPool* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/UpdateWorkerPool", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        DROVER_RETURN_IF_ERROR(
            ValidateTaskQueueId("worker_pool_id", request->worker_pool_id()));
        DROVER_ASSIGN_OR_RETURN(PoolConfig config,
                                ValidatePoolConfig(request->config()));
        DROVER_ASSIGN_OR_RETURN(
            PoolRecord pool,
            deps_.store->UpdatePool(request->worker_pool_id(), config));
        *response = PoolToProto(pool);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::DeleteWorkerPool(
    grpc::CallbackServerContext* context,
    const v1::WorkerPoolIdRequest* request,
    v1::DeleteWorkerPoolResponse* /*response*/) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/DeleteWorkerPool", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        DROVER_RETURN_IF_ERROR(
            ValidateTaskQueueId("worker_pool_id", request->worker_pool_id()));
        return deps_.store->DeletePool(request->worker_pool_id());
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::GetWorkerPool(
    grpc::CallbackServerContext* context,
    const v1::WorkerPoolIdRequest* request, v1::WorkerPool* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/GetWorkerPool", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        DROVER_RETURN_IF_ERROR(
            ValidateTaskQueueId("worker_pool_id", request->worker_pool_id()));
        DROVER_ASSIGN_OR_RETURN(
            PoolRecord pool, deps_.store->GetPool(request->worker_pool_id()));
        *response = PoolToProto(pool);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::ListWorkerPools(
    grpc::CallbackServerContext* context,
    const v1::ListWorkerPoolsRequest* request,
    v1::ListWorkerPoolsResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/ListWorkerPools", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        DROVER_ASSIGN_OR_RETURN(int limit, auth::ListLimit(request->limit()));
        DROVER_ASSIGN_OR_RETURN(
            std::string after,
            auth::DecodeContinuationToken(request->continuation_token()));
        DROVER_ASSIGN_OR_RETURN(store::Page<PoolRecord> page,
                                deps_.store->ListPools(after, limit));
        for (const PoolRecord& p : page.items) {
          *response->add_worker_pools() = PoolToProto(p);
        }
        response->set_continuation_token(
            auth::EncodeContinuationToken(page.continuation_token));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::ResetRegistrationSecret(
    grpc::CallbackServerContext* context,
    const v1::ResetRegistrationSecretRequest* request,
    v1::ResetRegistrationSecretResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/ResetRegistrationSecret", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        const std::string& pool = request->worker_pool_id();
        DROVER_RETURN_IF_ERROR(ValidateTaskQueueId("worker_pool_id", pool));
        if (request->remove()) {
          return deps_.store->SetRegistrationSecretHash(pool, "");
        }
        std::string secret = crypto::GenerateAccessToken();
        DROVER_RETURN_IF_ERROR(deps_.store->SetRegistrationSecretHash(
            pool, deps_.hasher->Hash(PoolSecretSubject(pool), secret)));
        response->set_registration_secret(std::move(secret));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::GetWorkerPoolStats(
    grpc::CallbackServerContext* context,
    const v1::WorkerPoolIdRequest* request, v1::WorkerPoolStats* response) {
  return runner_.Run(context, "/drover.v1.WorkerManager/GetWorkerPoolStats",
                     *request, [=, this](const auth::Caller&) -> absl::Status {
                       DROVER_RETURN_IF_ERROR(ValidateTaskQueueId(
                           "worker_pool_id", request->worker_pool_id()));
                       DROVER_ASSIGN_OR_RETURN(
                           PoolStatsRecord stats,
                           deps_.store->PoolStats(request->worker_pool_id()));
                       *response = StatsToProto(stats, Now());
                       return absl::OkStatus();
                     });
}

grpc::ServerUnaryReactor* WorkerManagerService::ListWorkerPoolStats(
    grpc::CallbackServerContext* context,
    const v1::ListWorkerPoolStatsRequest* request,
    v1::ListWorkerPoolStatsResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/ListWorkerPoolStats", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        DROVER_ASSIGN_OR_RETURN(int limit, auth::ListLimit(request->limit()));
        DROVER_ASSIGN_OR_RETURN(
            std::string after,
            auth::DecodeContinuationToken(request->continuation_token()));
        DROVER_ASSIGN_OR_RETURN(store::Page<PoolStatsRecord> page,
                                deps_.store->ListPoolStats(after, limit));
        const absl::Time now = Now();
        for (const PoolStatsRecord& s : page.items) {
          *response->add_stats() = StatsToProto(s, now);
        }
        response->set_continuation_token(
            auth::EncodeContinuationToken(page.continuation_token));
        return absl::OkStatus();
      });
}

// ---- workers ---------------------------------------------------------------

grpc::ServerUnaryReactor* WorkerManagerService::CreateWorker(
    grpc::CallbackServerContext* context,
    const v1::CreateWorkerRequest* request,
    v1::CreateWorkerResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/CreateWorker", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        const std::string& pool = request->worker_pool_id();
        const std::string& group = request->worker_group();
        const std::string& id = request->worker_id();
        DROVER_RETURN_IF_ERROR(ValidateWorkerKey(pool, group, id));
        DROVER_ASSIGN_OR_RETURN(int capacity,
                                Capacity(request->capacity(), "capacity", 1));
        const absl::Time now = Now();
        std::string secret = crypto::GenerateAccessToken();
        const std::string hash = deps_.hasher->Hash(
            StaticSecretSubject(WorkerPath(pool, group, id)), secret);
        DROVER_ASSIGN_OR_RETURN(
            WorkerRecord worker,
            deps_.store->MutateWorker(
                pool, group, id,
                [&](const PoolRecord& p,
                    const std::optional<WorkerRecord>& current)
                    -> absl::StatusOr<WorkerRecord> {
                  // A stopped row (removed, shut down, timed out) is
                  // replaced: creating the worker again is how an operator
                  // readmits a removed worker or replaces its static
                  // secret, without waiting for the row's deletion.
                  if (current.has_value() &&
                      current->state != WorkerState::kStopped) {
                    return ConflictError(
                        "worker " + group + "/" + id + " of pool " + pool +
                            " already exists (state " +
                            std::string(WorkerStateName(current->state)) +
                            "); remove it first to create it again",
                        WorkerDetails(pool, group, id));
                  }
                  WorkerRecord w;
                  if (current.has_value()) {
                    w.spent_secret_hashes = current->spent_secret_hashes;
                    // Readmitting a worker does not lift its quarantine
                    // (QuarantineWorker does), as a stopped worker that
                    // registers afresh keeps it too.
                    w.quarantine_until = current->quarantine_until;
                    w.quarantine_reason = current->quarantine_reason;
                  }
                  w.worker_pool_id = pool;
                  w.worker_group = group;
                  w.worker_id = id;
                  w.provider = p.config.provider;
                  w.state = WorkerState::kRequested;
                  w.capacity = capacity;
                  w.created = now;
                  w.expires = now + p.config.registration_timeout +
                              kStoppedWorkerRetention;
                  w.static_secret_hash = hash;
                  DROVER_RETURN_IF_ERROR(CheckMaxCapacity(p, w));
                  return w;
                },
                /*count_capacity=*/true));
        *response->mutable_worker() = WorkerToProto(worker, now);
        response->set_static_secret(std::move(secret));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::GetWorker(
    grpc::CallbackServerContext* context, const v1::WorkerKey* request,
    v1::Worker* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/GetWorker", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        DROVER_RETURN_IF_ERROR(ValidateWorkerKey(request->worker_pool_id(),
                                                 request->worker_group(),
                                                 request->worker_id()));
        DROVER_ASSIGN_OR_RETURN(
            WorkerRecord w, deps_.store->GetWorker(request->worker_pool_id(),
                                                   request->worker_group(),
                                                   request->worker_id()));
        *response = WorkerToProto(w, Now());
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::ListWorkers(
    grpc::CallbackServerContext* context, const v1::ListWorkersRequest* request,
    v1::ListWorkersResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/ListWorkers", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        DROVER_RETURN_IF_ERROR(
            ValidateTaskQueueId("worker_pool_id", request->worker_pool_id()));
        std::vector<WorkerState> states;
        if (request->state().empty()) {
          states = {WorkerState::kRequested, WorkerState::kRunning,
                    WorkerState::kStopping};
        } else if (request->state() != "all") {
          absl::StatusOr<WorkerState> s = ParseWorkerState(request->state());
          if (!s.ok()) {
            return InputError("state", request->state(),
                              "must be requested, running, stopping, "
                              "stopped, all or empty");
          }
          states = {*s};
        }
        DROVER_ASSIGN_OR_RETURN(int limit, auth::ListLimit(request->limit()));
        DROVER_ASSIGN_OR_RETURN(
            std::string after,
            auth::DecodeContinuationToken(request->continuation_token()));
        DROVER_ASSIGN_OR_RETURN(
            store::Page<WorkerRecord> page,
            deps_.store->ListWorkers(request->worker_pool_id(), states, after,
                                     limit));
        const absl::Time now = Now();
        for (const WorkerRecord& w : page.items) {
          *response->add_workers() = WorkerToProto(w, now);
        }
        response->set_continuation_token(
            auth::EncodeContinuationToken(page.continuation_token));
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::QuarantineWorker(
    grpc::CallbackServerContext* context,
    const v1::QuarantineWorkerRequest* request, v1::Worker* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/QuarantineWorker", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        const v1::WorkerKey& key = request->worker();
        DROVER_RETURN_IF_ERROR(ValidateWorkerKey(key.worker_pool_id(),
                                                 key.worker_group(),
                                                 key.worker_id(), "worker."));
        const absl::Time now = Now();
        std::optional<absl::Time> until;
        if (request->has_quarantine_until()) {
          DROVER_ASSIGN_OR_RETURN(
              absl::Time t,
              FromProtoTime(request->quarantine_until(), "quarantine_until"));
          if (t > now) until = absl::FromUnixMicros(absl::ToUnixMicros(t));
        }
        if (until.has_value()) {
          if (request->reason().empty()) {
            return InputError("reason", "",
                              "say why the worker is quarantined");
          }
          if (request->reason().size() > kMaxQuarantineReason) {
            return InputError("reason", request->reason().substr(0, 64),
                              "longer than 1024 characters");
          }
        }
        DROVER_ASSIGN_OR_RETURN(
            WorkerRecord w,
            deps_.store->MutateWorker(
                key.worker_pool_id(), key.worker_group(), key.worker_id(),
                [&](const PoolRecord&,
                    const std::optional<WorkerRecord>& current)
                    -> absl::StatusOr<WorkerRecord> {
                  if (!current.has_value()) {
                    return WorkerNotFound(key.worker_pool_id(),
                                          key.worker_group(), key.worker_id());
                  }
                  WorkerRecord next = *current;
                  next.quarantine_until = until;
                  next.quarantine_reason =
                      until.has_value() ? request->reason() : "";
                  return next;
                }));
        if (deps_.claim_gate != nullptr) {
          deps_.claim_gate->Forget(key.worker_pool_id(), key.worker_group(),
                                   key.worker_id());
        }
        *response = WorkerToProto(w, now);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::RemoveWorker(
    grpc::CallbackServerContext* context, const v1::WorkerKey* request,
    v1::RemoveWorkerResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/RemoveWorker", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        const std::string& pool = request->worker_pool_id();
        const std::string& group = request->worker_group();
        const std::string& id = request->worker_id();
        DROVER_RETURN_IF_ERROR(ValidateWorkerKey(pool, group, id));
        const absl::Time now = Now();
        DROVER_ASSIGN_OR_RETURN(
            WorkerRecord w,
            deps_.store->MutateWorker(
                pool, group, id,
                [&](const PoolRecord&,
                    const std::optional<WorkerRecord>& current)
                    -> absl::StatusOr<WorkerRecord> {
                  if (!current.has_value()) {
                    return WorkerNotFound(pool, group, id);
                  }
                  WorkerRecord next = *current;
                  // A running daemon learns of its removal from its next
                  // heartbeat (stop) and then shuts down; one that never
                  // registered has nothing to tell.
                  if (current->state == WorkerState::kRunning) {
                    next.state = WorkerState::kStopping;
                  } else if (current->state == WorkerState::kRequested) {
                    next.state = WorkerState::kStopped;
                    next.expires = now + kStoppedWorkerRetention;
                  }
                  if (current->state != WorkerState::kStopped) {
                    next.stop_reason = "removed";
                  }
                  return next;
                }));
        DROVER_ASSIGN_OR_RETURN(int resolved, ResolveRunsOf(w));
        w.running_tasks = 0;
        *response->mutable_worker() = WorkerToProto(w, now);
        response->set_resolved_runs(resolved);
        return absl::OkStatus();
      });
}

// ---- registration ----------------------------------------------------------

grpc::ServerUnaryReactor* WorkerManagerService::RegisterWorker(
    grpc::CallbackServerContext* context,
    const v1::RegisterWorkerRequest* request,
    v1::RegisterWorkerResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/RegisterWorker", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        const std::string& pool = request->worker_pool_id();
        const std::string& group = request->worker_group();
        const std::string& id = request->worker_id();
        DROVER_RETURN_IF_ERROR(ValidateWorkerKey(pool, group, id));
        if (request->proof().empty()) {
          return InputError("proof", "",
                            "the worker's static secret or the pool's "
                            "registration secret is required");
        }
        DROVER_RETURN_IF_ERROR(ValidateFacts(request->facts()));
        DROVER_RETURN_IF_ERROR(
            Capacity(request->capacity(), "capacity", 1).status());
        const std::string path = WorkerPath(pool, group, id);
        const absl::Time now = Now();
        const std::string secret = crypto::GenerateAccessToken();
        DROVER_ASSIGN_OR_RETURN(
            std::string ciphertext,
            deps_.keyring->Encrypt(secret, ReregistrationSecretAd(path)));
        std::string certificate;
        PoolRecord pool_seen;
        DROVER_ASSIGN_OR_RETURN(
            WorkerRecord worker,
            deps_.store->MutateWorker(
                pool, group, id,
                [&](const PoolRecord& p,
                    const std::optional<WorkerRecord>& current)
                    -> absl::StatusOr<WorkerRecord> {
                  pool_seen = p;
                  if (p.config.reregistration_sunset.has_value() &&
                      now >= *p.config.reregistration_sunset &&
                      !request->supports_reregistration()) {
                    return MakeError(
                        ErrorCode::kInputError,
                        "pool " + pool +
                            " refuses workers without re-registration "
                            "support since its sunset at " +
                            Rfc3339(*p.config.reregistration_sunset) +
                            "; upgrade the worker",
                        {{"field", "supports_reregistration"},
                         {"value", "false"},
                         {"reregistration_sunset",
                          Rfc3339(*p.config.reregistration_sunset)}});
                  }
                  const bool static_ok =
                      current.has_value() &&
                      !current->static_secret_hash.empty() &&
                      deps_.hasher->Verify(StaticSecretSubject(path),
                                           request->proof(),
                                           current->static_secret_hash);
                  const bool pool_ok =
                      !static_ok && !p.registration_secret_hash.empty() &&
                      deps_.hasher->Verify(PoolSecretSubject(pool),
                                           request->proof(),
                                           p.registration_secret_hash);
                  if (!static_ok && !pool_ok) {
                    if (!current.has_value() &&
                        p.registration_secret_hash.empty()) {
                      return MakeError(
                          ErrorCode::kResourceNotFound,
                          "worker " + group + "/" + id + " of pool " + pool +
                              " does not exist and the pool has no "
                              "registration secret; create the worker "
                              "first (drover workers create)",
                          WorkerDetails(pool, group, id));
                    }
                    ErrorDetails details = WorkerDetails(pool, group, id);
                    details["field"] = "proof";
                    return MakeError(
                        ErrorCode::kAuthenticationFailed,
                        "the proof is neither the static secret of worker " +
                            group + "/" + id +
                            " nor the registration "
                            "secret of pool " +
                            pool,
                        std::move(details));
                  }
                  // A worker an operator removed stays out until created
                  // again; one stopped otherwise (its own shutdown, lapsed
                  // credentials) starts afresh with its proof, as a
                  // rebooted host does.
                  bool fresh = !current.has_value();
                  if (current.has_value()) {
                    const WorkerRecord& w = *current;
                    const bool removed = w.stop_reason == "removed";
                    if (w.state == WorkerState::kStopping ||
                        (w.state == WorkerState::kStopped && removed &&
                         !pool_ok)) {
                      return NotRegistrable(w, "register");
                    }
                    const bool timed_out =
                        (w.state == WorkerState::kRequested &&
                         now > w.created + p.config.registration_timeout) ||
                        (w.state == WorkerState::kStopped &&
                         w.stop_reason == "registration-timeout");
                    if (timed_out && !pool_ok) {
                      ErrorDetails details = WorkerDetails(pool, group, id);
                      details["created"] = Rfc3339(w.created);
                      return MakeError(
                          ErrorCode::kResourceExpired,
                          "worker " + group + "/" + id +
                              " did not register within the pool's "
                              "registration timeout (" +
                              absl::FormatDuration(
                                  p.config.registration_timeout) +
                              " after its creation at " + Rfc3339(w.created) +
                              "); create it again",
                          std::move(details));
                    }
                    fresh = w.state == WorkerState::kStopped;
                  }
                  WorkerRecord next;
                  if (current.has_value()) next = *current;
                  if (fresh) {
                    next = WorkerRecord{};
                    next.worker_pool_id = pool;
                    next.worker_group = group;
                    next.worker_id = id;
                    next.created = now;
                    next.provider = p.config.provider;
                    if (current.has_value()) {
                      next.static_secret_hash = current->static_secret_hash;
                      // Secrets it spent before stopping stay spent.
                      next.spent_secret_hashes = current->spent_secret_hashes;
                      next.capacity = current->capacity;
                      next.quarantine_until = current->quarantine_until;
                      next.quarantine_reason = current->quarantine_reason;
                    }
                  }
                  next.state = WorkerState::kRunning;
                  next.capacity = request->capacity() > 0
                                      ? request->capacity()
                                      : std::max(1, next.capacity);
                  DROVER_RETURN_IF_ERROR(CheckMaxCapacity(p, next));
                  next.registered = now;
                  next.last_seen = now;
                  next.credentials_expire =
                      now + p.config.reregistration_timeout;
                  next.expires =
                      *next.credentials_expire + kStoppedWorkerRetention;
                  next.stop_reason.clear();
                  next.reregistration_secret = ciphertext;
                  next.reregistration_key_id = deps_.keyring->current_key_id();
                  next.supports_reregistration =
                      request->supports_reregistration();
                  next.facts = FactsFromProto(request->facts());
                  auth::CertificateRequest cert;
                  cert.client_id = WorkerClientId(pool, group, id);
                  cert.issuer = std::string(auth::kServerIssuer);
                  cert.scopes = WorkerCredentialScopes(pool, group, id);
                  cert.start = now;
                  cert.expiry = *next.credentials_expire;
                  DROVER_ASSIGN_OR_RETURN(certificate,
                                          deps_.certificates->Issue(cert));
                  return next;
                },
                /*count_capacity=*/true));
        v1::WorkerCredentials* creds = response->mutable_credentials();
        creds->set_client_id(WorkerClientId(pool, group, id));
        creds->set_certificate(std::move(certificate));
        *creds->mutable_expires() = ToProtoTime(*worker.credentials_expire);
        for (const std::string& s : WorkerCredentialScopes(pool, group, id)) {
          creds->add_scopes(s);
        }
        spdlog::info("worker {} registered (capacity {}, credentials until {})",
                     path, worker.capacity,
                     Rfc3339(*worker.credentials_expire));
        return Respond(pool_seen, worker, secret, response);
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::ReregisterWorker(
    grpc::CallbackServerContext* context,
    const v1::ReregisterWorkerRequest* request,
    v1::RegisterWorkerResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/ReregisterWorker", *request,
      [=, this](const auth::Caller& caller) -> absl::Status {
        const std::string& pool = request->worker_pool_id();
        const std::string& group = request->worker_group();
        const std::string& id = request->worker_id();
        DROVER_RETURN_IF_ERROR(ValidateWorkerKey(pool, group, id));
        if (request->reregistration_secret().empty()) {
          return InputError("reregistration_secret", "",
                            "the secret of the previous registration is "
                            "required");
        }
        const std::string path = WorkerPath(pool, group, id);
        const std::string client_id = WorkerClientId(pool, group, id);
        // Credentials of one worker never renew another, even when a scope
        // pattern would allow it.
        if (caller.client_id.rfind("worker/", 0) == 0 &&
            caller.client_id != client_id) {
          ErrorDetails details = WorkerDetails(pool, group, id);
          details["caller"] = caller.client_id;
          return MakeError(ErrorCode::kAuthenticationFailed,
                           "credentials of " + caller.client_id +
                               " cannot re-register " + client_id,
                           std::move(details));
        }
        const absl::Time now = Now();
        const std::string secret = crypto::GenerateAccessToken();
        const crypto::AssociatedData ad = ReregistrationSecretAd(path);
        DROVER_ASSIGN_OR_RETURN(std::string ciphertext,
                                deps_.keyring->Encrypt(secret, ad));
        std::string certificate;
        PoolRecord pool_seen;
        DROVER_ASSIGN_OR_RETURN(
            WorkerRecord worker,
            deps_.store->MutateWorker(
                pool, group, id,
                [&](const PoolRecord& p,
                    const std::optional<WorkerRecord>& current)
                    -> absl::StatusOr<WorkerRecord> {
                  pool_seen = p;
                  if (!current.has_value()) {
                    return WorkerNotFound(pool, group, id);
                  }
                  const WorkerRecord& w = *current;
                  if (w.state == WorkerState::kStopped ||
                      w.state == WorkerState::kRequested ||
                      (w.state == WorkerState::kStopping &&
                       w.stop_reason == "removed")) {
                    return NotRegistrable(w, "re-register");
                  }
                  if (!w.credentials_expire.has_value() ||
                      *w.credentials_expire <= now) {
                    ErrorDetails details = WorkerDetails(pool, group, id);
                    if (w.credentials_expire) {
                      details["credentials_expire"] =
                          Rfc3339(*w.credentials_expire);
                    }
                    return MakeError(
                        ErrorCode::kResourceExpired,
                        "the credentials of worker " + group + "/" + id +
                            " expired" +
                            (w.credentials_expire
                                 ? " at " + Rfc3339(*w.credentials_expire)
                                 : std::string()) +
                            "; register again with the static proof",
                        std::move(details));
                  }
                  bool matches = false;
                  if (!w.reregistration_secret.empty()) {
                    DROVER_ASSIGN_OR_RETURN(
                        std::string stored,
                        deps_.keyring->Decrypt(w.reregistration_secret, ad));
                    matches = crypto::ConstantTimeEquals(
                        stored, request->reregistration_secret());
                  }
                  if (!matches) {
                    ErrorDetails details = WorkerDetails(pool, group, id);
                    details["field"] = "reregistration_secret";
                    // Newest first: the position says how many
                    // re-registrations ago it was spent.
                    for (size_t i = 0; i < w.spent_secret_hashes.size(); ++i) {
                      if (!deps_.hasher->Verify(
                              UsedSecretSubject(path),
                              request->reregistration_secret(),
                              w.spent_secret_hashes[i])) {
                        continue;
                      }
                      details["reason"] = "replayed";
                      details["spent_generations_ago"] = std::to_string(i + 1);
                      return MakeError(
                          ErrorCode::kAuthenticationFailed,
                          "this re-registration secret of worker " + group +
                              "/" + id + " was already used " +
                              std::to_string(i + 1) +
                              " re-registration(s) ago; each secret is good "
                              "for one re-registration (a replay, or two "
                              "processes sharing one worker identity)",
                          std::move(details));
                    }
                    details["reason"] = "unknown";
                    return MakeError(
                        ErrorCode::kAuthenticationFailed,
                        "wrong re-registration secret for worker " + group +
                            "/" + id,
                        std::move(details));
                  }
                  WorkerRecord next = w;
                  next.spent_secret_hashes.insert(
                      next.spent_secret_hashes.begin(),
                      deps_.hasher->Hash(UsedSecretSubject(path),
                                         request->reregistration_secret()));
                  if (next.spent_secret_hashes.size() > kMaxSpentSecrets) {
                    next.spent_secret_hashes.resize(kMaxSpentSecrets);
                  }
                  next.reregistration_secret = ciphertext;
                  next.reregistration_key_id = deps_.keyring->current_key_id();
                  next.last_seen = now;
                  next.credentials_expire =
                      now + p.config.reregistration_timeout;
                  next.expires =
                      *next.credentials_expire + kStoppedWorkerRetention;
                  auth::CertificateRequest cert;
                  cert.client_id = client_id;
                  cert.issuer = std::string(auth::kServerIssuer);
                  cert.scopes = WorkerCredentialScopes(pool, group, id);
                  cert.start = now;
                  cert.expiry = *next.credentials_expire;
                  DROVER_ASSIGN_OR_RETURN(certificate,
                                          deps_.certificates->Issue(cert));
                  return next;
                }));
        v1::WorkerCredentials* creds = response->mutable_credentials();
        creds->set_client_id(client_id);
        creds->set_certificate(std::move(certificate));
        *creds->mutable_expires() = ToProtoTime(*worker.credentials_expire);
        for (const std::string& s : WorkerCredentialScopes(pool, group, id)) {
          creds->add_scopes(s);
        }
        spdlog::info("worker {} re-registered (credentials until {})", path,
                     Rfc3339(*worker.credentials_expire));
        return Respond(pool_seen, worker, secret, response);
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::WorkerHeartbeat(
    grpc::CallbackServerContext* context,
    const v1::WorkerHeartbeatRequest* request,
    v1::WorkerHeartbeatResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/WorkerHeartbeat", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        const v1::WorkerKey& key = request->worker();
        DROVER_RETURN_IF_ERROR(ValidateWorkerKey(key.worker_pool_id(),
                                                 key.worker_group(),
                                                 key.worker_id(), "worker."));
        if (request->claimed_size() > 1000) {
          return InputError("claimed", std::to_string(request->claimed_size()),
                            "at most 1000 runs per heartbeat");
        }
        const absl::Time now = Now();
        DROVER_ASSIGN_OR_RETURN(
            WorkerRecord w,
            deps_.store->MutateWorker(
                key.worker_pool_id(), key.worker_group(), key.worker_id(),
                [&](const PoolRecord&,
                    const std::optional<WorkerRecord>& current)
                    -> absl::StatusOr<WorkerRecord> {
                  if (!current.has_value()) {
                    return WorkerNotFound(key.worker_pool_id(),
                                          key.worker_group(), key.worker_id());
                  }
                  if (current->state != WorkerState::kRunning &&
                      current->state != WorkerState::kStopping) {
                    return NotRegistrable(*current, "send heartbeats");
                  }
                  WorkerRecord next = *current;
                  next.last_seen = now;
                  std::vector<std::string> recent;
                  for (int i = request->claimed_size() - 1; i >= 0; --i) {
                    const std::string& run = request->claimed(i);
                    if (run.empty() || run.size() > 64) continue;
                    if (std::find(recent.begin(), recent.end(), run) ==
                        recent.end()) {
                      recent.push_back(run);
                    }
                  }
                  if (!recent.empty() && !next.first_claim.has_value()) {
                    next.first_claim = now;
                  }
                  for (const std::string& run : current->recent_tasks) {
                    if (std::find(recent.begin(), recent.end(), run) ==
                        recent.end()) {
                      recent.push_back(run);
                    }
                  }
                  if (recent.size() > static_cast<size_t>(kMaxRecentTasks)) {
                    recent.resize(kMaxRecentTasks);
                  }
                  next.recent_tasks = std::move(recent);
                  return next;
                }));
        if (w.quarantine_until.has_value() && *w.quarantine_until > now) {
          *response->mutable_quarantine_until() =
              ToProtoTime(*w.quarantine_until);
        }
        response->set_stop(w.state == WorkerState::kStopping);
        return absl::OkStatus();
      });
}

grpc::ServerUnaryReactor* WorkerManagerService::WorkerShutdown(
    grpc::CallbackServerContext* context, const v1::WorkerKey* request,
    v1::WorkerShutdownResponse* response) {
  return runner_.Run(
      context, "/drover.v1.WorkerManager/WorkerShutdown", *request,
      [=, this](const auth::Caller&) -> absl::Status {
        const std::string& pool = request->worker_pool_id();
        const std::string& group = request->worker_group();
        const std::string& id = request->worker_id();
        DROVER_RETURN_IF_ERROR(ValidateWorkerKey(pool, group, id));
        const absl::Time now = Now();
        DROVER_ASSIGN_OR_RETURN(
            WorkerRecord w, deps_.store->MutateWorker(
                                pool, group, id,
                                [&](const PoolRecord&,
                                    const std::optional<WorkerRecord>& current)
                                    -> absl::StatusOr<WorkerRecord> {
                                  if (!current.has_value()) {
                                    return WorkerNotFound(pool, group, id);
                                  }
                                  WorkerRecord next = *current;
                                  if (next.state != WorkerState::kStopped) {
                                    next.state = WorkerState::kStopped;
                                    if (next.stop_reason.empty())
                                      next.stop_reason = "shutdown";
                                    next.expires =
                                        now + kStoppedWorkerRetention;
                                    next.last_seen = now;
                                  }
                                  return next;
                                }));
        DROVER_ASSIGN_OR_RETURN(int resolved, ResolveRunsOf(w));
        response->set_resolved_runs(resolved);
        spdlog::info("worker {} shut down; {} run(s) resolved worker-shutdown",
                     WorkerPath(pool, group, id), resolved);
        return absl::OkStatus();
      });
}

}  // namespace drover::queue::worker_manager
