#include "queue/artifacts/artifact_store.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/artifacts/artifact_sql.h"
#include "queue/store/pg_transaction.h"
#include "queue/store/pg_util.h"

namespace drover::queue::artifacts {
namespace {

namespace pg = store::pg;

// The largest log chunk the schema admits.
constexpr int64_t kMaxChunkBytes = 1 << 20;

std::string ArtifactId(const std::string& task_id, int run_id,
                       const std::string& name) {
  return absl::StrCat(task_id, "/", run_id, "/", name);
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

bool IsResolvedState(std::string_view state) {
  return state == "completed" || state == "failed" || state == "exception";
}

Artifact ArtifactFromRow(const pqxx::row& row) {
  Artifact a;
  a.task_id = row["task_id"].c_str();
  a.run_id = row["run_id"].as<int>();
  a.name = row["name"].c_str();
  // The CHECK constraint admits only known kinds.
  a.kind = ParseArtifactKind(row["kind"].c_str()).value_or(ArtifactKind::kBlob);
  a.content_type = row["content_type"].c_str();
  a.created = pg::TimeFromMicros(row["created_us"].as<int64_t>());
  a.expires = pg::TimeFromMicros(row["expires_us"].as<int64_t>());
  a.present = row["present"].as<bool>();
  a.blob_key = pg::TextOrEmpty(row["blob_key"]);
  a.size = row["size"].is_null() ? 0 : row["size"].as<int64_t>();
  a.sha256 = pg::TextOrEmpty(row["sha256"]);
  a.content_encoding = pg::TextOrEmpty(row["content_encoding"]);
  a.url = pg::TextOrEmpty(row["url"]);
  a.link_run_id =
      row["link_run_id"].is_null() ? 0 : row["link_run_id"].as<int>();
  a.link_name = pg::TextOrEmpty(row["link_name"]);
  a.error_reason = pg::TextOrEmpty(row["error_reason"]);
  a.error_message = pg::TextOrEmpty(row["error_message"]);
  return a;
}

// The first kind-specific field in which two artifacts of the same kind
// differ, or "" when their content is the same (expiry aside).
std::string FirstContentDifference(const Artifact& have, const Artifact& want) {
  if (have.content_type != want.content_type) return "content_type";
  switch (have.kind) {
    case ArtifactKind::kBlob:
      if (have.size != want.size) return "blob.size";
      if (have.sha256 != want.sha256) return "blob.sha256";
      if (have.content_encoding != want.content_encoding) {
        return "blob.content_encoding";
      }
      return "";
    case ArtifactKind::kReference:
      return have.url == want.url ? "" : "reference.url";
    case ArtifactKind::kLink:
      if (have.link_name != want.link_name) return "link.artifact";
      if (have.link_run_id != want.link_run_id) return "link.run_id";
      return "";
    case ArtifactKind::kError:
      if (have.error_reason != want.error_reason) return "error.reason";
      if (have.error_message != want.error_message) return "error.message";
      return "";
  }
  return "";
}

std::string FieldValue(const Artifact& a, const std::string& field) {
  if (field == "content_type") return a.content_type;
  if (field == "blob.size") return std::to_string(a.size);
  if (field == "blob.sha256") return a.sha256;
  if (field == "blob.content_encoding") return a.content_encoding;
  if (field == "reference.url") return a.url;
  if (field == "link.artifact") return a.link_name;
  if (field == "link.run_id") return std::to_string(a.link_run_id);
  if (field == "error.reason") return a.error_reason;
  if (field == "error.message") return a.error_message;
  return "";
}

// Looks up the run an artifact or log chunk belongs to; tells a missing
// task from a missing run. Returns {state, task expiry}.
absl::StatusOr<std::pair<std::string, absl::Time>> LoadRun(
    pqxx::transaction_base& txn, const std::string& task_id, int run_id) {
  pqxx::result rows =
      txn.exec_prepared(sql::kRunForArtifact.name, task_id, run_id);
  if (rows.empty()) {
    if (txn.exec_prepared(sql::kTaskExists.name, task_id).empty()) {
      return NotFoundError("task", task_id);
    }
    return NotFoundError("run", absl::StrCat(task_id, "/", run_id));
  }
  return std::make_pair(
      std::string(rows[0]["state"].c_str()),
      pg::TimeFromMicros(rows[0]["task_expires_us"].as<int64_t>()));
}

absl::Status RequireRunning(const std::string& task_id, int run_id,
                            const std::string& state, std::string_view what) {
  if (state == "running") return absl::OkStatus();
  return ConflictError(
      absl::StrCat("run ", run_id, " of task ", task_id, " is ", state, "; ",
                   std::string(what), " only while it is running"),
      {{"field", "run_id"},
       {"value", std::to_string(run_id)},
       {"state", state}});
}

void InsertEvent(pqxx::transaction_base& txn, const Artifact& a,
                 absl::Time now) {
  txn.exec_prepared(sql::kInsertArtifactEvent.name, a.task_id, a.run_id,
                    pg::TimeParam(now), a.name,
                    std::string(ArtifactKindName(a.kind)), a.content_type,
                    pg::TimeParam(a.expires));
}

}  // namespace

std::string_view ArtifactKindName(ArtifactKind kind) {
  switch (kind) {
    case ArtifactKind::kBlob:
      return "blob";
    case ArtifactKind::kReference:
      return "reference";
    case ArtifactKind::kLink:
      return "link";
    case ArtifactKind::kError:
      return "error";
  }
  return "blob";
}

std::optional<ArtifactKind> ParseArtifactKind(std::string_view name) {
  if (name == "blob") return ArtifactKind::kBlob;
  if (name == "reference") return ArtifactKind::kReference;
  if (name == "link") return ArtifactKind::kLink;
  if (name == "error") return ArtifactKind::kError;
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<ArtifactStore>> ArtifactStore::Open(
    const ArtifactStoreOptions& options, const Clock* clock) {
  DROVER_ASSIGN_OR_RETURN(auto pool,
                          store::OpenPool(options, sql::AllStatements()));
  return std::unique_ptr<ArtifactStore>(
      new ArtifactStore(std::move(pool), clock));
}

absl::StatusOr<CreateResult> ArtifactStore::Create(const NewArtifact& request) {
  const absl::Time now = clock_->Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "CreateArtifact", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<CreateResult> {
        Artifact want = request.artifact;
        DROVER_ASSIGN_OR_RETURN(auto run,
                                LoadRun(txn, want.task_id, want.run_id));
        const auto& [state, task_expires] = run;
        DROVER_RETURN_IF_ERROR(RequireRunning(want.task_id, want.run_id, state,
                                              "artifacts can be created"));
        want.expires = request.expires.value_or(task_expires);
        if (want.expires <= now) {
          return MakeError(ErrorCode::kInputError,
                           "expires must be in the future",
                           {{"field", "expires"},
                            {"value", FormatUtc(want.expires)},
                            {"now", FormatUtc(now)}});
        }
        if (want.expires > task_expires) {
          return MakeError(ErrorCode::kInputError,
                           absl::StrCat("expires ", FormatUtc(want.expires),
                                        " is after the task's expiry ",
                                        FormatUtc(task_expires)),
                           {{"field", "expires"},
                            {"value", FormatUtc(want.expires)},
                            {"task_expires", FormatUtc(task_expires)}});
        }
        if (want.kind == ArtifactKind::kLink) {
          if (want.link_run_id == want.run_id && want.link_name == want.name) {
            return InputError("link.artifact", want.link_name,
                              "an artifact cannot link to itself");
          }
          pqxx::result target =
              txn.exec_prepared(sql::kSelectArtifact.name, want.task_id,
                                want.link_run_id, want.link_name);
          if (target.empty()) {
            return MakeError(
                ErrorCode::kInputError,
                absl::StrCat(
                    "the link target ",
                    ArtifactId(want.task_id, want.link_run_id, want.link_name),
                    " does not exist"),
                {{"field", "link.artifact"},
                 {"value", want.link_name},
                 {"run_id", std::to_string(want.link_run_id)}});
          }
          if (ArtifactFromRow(target[0]).expires <= now) {
            return InputError("link.artifact", want.link_name,
                              "the link target has expired");
          }
        }

        pqxx::result existing =
            txn.exec_prepared(sql::kSelectArtifactForUpdate.name, want.task_id,
                              want.run_id, want.name);
        if (!existing.empty()) {
          Artifact have = ArtifactFromRow(existing[0]);
          if (have.kind != want.kind) {
            return ConflictError(
                absl::StrCat("artifact ", want.name, " already exists as a ",
                             std::string(ArtifactKindName(have.kind)),
                             " artifact, not a ",
                             std::string(ArtifactKindName(want.kind)), " one"),
                {{"field", "name"},
                 {"value", want.name},
                 {"existing_kind", std::string(ArtifactKindName(have.kind))},
                 {"requested_kind", std::string(ArtifactKindName(want.kind))}});
          }
          if (want.expires < have.expires) {
            return ConflictError(
                absl::StrCat("artifact ", want.name, " expires ",
                             FormatUtc(have.expires),
                             "; an expiry can only be extended"),
                {{"field", "expires"},
                 {"value", FormatUtc(want.expires)},
                 {"existing", FormatUtc(have.expires)}});
          }
          std::string differs = FirstContentDifference(have, want);
          if (!differs.empty()) {
            if (have.kind == ArtifactKind::kBlob && !have.present) {
              // An upload that never finished may be retried with other
              // bytes (a rebuilt file, a different encoding).
              txn.exec_prepared(sql::kRedeclareBlob.name, want.task_id,
                                want.run_id, want.name, want.content_type,
                                pg::TimeParam(want.expires), want.size,
                                want.sha256, want.content_encoding);
              have.content_type = want.content_type;
              have.expires = want.expires;
              have.size = want.size;
              have.sha256 = want.sha256;
              have.content_encoding = want.content_encoding;
              return CreateResult{have, false};
            }
            return ConflictError(
                absl::StrCat("artifact ", want.name,
                             " already exists with a different ", differs),
                {{"field", differs},
                 {"value", FieldValue(want, differs)},
                 {"existing", FieldValue(have, differs)}});
          }
          if (want.expires > have.expires) {
            txn.exec_prepared(sql::kExtendExpiry.name, want.task_id,
                              want.run_id, want.name,
                              pg::TimeParam(want.expires));
            have.expires = want.expires;
          }
          return CreateResult{have, false};
        }

        if (want.kind == ArtifactKind::kBlob &&
            !txn.exec_prepared(sql::kBlobDeletionPending.name, want.blob_key)
                 .empty()) {
          return ConflictError(
              absl::StrCat("the blob of an expired artifact named ", want.name,
                           " is still being deleted; retry later"),
              {{"field", "name"}, {"value", want.name}});
        }
        want.created = now;
        want.present = want.kind != ArtifactKind::kBlob;
        txn.exec_prepared(sql::kInsertArtifact.name, want.task_id, want.run_id,
                          want.name, std::string(ArtifactKindName(want.kind)),
                          want.content_type, pg::TimeParam(want.created),
                          pg::TimeParam(want.expires), want.blob_key, want.size,
                          want.sha256, want.content_encoding, want.present,
                          want.url, want.link_run_id, want.link_name,
                          want.error_reason, want.error_message);
        if (want.kind != ArtifactKind::kBlob) InsertEvent(txn, want, now);
        // What the database keeps: microseconds.
        want.created = pg::TimeFromMicros(absl::ToUnixMicros(want.created));
        want.expires = pg::TimeFromMicros(absl::ToUnixMicros(want.expires));
        return CreateResult{want, true};
      });
}

absl::StatusOr<Artifact> ArtifactStore::Get(const std::string& task_id,
                                            int run_id,
                                            const std::string& name) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetArtifact", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<Artifact> {
        pqxx::result rows =
            txn.exec_prepared(sql::kSelectArtifact.name, task_id, run_id, name);
        if (rows.empty()) {
          return NotFoundError("artifact", ArtifactId(task_id, run_id, name));
        }
        return ArtifactFromRow(rows[0]);
      });
}

