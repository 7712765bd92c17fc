// S3BlobStore: blobs in an S3-compatible bucket. The queue only signs:
// uploads and downloads are SigV4 presigned URLs that workers and clients
// use directly; the queue itself talks to S3 only for Stat (HEAD) and
// Delete (DELETE), signed with the Authorization header and sent with
// libcurl.
//
// Endpoints: virtual-host style (https://<bucket>.s3.<region>.amazonaws.com
// /<key>, AWS's default) or path style (<endpoint>/<bucket>/<key>, for
// MinIO, s3rver and buckets with dots in their names).
#ifndef DROVER_QUEUE_BLOBSTORE_S3_S3_BLOB_STORE_H_
#define DROVER_QUEUE_BLOBSTORE_S3_S3_BLOB_STORE_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "queue/blobstore/blob_store.h"
#include "queue/blobstore/s3/sigv4.h"

namespace drover::queue::blobstore::s3 {

struct S3BlobStoreOptions {
  // Scheme and host (and port) of the service, no path:
  // "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:4569".
  std::string endpoint;
  std::string region = "us-east-1";
  // 3 to 63 characters of [a-z0-9.-], starting and ending with a letter or
  // digit.
  std::string bucket;
  Credentials credentials;
  // Bucket in the path instead of the host name.
  bool path_style = false;
  // Prepended to every key ("drover/" keeps Drover's objects apart in a
  // shared bucket). Empty or a valid key followed by '/'.
  std::string key_prefix;
  // Bound on each HEAD/DELETE the store sends itself.
  absl::Duration request_timeout = absl::Seconds(30);
};

// Thread-safe (see BlobStore); every HEAD/DELETE uses its own connection.
class S3BlobStore final : public BlobStore {
 public:
  // Checks the options. Errors: InputError on "endpoint", "region",
  // "bucket", "credentials.access_key_id",
  // "credentials.secret_access_key" or "key_prefix". `clock` must outlive
  // the store.
  static absl::StatusOr<std::unique_ptr<S3BlobStore>> Create(
      S3BlobStoreOptions options, const Clock* clock);

  std::string_view Kind() const override { return "s3"; }

  // A presigned PUT. Signed headers (the uploader must send them as
  // returned): Content-Type, Content-Encoding when set, Content-Length when
  // the length is set, x-amz-checksum-sha256 (base64) when the SHA-256 is
  // set, so S3 itself refuses other bytes.
  absl::StatusOr<PresignedRequest> PresignUpload(
      std::string_view key, const UploadOptions& options,
      absl::Duration expires_in) override;
  absl::StatusOr<std::string> PresignDownload(
      std::string_view key, absl::Duration expires_in) override;
  // HEAD with x-amz-checksum-mode: ENABLED; sha256 is set only when S3
  // returns a verified x-amz-checksum-sha256.
  absl::StatusOr<BlobInfo> Stat(std::string_view key) override;
  absl::Status Delete(std::string_view key) override;
  // PutObject from the server itself. The bytes are first spooled to an
  // unnamed temporary file (S3 needs the length up front), so every
  // promise in `options` is checked before anything is sent and the body
  // is signed with its SHA-256, which S3 verifies.
  absl::StatusOr<BlobInfo> Put(std::string_view key,
                               const UploadOptions& options,
                               const BlobSource& source) override;
  absl::Status Get(std::string_view key, const BlobSink& sink) override;

  // The URL of `key` without a signature (scheme, host, encoded path).
  // Errors: InputError on "key".
  absl::StatusOr<std::string> ObjectUrl(std::string_view key) const;

 private:
  struct Target {
    std::string host;  // as sent in the Host header
    std::string path;  // decoded
    std::string url;   // without query
  };

  S3BlobStore(S3BlobStoreOptions options, const Clock* clock,
              std::string scheme, std::string host);

  // One header-signed request.
  struct Exchange {
    std::string method;
    // Signed besides host, x-amz-date and x-amz-content-sha256.
    NameValues headers;
    std::string payload_sha256 = std::string(kEmptyPayloadSha256);
    // A request body of this many bytes, pulled from `read` (libcurl read
    // callback semantics: bytes written, 0 at the end,
    // CURL_READFUNC_ABORT to abort).
    std::optional<uint64_t> body_size;
    std::function<size_t(char* buffer, size_t size)> read;
    // Receives a 2xx response body; other bodies are kept (truncated) in
    // Response::body for the error message.
    const BlobSink* sink = nullptr;
  };
  struct Response {
    long status = 0;
    std::multimap<std::string, std::string> headers;  // lowercase names
    std::string body;
  };

  absl::StatusOr<Target> TargetFor(std::string_view key) const;
  // Sends the request. Errors: InternalError when it cannot be completed;
  // the sink's error when it stopped the transfer. Any HTTP status is a
  // Response.
  absl::StatusOr<Response> Send(const Exchange& exchange,
                                const Target& target) const;
  absl::Status UnexpectedStatus(std::string_view method, const Target& target,
                                std::string_view key,
                                const Response& response) const;

  S3BlobStoreOptions options_;
  const Clock* clock_;
  std::string scheme_;  // "http" or "https"
  std::string host_;    // endpoint host[:port], default port dropped
};

}  // namespace drover::queue::blobstore::s3

#endif  // DROVER_QUEUE_BLOBSTORE_S3_S3_BLOB_STORE_H_
