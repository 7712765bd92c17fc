// BlobStore: where artifact bytes live. The queue never moves artifact bytes
// through gRPC; it hands out short-lived signed URLs and workers and clients
// move the bytes directly (to the queue's own HTTP listener for the
// filesystem store, to S3 for the S3 store). The artifacts service uses
// Stat to check what arrived before FinishArtifact accepts a blob, and the
// expiry reaper uses Delete.
//
// Keys are '/'-separated relative paths (for example
// "<taskId>/<runId>/public/logs/live.log"); ValidateBlobKey states the
// rules, and every method refuses a key breaking them with an InputError on
// field "key".
#ifndef DROVER_QUEUE_BLOBSTORE_BLOB_STORE_H_
#define DROVER_QUEUE_BLOBSTORE_BLOB_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace drover::queue::blobstore {

// What an upload must look like. The store binds every set field into the
// signed URL, so the uploader cannot change them.
struct UploadOptions {
  // Required; served back as the blob's Content-Type.
  std::string content_type;
  // Optional, e.g. "gzip": the bytes are stored as sent (already encoded)
  // and served with this Content-Encoding. Empty means none.
  std::string content_encoding;
  // When set, an upload of any other length is refused.
  std::optional<uint64_t> content_length;
  // Lowercase hex SHA-256 of the bytes. When set, the store itself refuses
  // other content (filesystem: checked while writing; S3: sent as
  // x-amz-checksum-sha256, which S3 verifies).
  std::optional<std::string> sha256;
};

// A request the uploader must make: `method` on `url` with exactly
// `headers` (and no other Content-* headers).
struct PresignedRequest {
  std::string method;
  std::string url;
  std::map<std::string, std::string> headers;
  absl::Time expires;
};

// What is stored under a key.
struct BlobInfo {
  uint64_t size = 0;
  // Lowercase hex SHA-256 of the stored bytes, present when the store can
  // vouch for it (always for the filesystem store; for S3 only when the
  // upload carried a checksum the server verified).
  std::optional<std::string> sha256;
  std::string content_type;
  std::string content_encoding;
};

// Produces upload bytes: fills up to `size` bytes of `buffer` and returns
// how many; 0 means the end. An error aborts the upload.
using BlobSource =
    std::function<absl::StatusOr<size_t>(char* buffer, size_t size)>;

// Consumes downloaded bytes; an error stops the download.
using BlobSink = std::function<absl::Status(const char* data, size_t size)>;

// Longest validity of a signed URL (S3's own limit for SigV4).
inline constexpr absl::Duration kMaxPresignExpiry = absl::Hours(24 * 7);

// Implementations are thread-safe: every method may be called concurrently
// from any thread, for the same key too (the last complete upload wins; a
// reader never sees a partial blob). Put and Get block for the transfer;
// the other methods compute only (Presign*) or make one request.
class BlobStore {
 public:
  virtual ~BlobStore() = default;

  // "filesystem" or "s3": for logs and metrics.
  virtual std::string_view Kind() const = 0;

  // Signs an upload of `key` valid for `expires_in`. Computes only; nothing
  // is stored until the upload happens. Errors: InputError on "key",
  // "expires_in" (not in (0, kMaxPresignExpiry]), "content_type" (empty or
  // not a token/subtype), "content_encoding" or "sha256" (not 64 hex
  // digits).
  virtual absl::StatusOr<PresignedRequest> PresignUpload(
      std::string_view key, const UploadOptions& options,
      absl::Duration expires_in) = 0;

  // Signs a GET of `key` valid for `expires_in` and returns its URL. Does
  // not check that the blob exists. Errors: InputError on "key" or
  // "expires_in".
  virtual absl::StatusOr<std::string> PresignDownload(
      std::string_view key, absl::Duration expires_in) = 0;

  // Size (and, when known, SHA-256 and content headers) of the stored blob.
  // Errors: InputError on "key"; ResourceNotFound when nothing is stored;
  // InternalError when the backend fails or cannot be reached.
  virtual absl::StatusOr<BlobInfo> Stat(std::string_view key) = 0;

  // Removes the blob. Idempotent: deleting a missing key succeeds.
  // Errors: InputError on "key"; InternalError when the backend fails.
  virtual absl::Status Delete(std::string_view key) = 0;

  // The server's own writes (a finished live log, for one): stores the
  // bytes `source` produces under `key`, streaming them with bounded
  // memory. `options` are enforced as for a presigned upload. Errors:
  // InputError on "key" or the options; InputError on "content_length" or
  // "sha256" (InputTooLarge when longer) when the bytes break the promise,
  // and then nothing is stored; whatever `source` returns; InternalError
  // when the backend fails.
  virtual absl::StatusOr<BlobInfo> Put(std::string_view key,
                                       const UploadOptions& options,
                                       const BlobSource& source) = 0;

  // Streams the stored bytes (as stored: still encoded when uploaded with
  // a content encoding) into `sink`, in order, in chunks of bounded size.
  // Errors: InputError on "key"; ResourceNotFound; whatever `sink`
  // returns (which stops the transfer); InternalError.
  virtual absl::Status Get(std::string_view key, const BlobSink& sink) = 0;
};

// Key rules, shared by every store: 1..1024 bytes of printable ASCII
// except '\\' (no spaces at either end of a segment either), segments
// separated by single '/', no leading or trailing '/', no empty, "." or
// ".." segment, no segment longer than 255 bytes. Errors: InputError on
// "key" naming the rule broken.
absl::Status ValidateBlobKey(std::string_view key);

// Checks 0 < expires_in <= kMaxPresignExpiry and that it is whole seconds
// or more. Errors: InputError on "expires_in".
absl::Status ValidatePresignExpiry(absl::Duration expires_in);

// Checks the parts of UploadOptions every store shares. Errors: InputError
// on "content_type", "content_encoding" or "sha256".
absl::Status ValidateUploadOptions(const UploadOptions& options);

// `value` with every byte outside printable ASCII written as \xNN, for
// quoting untrusted input in error details (which must be valid UTF-8).
std::string PrintableForError(std::string_view value);

// A BlobSource reading `data`, which must outlive it.
BlobSource StringSource(std::string_view data);

// Percent-encodes a key for a URL path: RFC 3986 unreserved characters and
// '/' stay, every other byte becomes %XX (uppercase hex).
std::string EncodeKeyForUrl(std::string_view key);

}  // namespace drover::queue::blobstore

#endif  // DROVER_QUEUE_BLOBSTORE_BLOB_STORE_H_