absl::StatusOr<int> ArtifactStore::LatestRunId(const std::string& task_id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "LatestRunId", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<int> {
        pqxx::row row = txn.exec_prepared1(sql::kLatestRun.name, task_id);
        if (!row["task_exists"].as<bool>()) {
          return NotFoundError("task", task_id);
        }
        if (row["run_id"].is_null()) {
          return MakeError(ErrorCode::kResourceNotFound,
                           absl::StrCat("task ", task_id, " has no runs yet"),
                           {{"kind", "run"}, {"id", task_id}});
        }
        return row["run_id"].as<int>();
      });
}

absl::StatusOr<Artifact> ArtifactStore::MarkPresent(const std::string& task_id,
                                                    int run_id,
                                                    const std::string& name,
                                                    int64_t size,
                                                    const std::string& sha256) {
  const absl::Time now = clock_->Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "FinishArtifact", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<Artifact> {
        DROVER_ASSIGN_OR_RETURN(auto run, LoadRun(txn, task_id, run_id));
        pqxx::result rows = txn.exec_prepared(
            sql::kSelectArtifactForUpdate.name, task_id, run_id, name);
        if (rows.empty()) {
          return NotFoundError("artifact", ArtifactId(task_id, run_id, name));
        }
        Artifact a = ArtifactFromRow(rows[0]);
        if (a.kind != ArtifactKind::kBlob) {
          return ConflictError(
              absl::StrCat("artifact ", name, " is a ",
                           std::string(ArtifactKindName(a.kind)),
                           " artifact; only blobs are finished"),
              {{"field", "name"},
               {"value", name},
               {"kind", std::string(ArtifactKindName(a.kind))}});
        }
        if (a.present) return a;
        DROVER_RETURN_IF_ERROR(RequireRunning(task_id, run_id, run.first,
                                              "artifacts can be finished"));
        if (a.size != size || a.sha256 != sha256) {
          const bool size_changed = a.size != size;
          return ConflictError(
              absl::StrCat("artifact ", name,
                           " was declared anew while it was being finished"),
              {{"field", size_changed ? "size" : "sha256"},
               {"value", size_changed ? std::to_string(size) : sha256},
               {"declared", size_changed ? std::to_string(a.size) : a.sha256}});
        }
        txn.exec_prepared(sql::kMarkPresent.name, task_id, run_id, name);
        a.present = true;
        InsertEvent(txn, a, now);
        if (name == kLiveLogName) {
          txn.exec_prepared(sql::kDropChunks.name, task_id, run_id);
        }
        return a;
      });
}

