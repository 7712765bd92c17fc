// FilesystemBlobStore: the default blob store. Blobs are plain files under a
// root directory (inside the server's data directory); the queue's own HTTP
// listener serves uploads and downloads on URLs signed with a key only the
// server knows (see http_handlers.h for the routes).
//
// On disk, under `root`:
//   data/<key>   the bytes, exactly as uploaded
//   meta/<key>   JSON: size, SHA-256, content type and encoding, and the
//                identity (inode, mtime) of the data file it describes
//   tmp/         uploads in progress
// An upload is written to tmp/ and renamed into data/ only once complete, so
// a reader sees either the previous blob or the new one, never a torn one.
//
// Signed URLs look like
//   <base_url><url_prefix>/<key>?expires=<unix>&ct=..&ce=..&len=..&sha256=..&sig=..
// where sig = base64url(HMAC(subkey, method, key, expires, ct, ce, len,
// sha256)) with libsodium's crypto_auth (HMAC-SHA-512-256) and a subkey
// derived from the server's key for this one purpose. Everything an upload
// is bound to travels in the query, so a changed byte anywhere is a
// signature failure.
#ifndef DROVER_QUEUE_BLOBSTORE_FILESYSTEM_FILESYSTEM_BLOB_STORE_H_
#define DROVER_QUEUE_BLOBSTORE_FILESYSTEM_FILESYSTEM_BLOB_STORE_H_

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "queue/blobstore/blob_store.h"
#include "queue/blobstore/sha256.h"

namespace drover::queue::blobstore::filesystem {

struct FilesystemBlobStoreOptions {
  // Directory holding data/, meta/ and tmp/; created when missing.
  std::filesystem::path root;
  // Scheme, host and port of the HTTP listener as uploaders and downloaders
  // reach it, e.g. "http://127.0.0.1:8080" (no trailing '/').
  std::string base_url;
  // Path under which the routes live: '/' followed by [a-z0-9_-] segments.
  std::string url_prefix = "/blobs";
  // The server's secret key (32 to 64 raw bytes). Only a subkey derived
  // from it signs URLs.
  std::string signing_key;
  // fsync blobs and their directories before an upload counts as done.
  bool sync_writes = true;
};

// The signature-bearing query parameters of a request, as received
// (already percent-decoded). Absent parameters are empty.
struct SignedUrlParams {
  std::string expires;           // "expires": unix seconds
  std::string signature;         // "sig"
  std::string content_type;      // "ct"
  std::string content_encoding;  // "ce"
  std::string length;            // "len"
  std::string sha256;            // "sha256"
};

// An upload in progress. Not thread-safe (one writer per upload). Dropping
// it without Commit discards everything written.
class BlobWriter {
 public:
  virtual ~BlobWriter() = default;
  // Appends bytes. Errors: InputTooLarge once more bytes arrive than the
  // expected length; InternalError when the disk fails.
  virtual absl::Status Write(const char* data, size_t size) = 0;
  // Checks length and SHA-256 against the expectations and publishes the
  // blob atomically. Errors: InputError on "content_length" or "sha256"
  // when the bytes differ from what was promised (nothing is stored);
  // RequestConflict when the key's path collides with another blob's
  // (one is a prefix directory of the other); InternalError on disk
  // failures. The writer is spent afterwards either way.
  virtual absl::StatusOr<BlobInfo> Commit() = 0;
  virtual uint64_t bytes_written() const = 0;
};

// An open blob. ReadAt is thread-safe. The bytes stay readable even when
// the key is replaced or deleted while the reader is open.
class BlobReader {
 public:
  virtual ~BlobReader() = default;
  // Size, content type and encoding; sha256 when the metadata vouches for
  // the file.
  virtual const BlobInfo& info() const = 0;
  // Reads up to `size` bytes at `offset`; returns how many (0 at the end).
  // Errors: InternalError when the disk fails.
  virtual absl::StatusOr<size_t> ReadAt(uint64_t offset, char* buffer,
                                        size_t size) const = 0;
};

// Thread-safe (see BlobStore); the HTTP handlers share one instance.
class FilesystemBlobStore final : public BlobStore {
 public:
  // Checks the options and creates the directories. Errors: InputError on
  // "root", "base_url", "url_prefix" or "signing_key"; InternalError when
  // the directories cannot be created. `clock` must outlive the store.
  static absl::StatusOr<std::unique_ptr<FilesystemBlobStore>> Create(
      FilesystemBlobStoreOptions options, const Clock* clock);

  std::string_view Kind() const override { return "filesystem"; }
  absl::StatusOr<PresignedRequest> PresignUpload(
      std::string_view key, const UploadOptions& options,
      absl::Duration expires_in) override;
  absl::StatusOr<std::string> PresignDownload(
      std::string_view key, absl::Duration expires_in) override;
  absl::StatusOr<BlobInfo> Stat(std::string_view key) override;
  absl::Status Delete(std::string_view key) override;
  absl::StatusOr<BlobInfo> Put(std::string_view key,
                               const UploadOptions& options,
                               const BlobSource& source) override;
  absl::Status Get(std::string_view key, const BlobSink& sink) override;

  // Checks that `params` carry a valid, unexpired signature for `method`
  // ("GET" or "PUT") on `key`. The signature is checked before the expiry,
  // so a URL with an edited expiry counts as tampered. Errors:
  // AuthenticationFailed (missing, malformed or wrong signature, naming the
  // field), ResourceExpired (past its expiry, with the expiry in details).
  absl::Status VerifySignedRequest(std::string_view method,
                                   std::string_view key,
                                   const SignedUrlParams& params) const;

  // Starts an upload to `key`; nothing is visible until Commit. Errors:
  // InputError on "key" or the options; InternalError on disk failures.
  absl::StatusOr<std::unique_ptr<BlobWriter>> OpenForWrite(
      std::string_view key, const UploadOptions& options);

  // Opens the blob for streaming. Errors: InputError on "key",
  // ResourceNotFound, InternalError.
  absl::StatusOr<std::unique_ptr<BlobReader>> OpenForRead(
      std::string_view key) const;

  const FilesystemBlobStoreOptions& options() const { return options_; }

 private:
  FilesystemBlobStore(FilesystemBlobStoreOptions options, const Clock* clock,
                      std::array<uint8_t, 32> url_key);

  std::string Sign(std::string_view method, std::string_view key,
                   const SignedUrlParams& params) const;
  std::string SignedUrl(std::string_view method, std::string_view key,
                        SignedUrlParams params) const;

  FilesystemBlobStoreOptions options_;
  const Clock* clock_;
  std::array<uint8_t, 32> url_key_;
};

}  // namespace drover::queue::blobstore::filesystem

#endif  // DROVER_QUEUE_BLOBSTORE_FILESYSTEM_FILESYSTEM_BLOB_STORE_H_
