// Request validation for drover.v1.Queue: turns API requests into store
// types, or into a precise error naming the offending field and value.
//
// Validation is pure (no I/O, time comes from the caller) and runs before
// any store call, so bad input never writes anything.
#ifndef DROVER_QUEUE_QUEUE_SERVICE_TASK_VALIDATION_H_
#define DROVER_QUEUE_QUEUE_SERVICE_TASK_VALIDATION_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "drover/v1/queue.pb.h"
#include "queue/store/types.h"

namespace drover::queue::queue_service {

// Limits on task definitions; the server fills them from its configuration.
struct ValidationLimits {
  // deadline may be at most this long after created.
  absl::Duration max_deadline = absl::Hours(24 * 5);
  // created may differ from the server's clock by at most this much.
  absl::Duration max_created_skew = absl::Minutes(15);
  // Byte size of the payload (and of extra) JSON text.
  size_t max_payload_bytes = 256 * 1024;
  size_t max_dependencies = 10000;
  size_t max_routes = 64;
  size_t max_tags = 64;
  size_t max_scopes = 1000;
};

// Upper bounds on string fields, shared with docs/api.md.
inline constexpr size_t kMaxIdentifierLength = 38;
inline constexpr size_t kMaxRouteLength = 249;
inline constexpr size_t kMaxScopeLength = 4096;
inline constexpr size_t kMaxMetadataNameLength = 255;
inline constexpr size_t kMaxMetadataDescriptionLength = 32768;
inline constexpr size_t kMaxMetadataOwnerLength = 255;
inline constexpr size_t kMaxMetadataSourceLength = 4096;
inline constexpr size_t kMaxTagKeyLength = 256;
inline constexpr size_t kMaxTagValueLength = 4096;
inline constexpr int kMaxRetries = 49;
inline constexpr int kDefaultRetries = 5;
inline constexpr int kMaxClaimTasks = 100;
inline constexpr int kMaxListLimit = 1000;
inline constexpr int kDefaultListLimit = 100;
// Used when a task names no scheduler.
inline constexpr std::string_view kDefaultSchedulerId = "-";

// Validates a CreateTaskRequest against `limits` at time `now` and converts
// it to a store::Task with every default applied. Timestamps are truncated
// to microseconds (the database's precision) so a stored task reads back
// equal to what was accepted, and the payload and extra JSON are
// re-serialised canonically so equal documents compare equal.
//
// Errors: InputError for a missing or malformed field, MalformedPayload for
// a payload that is not a JSON object, InputTooLarge for a payload or extra
// above limits.max_payload_bytes. Details carry "field" (a dotted path such
// as "task.metadata.owner" or "task.routes[3]") and "value".
absl::StatusOr<store::Task> ValidateCreateTask(
    const v1::CreateTaskRequest& request, const ValidationLimits& limits,
    absl::Time now);

// Single-field checks, each an InputError naming `field` on failure.
//
// A 22-character slug id (common/slugid.h).
absl::Status ValidateSlugId(std::string_view field, std::string_view value);
// [a-zA-Z0-9_-]{1,38}: scheduler, worker group and worker ids.
absl::Status ValidateIdentifier(std::string_view field, std::string_view value);
// "<provisioner>/<worker-type>", each part an identifier.
absl::Status ValidateTaskQueueId(std::string_view field,
                                 std::string_view value);

// Checks of the other Queue requests. All errors are InputError.
absl::Status ValidateClaimWork(const v1::ClaimWorkRequest& request);
// `needs_worker`: ReclaimTask must name the claiming worker.
absl::Status ValidateRunRequest(const v1::RunRequest& request,
                                bool needs_worker);
absl::Status ValidateReportException(const v1::ReportExceptionRequest& request);
// Returns the effective page size (default 100).
absl::StatusOr<int> ValidateListTaskQueues(
    const v1::ListTaskQueuesRequest& request);

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_TASK_VALIDATION_H_