absl::StatusOr<ArtifactPage> ArtifactStore::List(const std::string& task_id,
                                                 int run_id,
                                                 const std::string& after,
                                                 int limit) {
  const absl::Time now = clock_->Now();
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ListArtifacts", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<ArtifactPage> {
        // One extra row tells whether another page follows.
        pqxx::result rows =
            txn.exec_prepared(sql::kListArtifacts.name, task_id, run_id, after,
                              pg::TimeParam(now), limit + 1);
        ArtifactPage page;
        for (const auto& row : rows) {
          if (static_cast<int>(page.artifacts.size()) == limit) {
            page.next_after = page.artifacts.back().name;
            break;
          }
          page.artifacts.push_back(ArtifactFromRow(row));
        }
        return page;
      });
}

absl::StatusOr<int64_t> ArtifactStore::AppendLog(const std::string& task_id,
                                                 int run_id, int64_t offset,
                                                 std::string_view data) {
  return pg::RunTransaction<pqxx::work>(
      *pool_, "AppendLog", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<int64_t> {
        DROVER_ASSIGN_OR_RETURN(auto run, LoadRun(txn, task_id, run_id));
        txn.exec_prepared(sql::kLockLog.name, task_id, run_id);
        pqxx::result end_row =
            txn.exec_prepared(sql::kLogEnd.name, task_id, run_id);
        const int64_t end =
            end_row.empty() ? 0 : end_row[0]["end_offset"].as<int64_t>();
        if (offset < end) {
          // A retried append: the same bytes at the same place are fine.
          pqxx::result at =
              txn.exec_prepared(sql::kChunkAt.name, task_id, run_id, offset);
          if (!at.empty()) {
            pqxx::binarystring stored(at[0]["data"]);
            if (stored.size() == data.size() &&
                std::string_view(reinterpret_cast<const char*>(stored.data()),
                                 stored.size()) == data) {
              return end;
            }
          }
          return ConflictError(
              absl::StrCat("the log already has ", end,
                           " bytes and different ones at offset ", offset),
              {{"field", "offset"},
               {"value", std::to_string(offset)},
               {"expected_offset", std::to_string(end)}});
        }
        DROVER_RETURN_IF_ERROR(RequireRunning(task_id, run_id, run.first,
                                              "the live log is appended"));
        pqxx::result live =
            txn.exec_prepared(sql::kSelectArtifact.name, task_id, run_id,
                              std::string(kLiveLogName));
        if (!live.empty() && live[0]["present"].as<bool>()) {
          return ConflictError(
              absl::StrCat("the live log of run ", run_id, " of task ", task_id,
                           " is already complete (", std::string(kLiveLogName),
                           ")"),
              {{"field", "run_id"}, {"value", std::to_string(run_id)}});
        }
        if (offset > end) {
          return ConflictError(
              absl::StrCat("the log has ", end, " bytes; an append at offset ",
                           offset, " would leave a gap"),
              {{"field", "offset"},
               {"value", std::to_string(offset)},
               {"expected_offset", std::to_string(end)}});
        }
        txn.exec_prepared(sql::kInsertChunk.name, task_id, run_id, offset,
                          pqxx::binarystring(data.data(), data.size()));
        return end + static_cast<int64_t>(data.size());
      });
}

