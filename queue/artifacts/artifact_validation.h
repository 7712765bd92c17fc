// Request validation for drover.v1.Artifacts: turns API requests into
// ArtifactStore inputs, or into a precise error naming the offending field
// and value. Pure (no I/O) and thread-safe; runs before any store call, so
// bad input never writes anything.
#ifndef DROVER_QUEUE_ARTIFACTS_ARTIFACT_VALIDATION_H_
#define DROVER_QUEUE_ARTIFACTS_ARTIFACT_VALIDATION_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "drover/v1/artifacts.pb.h"
#include "queue/artifacts/artifact_store.h"

namespace drover::queue::artifacts {

// Names leave room for "<task_id>/<run_id>/" in front within a blob key's
// 1024 bytes.
inline constexpr size_t kMaxArtifactNameBytes = 990;
inline constexpr int64_t kMaxBlobSize = int64_t{1} << 40;  // 1 TiB
inline constexpr size_t kMaxUrlBytes = 4096;
inline constexpr size_t kMaxErrorMessageBytes = 4096;
inline constexpr size_t kMaxErrorReasonBytes = 64;
inline constexpr int64_t kMaxAppendBytes = 1 << 20;  // 1 MiB
inline constexpr int kMaxRunId = 49;  // store::kMaxRunsPerTask - 1
inline constexpr int kMaxListLimit = 1000;
inline constexpr int kDefaultListLimit = 100;
inline constexpr std::string_view kDefaultContentType =
    "application/octet-stream";

// The blob store key of a blob artifact: "<task_id>/<run_id>/<name>".
std::string BlobKeyFor(std::string_view task_id, int run_id,
                       std::string_view name);

// Artifact names follow the blob key rules (blobstore::ValidateBlobKey):
// printable ASCII without '\', '/'-separated non-empty segments other than
// "." and "..", no leading or trailing '/', at most kMaxArtifactNameBytes.
// Errors: InputError naming `field`.
absl::Status ValidateArtifactName(std::string_view field,
                                  std::string_view name);

// Errors: InputError naming "task_id" / "run_id" (0..kMaxRunId).
absl::Status ValidateRun(std::string_view task_id, int run_id);

// Checks and converts a create request. Errors: InputError naming the
// field ("task_id", "run_id", "name", "content_type", "kind",
// "blob.size", "blob.sha256", "blob.content_encoding", "reference.url",
// "link.artifact", "link.run_id", "error.reason", "error.message",
// "expires").
absl::StatusOr<NewArtifact> ValidateCreateArtifact(
    const v1::CreateArtifactRequest& request);

// task_id, run_id and name of Finish/GetArtifact. Errors: InputError.
absl::Status ValidateArtifactRequest(const v1::ArtifactRequest& request);

// The page size: 0 means kDefaultListLimit. Errors: InputError on "limit".
absl::StatusOr<int> ValidateListLimit(int limit);

// Continuation tokens of the listings: opaque to clients, they carry the
// run listed and the last name returned.
std::string EncodeContinuationToken(int run_id, std::string_view after_name);
// Errors: InputError on "continuation_token" when it is not one of ours.
absl::StatusOr<std::pair<int, std::string>> DecodeContinuationToken(
    std::string_view token);

// offset >= 0 and 1 byte <= data <= kMaxAppendBytes. Errors: InputError on
// "task_id", "run_id", "offset", "data"; InputTooLarge on "data".
absl::Status ValidateAppendLog(const v1::AppendLogRequest& request);

// Errors: InputError on "task_id", "run_id", "offset".
absl::Status ValidateTailLog(const v1::TailLogRequest& request);

// API <-> store.
void ToProto(const Artifact& artifact, v1::Artifact* out);

}  // namespace drover::queue::artifacts

#endif  // DROVER_QUEUE_ARTIFACTS_ARTIFACT_VALIDATION_H_
