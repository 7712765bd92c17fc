#include "queue/worker_manager/worker_store.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/auth/pg_key_rotation.h"
#include "queue/store/pg_transaction.h"
#include "queue/store/pg_util.h"
#include "queue/worker_manager/worker_sql.h"

namespace drover::queue::worker_manager {
namespace {

namespace pg = store::pg;

// bytea columns travel as hex text: "" (and NULL) both mean "no value".
std::string FromHexField(const pqxx::field& f) {
  if (f.is_null()) return "";
  return absl::HexStringToBytes(absl::string_view(f.c_str(), f.size()));
}
std::string ToHex(const std::string& bytes) {
  return absl::BytesToHexString(absl::string_view(bytes.data(), bytes.size()));
}

// Parameter text kept alive for one statement; null when absent.
class NullableParams {
 public:
  const char* Text(const std::string& value) {
    if (value.empty()) return nullptr;
    return Keep(value);
  }
  const char* Hex(const std::string& bytes) {
    if (bytes.empty()) return nullptr;
    return Keep(ToHex(bytes));
  }
  const char* Time(const std::optional<absl::Time>& t) {
    if (!t.has_value()) return nullptr;
    return Keep(pg::TimeParam(*t));
  }

 private:
  const char* Keep(std::string value) {
    kept_.push_back(std::make_unique<std::string>(std::move(value)));
    return kept_.back()->c_str();
  }
  std::vector<std::unique_ptr<std::string>> kept_;
};

int64_t Seconds(absl::Duration d) { return absl::ToInt64Seconds(d); }

PoolRecord PoolFromRow(const pqxx::row& row) {
  PoolRecord p;
  p.worker_pool_id = row["worker_pool_id"].c_str();
  p.config.description = row["description"].c_str();
  p.config.owner = row["owner"].c_str();
  p.config.provider = row["provider"].c_str();
  p.config.min_capacity = row["min_capacity"].as<int>();
  p.config.max_capacity = row["max_capacity"].as<int>();
  p.config.registration_timeout =
      absl::Seconds(row["registration_timeout_s"].as<int64_t>());
  p.config.reregistration_timeout =
      absl::Seconds(row["reregistration_timeout_s"].as<int64_t>());
  p.config.queue_inactivity_timeout =
      absl::Seconds(row["queue_inactivity_timeout_s"].as<int64_t>());
  p.config.reregistration_sunset = pg::OptionalTime(row["sunset_us"]);
  p.config.worker_config = row["worker_config"].c_str();
  p.registration_secret_hash = FromHexField(row["registration_secret_hash"]);
  p.created = pg::TimeFromMicros(row["created_us"].as<int64_t>());
  p.last_modified = pg::TimeFromMicros(row["last_modified_us"].as<int64_t>());
  return p;
}

absl::StatusOr<WorkerRecord> WorkerFromRow(const pqxx::row& row) {
  WorkerRecord w;
  w.worker_pool_id = row["worker_pool_id"].c_str();
  w.worker_group = row["worker_group"].c_str();
  w.worker_id = row["worker_id"].c_str();
  w.provider = row["provider"].c_str();
  DROVER_ASSIGN_OR_RETURN(w.state, ParseWorkerState(row["state"].c_str()));
  w.capacity = row["capacity"].as<int>();
  w.created = pg::TimeFromMicros(row["created_us"].as<int64_t>());
  w.registered = pg::OptionalTime(row["registered_us"]);
  w.last_seen = pg::OptionalTime(row["last_seen_us"]);
  w.credentials_expire = pg::OptionalTime(row["credentials_expire_us"]);
  w.expires = pg::TimeFromMicros(row["expires_us"].as<int64_t>());
  w.quarantine_until = pg::OptionalTime(row["quarantine_until_us"]);
  w.quarantine_reason = row["quarantine_reason"].c_str();
  w.stop_reason = row["stop_reason"].c_str();
  w.static_secret_hash = FromHexField(row["static_secret_hash"]);
  w.reregistration_secret = FromHexField(row["reregistration_secret"]);
  w.reregistration_key_id = pg::TextOrEmpty(row["reregistration_key_id"]);
  for (const std::string& hex :
       pg::TextArrayField(row["spent_secret_hashes"])) {
    w.spent_secret_hashes.push_back(absl::HexStringToBytes(hex));
  }
  w.supports_reregistration = row["supports_reregistration"].as<bool>();
  w.first_claim = pg::OptionalTime(row["first_claim_us"]);
  w.recent_tasks = pg::TextArrayField(row["recent_tasks"]);
  w.facts.hostname = row["hostname"].c_str();
  w.facts.os = row["os"].c_str();
  w.facts.engine = row["engine"].c_str();
  w.facts.worker_version = row["worker_version"].c_str();
  w.facts.boot_time = pg::OptionalTime(row["boot_time_us"]);
  w.running_tasks = row["running_tasks"].as<int>();
  return w;
}

PoolStatsRecord StatsFromRow(const pqxx::row& row) {
  PoolStatsRecord s;
  s.worker_pool_id = row["worker_pool_id"].c_str();
  s.min_capacity = row["min_capacity"].as<int>();
  s.max_capacity = row["max_capacity"].as<int>();
  s.requested = row["requested"].as<int64_t>();
  s.running = row["running"].as<int64_t>();
  s.stopping = row["stopping"].as<int64_t>();
  s.stopped = row["stopped"].as<int64_t>();
  s.quarantined = row["quarantined"].as<int64_t>();
  s.total_capacity = row["total_capacity"].as<int64_t>();
  s.running_tasks = row["running_tasks"].as<int64_t>();
  s.idle_capacity = row["idle_capacity"].as<int64_t>();
  s.pending_tasks = row["pending_tasks"].as<int64_t>();
  s.oldest_pending = pg::OptionalTime(row["oldest_pending_us"]);
  return s;
}

// Runs kInsertPool or kUpdatePool, whose parameters are identical.
pqxx::result ExecPool(pqxx::work& txn, const char* statement,
                      const std::string& id, const PoolConfig& c,
                      absl::Time now) {
  NullableParams n;
  return txn.exec_prepared(
      statement, id, c.description, c.owner, c.provider, c.min_capacity,
      c.max_capacity, Seconds(c.registration_timeout),
      Seconds(c.reregistration_timeout), Seconds(c.queue_inactivity_timeout),
      n.Time(c.reregistration_sunset), c.worker_config, pg::TimeParam(now));
}

std::string SpentHashesParam(const std::vector<std::string>& hashes) {
  std::vector<std::string> hex;
  hex.reserve(hashes.size());
  for (const std::string& h : hashes) hex.push_back(ToHex(h));
  return pg::TextArrayParam(hex);
}

pqxx::result ExecWorkerRow(pqxx::work& txn, const char* statement,
                           const WorkerRecord& w) {
  NullableParams n;
  return txn.exec_prepared(
      statement, w.worker_pool_id, w.worker_group, w.worker_id, w.provider,
      std::string(WorkerStateName(w.state)), w.capacity,
      pg::TimeParam(w.created), n.Time(w.registered), n.Time(w.last_seen),
      n.Time(w.credentials_expire), pg::TimeParam(w.expires),
      n.Time(w.quarantine_until), w.quarantine_reason, w.stop_reason,
      n.Hex(w.static_secret_hash), n.Hex(w.reregistration_secret),
      n.Text(w.reregistration_key_id), SpentHashesParam(w.spent_secret_hashes),
      w.supports_reregistration, n.Time(w.first_claim),
      pg::TextArrayParam(w.recent_tasks), w.facts.hostname, w.facts.os,
      w.facts.engine, w.facts.worker_version, n.Time(w.facts.boot_time));
}

absl::Status PoolNotFound(const std::string& id) {
  return NotFoundError("worker pool", id);
}

}  // namespace

absl::Status WorkerNotFound(const std::string& pool, const std::string& group,
                            const std::string& id) {
  return MakeError(
      ErrorCode::kResourceNotFound,
      "worker " + group + "/" + id + " of pool " + pool + " does not exist",
      {{"worker_pool_id", pool}, {"worker_group", group}, {"worker_id", id}});
}

std::string_view WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kRequested:
      return "requested";
    case WorkerState::kRunning:
      return "running";
    case WorkerState::kStopping:
      return "stopping";
    case WorkerState::kStopped:
      return "stopped";
  }
  return "stopped";
}

