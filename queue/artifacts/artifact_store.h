// ArtifactStore: the PostgreSQL side of artifacts and live logs (tables of
// migrations/0100_artifacts.sql): artifact rows, live-log chunks and the
// expiry reaper's bookkeeping.
//
// It reuses the queue store's connection pool type (one pool of its own,
// with its own prepared statements from artifact_sql.h). Every method is
// one short transaction; none waits on the network (blob store calls are
// the service's business, made outside transactions). Time comes from the
// injected Clock.
//
// Thread-safe: every method may be called from any thread.
#ifndef DROVER_QUEUE_ARTIFACTS_ARTIFACT_STORE_H_
#define DROVER_QUEUE_ARTIFACTS_ARTIFACT_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "queue/store/pg_pool.h"

namespace drover::queue::artifacts {

enum class ArtifactKind { kBlob, kReference, kLink, kError };
// "blob", "reference", "link", "error".
std::string_view ArtifactKindName(ArtifactKind kind);
std::optional<ArtifactKind> ParseArtifactKind(std::string_view name);

// The artifact a run's live log becomes when the run ends.
inline constexpr std::string_view kLiveLogName = "public/logs/live.log";

// NOTIFY channel of live-log changes; the payload is "<task_id>/<run_id>".
inline constexpr std::string_view kLogChannel = "drover_log";

// One artifact row. Kind-specific fields are empty/zero for other kinds.
struct Artifact {
  std::string task_id;
  int run_id = 0;
  std::string name;
  ArtifactKind kind = ArtifactKind::kBlob;
  std::string content_type;
  absl::Time created;
  absl::Time expires;
  // Blobs: FinishArtifact accepted the upload. Always true otherwise.
  bool present = false;
  // kBlob: where the bytes live and what the creator declared.
  std::string blob_key;
  int64_t size = 0;
  std::string sha256;
  std::string content_encoding;
  // kReference
  std::string url;
  // kLink: the target artifact (same task).
  int link_run_id = 0;
  std::string link_name;
  // kError
  std::string error_reason;
  std::string error_message;

  bool operator==(const Artifact&) const = default;
};

// What CreateArtifact asks for; `expires` unset means the task's expiry.
struct NewArtifact {
  Artifact artifact;  // created/present/expires are filled in by the store
  std::optional<absl::Time> expires;
};

struct CreateResult {
  Artifact artifact;
  // False when an identical artifact existed (maybe with its expiry
  // extended now).
  bool created = false;
};

// A page of a listing, sorted by name (byte order).
struct ArtifactPage {
  std::vector<Artifact> artifacts;
  // The last name returned when more may follow; empty on the last page.
  std::string next_after;
};

// What a reader of a live log sees at one instant (one snapshot).
struct LogRead {
  // The run's state ("pending", "running", "completed", ...).
  std::string run_state;
  bool run_resolved = false;
  // Bytes from the requested offset on (possibly empty).
  std::string data;
  // The run's finished live-log blob, once there is one (the chunks are
  // gone then; the rest of the log is in the blob).
  std::optional<Artifact> live_log;
};

struct ArtifactStoreOptions : store::PgConnectionSettings {};

class ArtifactStore {
 public:
  // Opens the pool and prepares the statements. `clock` must outlive the
  // store. Errors: as store::PgConnectionPool::Create (InternalError when
  // the database is unreachable or the artifacts tables are missing).
  static absl::StatusOr<std::unique_ptr<ArtifactStore>> Open(
      const ArtifactStoreOptions& options, const Clock* clock);

  // Creates the artifact for a running run, or confirms an identical one
  // (extending its expiry when the new one is later). A blob not yet
  // finished may be declared anew (size, hash, encoding, content type).
  // Emits `artifact-created` for every kind but blobs (those emit when
  // finished). The caller validated the fields; blob_key is set for blobs.
  // Errors: ResourceNotFound (kind "task" or "run"); RequestConflict when
  // the run is not running, the name exists with another kind or other
  // content (details: field, existing, requested), the expiry would
  // shrink, or the blob key still awaits deletion; InputError on
  // "expires" (past, or after the task's expiry: details name both) or on
  // "link.artifact" (target missing, expired, a link to itself);
  // InternalError.
  absl::StatusOr<CreateResult> Create(const NewArtifact& request);

  // One artifact, expired or not. Errors: ResourceNotFound (kind
  // "artifact", id "<task>/<run>/<name>"); InternalError.
  absl::StatusOr<Artifact> Get(const std::string& task_id, int run_id,
                               const std::string& name);

  // The task's newest run id. Errors: ResourceNotFound for an unknown task
  // (kind "task") or one without runs (kind "run"); InternalError.
  absl::StatusOr<int> LatestRunId(const std::string& task_id);

  // Marks a blob present after the caller checked the upload, guarded on
  // the declaration it checked (`size`, `sha256`), emits
  // `artifact-created`, and for kLiveLogName drops the run's log chunks
  // (NOTIFYing followers). Idempotent for a blob already present.
  // Errors: ResourceNotFound; RequestConflict when the run is not
  // running, the artifact is not a blob, or its declaration changed since
  // the caller looked (details field "size"/"sha256"); InternalError.
  absl::StatusOr<Artifact> MarkPresent(const std::string& task_id, int run_id,
                                       const std::string& name, int64_t size,
                                       const std::string& sha256);

  // Unexpired artifacts of a run with names after `after` (byte order),
  // at most `limit`. Errors: InternalError.
  absl::StatusOr<ArtifactPage> List(const std::string& task_id, int run_id,
                                    const std::string& after, int limit);

  // Appends `data` at `offset` to the run's live log and NOTIFYs
  // followers; repeating an earlier append (same offset, same bytes)
  // changes nothing. Returns the log's length afterwards. Errors:
  // ResourceNotFound (task or run); RequestConflict when the run is not
  // running, its live log was already finished, the offset leaves a gap
  // or overlaps different bytes (details: "expected_offset");
  // InternalError.
  absl::StatusOr<int64_t> AppendLog(const std::string& task_id, int run_id,
                                    int64_t offset, std::string_view data);

  // Up to `max_bytes` of the live log from `offset`, with the run's state
  // and the finished blob when there is one, all from one snapshot.
  // Errors: ResourceNotFound (run); InternalError.
  absl::StatusOr<LogRead> ReadLog(const std::string& task_id, int run_id,
                                  int64_t offset, int64_t max_bytes);

  // Expiry reaper, step 1: deletes up to `batch` expired artifacts (rows
  // other replicas hold are skipped) and queues their blobs for deletion,
  // in one transaction. Returns the rows deleted. Errors: InternalError.
  absl::StatusOr<int> DeleteExpiredArtifacts(int batch);
  // Step 2: leases up to `batch` queued blob keys to this caller for
  // `lease` (other replicas skip them meanwhile). Errors: InternalError.
  absl::StatusOr<std::vector<std::string>> LeaseBlobDeletions(
      int batch, absl::Duration lease);
  // Step 3: forgets keys whose blobs are gone. Errors: InternalError.
  absl::Status CompleteBlobDeletions(const std::vector<std::string>& keys);

 private:
  ArtifactStore(std::unique_ptr<store::PgConnectionPool> pool,
                const Clock* clock)
      : pool_(std::move(pool)), clock_(clock) {}

  std::unique_ptr<store::PgConnectionPool> pool_;
  const Clock* clock_;
};

}  // namespace drover::queue::artifacts

#endif  // DROVER_QUEUE_ARTIFACTS_ARTIFACT_STORE_H_