absl::StatusOr<LogRead> ArtifactStore::ReadLog(const std::string& task_id,
                                               int run_id, int64_t offset,
                                               int64_t max_bytes) {
  using Snapshot = pqxx::transaction<pqxx::repeatable_read, pqxx::read_only>;
  return pg::RunTransaction<Snapshot>(
      *pool_, "ReadLog", pg::UniqueViolation::kRetry,
      [&](Snapshot& txn) -> absl::StatusOr<LogRead> {
        LogRead read;
        pqxx::result state =
            txn.exec_prepared(sql::kRunState.name, task_id, run_id);
        if (state.empty()) {
          return NotFoundError("run", absl::StrCat(task_id, "/", run_id));
        }
        read.run_state = state[0]["state"].c_str();
        read.run_resolved = IsResolvedState(read.run_state);
        // The first chunk may start before `offset`; allow for that.
        pqxx::result chunks =
            txn.exec_prepared(sql::kReadChunks.name, task_id, run_id, offset,
                              max_bytes + kMaxChunkBytes);
        int64_t cursor = offset;
        for (const auto& row : chunks) {
          const int64_t start = row["start_offset"].as<int64_t>();
          pqxx::binarystring bytes(row["data"]);
          const int64_t end = start + static_cast<int64_t>(bytes.size());
          if (end <= cursor) continue;
          if (start > cursor) break;  // never expected: chunks are contiguous
          const int64_t skip = cursor - start;
          const int64_t take = std::min<int64_t>(
              end - cursor, max_bytes - static_cast<int64_t>(read.data.size()));
          if (take <= 0) break;
          read.data.append(reinterpret_cast<const char*>(bytes.data()) + skip,
                           take);
          cursor += take;
        }
        pqxx::result live =
            txn.exec_prepared(sql::kSelectArtifact.name, task_id, run_id,
                              std::string(kLiveLogName));
        if (!live.empty()) {
          Artifact a = ArtifactFromRow(live[0]);
          if (a.kind == ArtifactKind::kBlob && a.present) {
            read.live_log = std::move(a);
          }
        }
        return read;
      });
}