absl::StatusOr<WorkerState> ParseWorkerState(std::string_view name) {
  if (name == "requested") return WorkerState::kRequested;
  if (name == "running") return WorkerState::kRunning;
  if (name == "stopping") return WorkerState::kStopping;
  if (name == "stopped") return WorkerState::kStopped;
  return InputError("state", name,
                    "must be one of requested, running, stopping, stopped");
}

absl::StatusOr<std::unique_ptr<WorkerStore>> WorkerStore::Open(
    const WorkerStoreOptions& options, const Clock* clock) {
  DROVER_ASSIGN_OR_RETURN(auto pool,
                          store::OpenPool(options, sql::AllStatements()));
  return std::unique_ptr<WorkerStore>(new WorkerStore(std::move(pool), clock));
}

absl::Time WorkerStore::Now() const {
  return absl::FromUnixMicros(absl::ToUnixMicros(clock_->Now()));
}

absl::StatusOr<PoolRecord> WorkerStore::CreatePool(const std::string& id,
                                                   const PoolConfig& config) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "CreateWorkerPool", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<PoolRecord> {
        pqxx::result rows = ExecPool(txn, "wm_insert_pool", id, config, now);
        if (rows.empty()) {
          return ConflictError("worker pool " + id + " already exists",
                               {{"worker_pool_id", id}});
        }
        return PoolFromRow(rows[0]);
      });
}

absl::StatusOr<PoolRecord> WorkerStore::UpdatePool(const std::string& id,
                                                   const PoolConfig& config) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "UpdateWorkerPool", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<PoolRecord> {
        pqxx::result rows = ExecPool(txn, "wm_update_pool", id, config, now);
        if (rows.empty()) return PoolNotFound(id);
        return PoolFromRow(rows[0]);
      });
}

absl::Status WorkerStore::DeletePool(const std::string& id) {
  return pg::RunTransaction<pqxx::work>(
      *pool_, "DeleteWorkerPool", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::Status {
        if (txn.exec_prepared("wm_lock_pool_for_delete", id).empty()) {
          return PoolNotFound(id);
        }
        const int64_t live =
            txn.exec_prepared("wm_count_live_workers", id)[0][0].as<int64_t>();
        if (live > 0) {
          return ConflictError(
              "worker pool " + id + " still has " + std::to_string(live) +
                  " worker(s) that are not stopped; remove them first",
              {{"worker_pool_id", id}, {"workers", std::to_string(live)}});
        }
        txn.exec_prepared("wm_delete_pool", id);
        return absl::OkStatus();
      });
}

absl::StatusOr<PoolRecord> WorkerStore::GetPool(const std::string& id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetWorkerPool", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<PoolRecord> {
        pqxx::result rows = txn.exec_prepared("wm_select_pool", id);
        if (rows.empty()) return PoolNotFound(id);
        return PoolFromRow(rows[0]);
      });
}

absl::StatusOr<store::Page<PoolRecord>> WorkerStore::ListPools(
    const std::string& after, int limit) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ListWorkerPools", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<store::Page<PoolRecord>> {
        store::Page<PoolRecord> page;
        for (const pqxx::row& row :
             txn.exec_prepared("wm_list_pools", after, limit)) {
          page.items.push_back(PoolFromRow(row));
        }
        if (static_cast<int>(page.items.size()) >= limit) {
          page.continuation_token = page.items.back().worker_pool_id;
        }
        return page;
      });
}