absl::StatusOr<int> ArtifactStore::DeleteExpiredArtifacts(int batch) {
  const absl::Time now = clock_->Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "DeleteExpiredArtifacts", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<int> {
        pqxx::row row = txn.exec_prepared1(sql::kDeleteExpired.name,
                                           pg::TimeParam(now), batch);
        return row["deleted"].as<int>();
      });
}

absl::StatusOr<std::vector<std::string>> ArtifactStore::LeaseBlobDeletions(
    int batch, absl::Duration lease) {
  const absl::Time now = clock_->Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "LeaseBlobDeletions", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<std::vector<std::string>> {
        pqxx::result rows =
            txn.exec_prepared(sql::kLeaseDeletions.name, pg::TimeParam(now),
                              pg::TimeParam(now + lease), batch);
        std::vector<std::string> keys;
        for (const auto& row : rows) keys.push_back(row["blob_key"].c_str());
        return keys;
      });
}

absl::Status ArtifactStore::CompleteBlobDeletions(
    const std::vector<std::string>& keys) {
  if (keys.empty()) return absl::OkStatus();
  auto done = pg::RunTransaction<pqxx::work>(
      *pool_, "CompleteBlobDeletions", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<bool> {
        txn.exec_prepared(sql::kCompleteDeletions.name,
                          pg::TextArrayParam(keys));
        return true;
      });
  return done.status();
}

}  // namespace drover::queue::artifacts