absl::Status WorkerStore::SetRegistrationSecretHash(const std::string& id,
                                                    const std::string& hash) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "ResetRegistrationSecret", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::Status {
        NullableParams n;
        if (txn.exec_prepared("wm_set_registration_secret", id, n.Hex(hash),
                              pg::TimeParam(now))
                .empty()) {
          return PoolNotFound(id);
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<WorkerRecord> WorkerStore::CreateWorker(
    const WorkerRecord& worker) {
  return pg::RunTransaction<pqxx::work>(
      *pool_, "CreateWorker", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<WorkerRecord> {
        if (txn.exec_prepared("wm_select_pool_for_share", worker.worker_pool_id)
                .empty()) {
          return PoolNotFound(worker.worker_pool_id);
        }
        if (ExecWorkerRow(txn, "wm_insert_worker", worker).empty()) {
          return ConflictError("worker " + worker.worker_group + "/" +
                                   worker.worker_id + " of pool " +
                                   worker.worker_pool_id + " already exists",
                               {{"worker_pool_id", worker.worker_pool_id},
                                {"worker_group", worker.worker_group},
                                {"worker_id", worker.worker_id}});
        }
        pqxx::result rows =
            txn.exec_prepared("wm_select_worker", worker.worker_pool_id,
                              worker.worker_group, worker.worker_id);
        return WorkerFromRow(rows[0]);
      });
}

absl::StatusOr<WorkerRecord> WorkerStore::GetWorker(const std::string& pool,
                                                    const std::string& group,
                                                    const std::string& id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetWorker", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<WorkerRecord> {
        pqxx::result rows =
            txn.exec_prepared("wm_select_worker", pool, group, id);
        if (rows.empty()) return WorkerNotFound(pool, group, id);
        return WorkerFromRow(rows[0]);
      });
}

absl::StatusOr<std::optional<absl::Time>> WorkerStore::ClaimCheck(
    const std::string& pool, const std::string& group, const std::string& id,
    absl::Duration seen_granularity) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ClaimCheck", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<std::optional<absl::Time>> {
        pqxx::result rows = txn.exec_prepared(
            "wm_claim_check", pool, group, id, pg::TimeParam(now),
            pg::TimeParam(now - seen_granularity));
        if (rows.empty()) return WorkerNotFound(pool, group, id);
        return pg::OptionalTime(rows[0]["quarantine_until_us"]);
      });
}

absl::Status WorkerStore::NoteClaimed(const std::string& pool,
                                      const std::string& group,
                                      const std::string& id,
                                      const std::vector<std::string>& runs) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::nontransaction>(
             *pool_, "NoteClaimed", pg::UniqueViolation::kRetry,
             [&](pqxx::nontransaction& txn) -> absl::StatusOr<bool> {
               txn.exec_prepared("wm_note_claimed", pool, group, id,
                                 pg::TimeParam(now), pg::TextArrayParam(runs));
               return true;
             })
      .status();
}

absl::StatusOr<store::Page<WorkerRecord>> WorkerStore::ListWorkers(
    const std::string& pool, const std::vector<WorkerState>& states,
    const std::string& after, int limit) {
  std::vector<std::string> names;
  if (states.empty()) {
    for (WorkerState s : {WorkerState::kRequested, WorkerState::kRunning,
                          WorkerState::kStopping, WorkerState::kStopped}) {
      names.emplace_back(WorkerStateName(s));
    }
  } else {
    for (WorkerState s : states) names.emplace_back(WorkerStateName(s));
  }
  std::string after_group;
  std::string after_id;
  if (!after.empty()) {
    const size_t slash = after.find('/');
    if (slash == std::string::npos) {
      return InputError("continuation_token", "",
                        "not a token of this listing");
    }
    after_group = after.substr(0, slash);
    after_id = after.substr(slash + 1);
  }
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ListWorkers", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<store::Page<WorkerRecord>> {
        if (txn.exec_prepared("wm_select_pool", pool).empty()) {
          return PoolNotFound(pool);
        }
        store::Page<WorkerRecord> page;
        for (const pqxx::row& row : txn.exec_prepared(
                 "wm_list_workers", pool, pg::TextArrayParam(names),
                 after_group, after_id, limit)) {
          DROVER_ASSIGN_OR_RETURN(WorkerRecord w, WorkerFromRow(row));
          page.items.push_back(std::move(w));
        }
        if (static_cast<int>(page.items.size()) >= limit) {
          page.continuation_token = page.items.back().worker_group + "/" +
                                    page.items.back().worker_id;
        }
        return page;
      });
}

absl::StatusOr<WorkerRecord> WorkerStore::MutateWorker(const std::string& pool,
                                                       const std::string& group,
                                                       const std::string& id,
                                                       const Mutation& mutation,
                                                       bool count_capacity) {
  return pg::RunTransaction<pqxx::work>(
      *pool_, "MutateWorker", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<WorkerRecord> {
        pqxx::result pool_rows =
            txn.exec_prepared("wm_select_pool_for_share", pool);
        if (pool_rows.empty()) return PoolNotFound(pool);
        PoolRecord pool_record = PoolFromRow(pool_rows[0]);
        // Without a maximum (0) the pool's total is not needed.
        if (count_capacity && pool_record.config.max_capacity > 0) {
          // Taken after the pool's share lock and before any worker row,
          // in the same order by every registration: no lock cycle.
          txn.exec_prepared("wm_lock_pool_capacity", pool);
          pool_record.other_workers_capacity =
              txn.exec_prepared("wm_other_workers_capacity", pool, group,
                                id)[0][0]
                  .as<int64_t>();
        }
        std::optional<WorkerRecord> current;
        pqxx::result rows =
            txn.exec_prepared("wm_select_worker_for_update", pool, group, id);
        if (!rows.empty()) {
          DROVER_ASSIGN_OR_RETURN(current, WorkerFromRow(rows[0]));
        }
        DROVER_ASSIGN_OR_RETURN(WorkerRecord next,
                                mutation(pool_record, current));
        if (next.worker_pool_id != pool || next.worker_group != group ||
            next.worker_id != id) {
          return InternalError("a worker mutation changed the worker's key");
        }
        // A missing row cannot be locked: inserting it plainly turns a
        // concurrent first registration into a unique violation, which
        // RunTransaction retries with the row then present and locked.
        ExecWorkerRow(
            txn,
            current.has_value() ? "wm_upsert_worker" : "wm_insert_new_worker",
            next);
        pqxx::result after =
            txn.exec_prepared("wm_select_worker", pool, group, id);
        return WorkerFromRow(after[0]);
      });
}

absl::StatusOr<std::vector<RunRef>> WorkerStore::RunningRuns(
    const std::string& pool, const std::string& group, const std::string& id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "RunningRuns", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<std::vector<RunRef>> {
        std::vector<RunRef> runs;
        for (const pqxx::row& row :
             txn.exec_prepared("wm_running_runs", pool, group, id)) {
          runs.push_back({row[0].c_str(), row[1].as<int>()});
        }
        return runs;
      });
}

absl::StatusOr<PoolStatsRecord> WorkerStore::PoolStats(
    const std::string& pool) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetWorkerPoolStats", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<PoolStatsRecord> {
        pqxx::result rows =
            txn.exec_prepared("wm_pool_stats", pg::TimeParam(now), pool);
        if (rows.empty()) return PoolNotFound(pool);
        return StatsFromRow(rows[0]);
      });
}

absl::StatusOr<store::Page<PoolStatsRecord>> WorkerStore::ListPoolStats(
    const std::string& after, int limit) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ListWorkerPoolStats", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<store::Page<PoolStatsRecord>> {
        store::Page<PoolStatsRecord> page;
        for (const pqxx::row& row : txn.exec_prepared(
                 "wm_list_pool_stats", pg::TimeParam(now), after, limit)) {
          page.items.push_back(StatsFromRow(row));
        }
        if (static_cast<int>(page.items.size()) >= limit) {
          page.continuation_token = page.items.back().worker_pool_id;
        }
        return page;
      });
}

absl::StatusOr<ExpiryCounts> WorkerStore::ExpireWorkers(int batch) {
  const absl::Time now = Now();
  const std::string now_param = pg::TimeParam(now);
  const std::string retained = pg::TimeParam(now + kStoppedWorkerRetention);
  return pg::RunTransaction<pqxx::work>(
      *pool_, "ExpireWorkers", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<ExpiryCounts> {
        ExpiryCounts counts;
        counts.credentials_expired =
            static_cast<int>(txn.exec_prepared("wm_stop_credentials_expired",
                                               now_param, batch, retained)
                                 .size());
        counts.registration_expired =
            static_cast<int>(txn.exec_prepared("wm_stop_registration_expired",
                                               now_param, batch, retained)
                                 .size());
        counts.inactive = static_cast<int>(
            txn.exec_prepared("wm_stop_inactive", now_param, batch, retained)
                .size());
        counts.deleted = static_cast<int>(
            txn.exec_prepared("wm_delete_expired_workers", now_param, batch)
                .size());
        return counts;
      });
}

absl::StatusOr<auth::RotationBatch> WorkerStore::RotateBatch(
    const crypto::KeyRing& keyring, const std::string& after, int batch) {
  // `after` is "pool/group/id"; groups and ids hold no '/', pools one.
  std::string after_pool, after_group, after_id;
  if (!after.empty()) {
    const size_t id_slash = after.rfind('/');
    const size_t group_slash = id_slash == std::string::npos || id_slash == 0
                                   ? std::string::npos
                                   : after.rfind('/', id_slash - 1);
    if (group_slash == std::string::npos) {
      return InputError("after", after, "not a pool/group/id worker key");
    }
    after_pool = after.substr(0, group_slash);
    after_group = after.substr(group_slash + 1, id_slash - group_slash - 1);
    after_id = after.substr(id_slash + 1);
  }
  auth::PgRotationColumn column;
  column.operation = "RotateWorkerSecrets";
  column.select_batch = [&](pqxx::work& txn, const std::string& current,
                            int limit) {
    return txn.exec_prepared("wm_select_secrets_to_rotate", current, after_pool,
                             after_group, after_id, limit);
  };
  column.row_key = [](const pqxx::row& row) {
    return WorkerPath(row["worker_pool_id"].c_str(),
                      row["worker_group"].c_str(), row["worker_id"].c_str());
  };
  column.ciphertext = [](const pqxx::row& row) {
    return FromHexField(row["secret"]);
  };
  column.associated_data = [](const std::string& path) {
    return ReregistrationSecretAd(path);
  };
  column.write_back =
      [](pqxx::work& txn, const pqxx::row& row, const std::string& replacement,
         const std::string& current, const std::string& previous) {
        txn.exec_prepared("wm_replace_secret_ciphertext",
                          row["worker_pool_id"].c_str(),
                          row["worker_group"].c_str(), row["worker_id"].c_str(),
                          ToHex(replacement), current, ToHex(previous));
      };
  return auth::RotatePgBatch(*pool_, column, keyring, batch);
}

absl::StatusOr<std::map<std::string, int64_t>> WorkerStore::CountByKeyId() {
  return auth::CountPgRowsByKeyId(*pool_, "CountWorkerSecretsByKeyId",
                                  "wm_count_secrets_by_key_id");
}

}  // namespace drover::queue::worker_manager
