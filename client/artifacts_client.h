// ArtifactsClient: the drover.v1.Artifacts service (one method per RPC,
// plus a TailLog follower), and the HTTP side of artifacts: moving bytes to
// and from the signed URLs the service hands out (libcurl), with retries
// and gzip decoding.
//
// Retries: UNAVAILABLE is retried (client/call.h) for every unary method;
// all of them are idempotent on the server (an identical CreateArtifact
// returns the same artifact, FinishArtifact of a finished blob answers it
// again, AppendLog is idempotent by offset). HTTP transfers retry network
// errors and 408/429/5xx answers with exponential backoff; a download
// resumes where it stopped (Range), an upload starts over.
//
// Thread-safe: one ArtifactsClient may serve any number of threads; the
// free functions may run concurrently.
#ifndef DROVER_CLIENT_ARTIFACTS_CLIENT_H_
#define DROVER_CLIENT_ARTIFACTS_CLIENT_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/call.h"
#include "client/connection.h"
#include "client/service_client.h"
#include "drover/v1/artifacts.grpc.pb.h"

namespace drover::client {

// Receives bytes in order; an error stops the transfer and is returned.
using BytesSink = std::function<absl::Status(std::string_view bytes)>;

class ArtifactsClient : public ServiceClient<v1::Artifacts> {
 public:
  // Takes the shared connection and the CallOptions of the calls that
  // pass none of their own (ServiceClient's constructor).
  using ServiceClient::ServiceClient;

  absl::StatusOr<v1::CreateArtifactResponse> CreateArtifact(
      const v1::CreateArtifactRequest& request, Options options = {}) const;
  absl::StatusOr<v1::FinishArtifactResponse> FinishArtifact(
      const v1::ArtifactRequest& request, Options options = {}) const;
  absl::StatusOr<v1::GetArtifactResponse> GetArtifact(
      const v1::ArtifactRequest& request, Options options = {}) const;
  absl::StatusOr<v1::GetArtifactResponse> GetLatestArtifact(
      const v1::LatestArtifactRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListArtifactsResponse> ListArtifacts(
      const v1::ListArtifactsRequest& request, Options options = {}) const;
  absl::StatusOr<v1::ListArtifactsResponse> ListLatestArtifacts(
      const v1::ListLatestArtifactsRequest& request,
      Options options = {}) const;
  absl::StatusOr<v1::AppendLogResponse> AppendLog(
      const v1::AppendLogRequest& request, Options options = {}) const;

  struct TailResult {
    int run_id = 0;
    // Bytes delivered, i.e. where the log ended.
    int64_t end_offset = 0;
  };
  // Follows a run's log (TailLog) from request.offset until the run is
  // resolved, handing every byte to `on_data` once, in order, including
  // the part fetched from the finished blob when the server points there.
  // A stream that breaks (UNAVAILABLE: replica restarting) is resumed at
  // the same offset up to `max_reconnects` times. Blocking. Errors: the
  // server's (ResourceNotFound, ...), a sink error, or the transport's.
  absl::StatusOr<TailResult> TailLog(const v1::TailLogRequest& request,
                                     const BytesSink& on_data,
                                     int max_reconnects = 5) const;
};

// Credentials of a claimed task: the certificate when there is one, else
// the client id and access token.
Credentials TaskCredentials(const std::string& client_id,
                            const std::string& access_token,
                            const std::string& certificate);

struct TransferOptions {
  // Attempts in all, the first included.
  int max_attempts = 5;
  absl::Duration initial_backoff = absl::Milliseconds(200);
  absl::Duration max_backoff = absl::Seconds(10);
  absl::Duration connect_timeout = absl::Seconds(10);
  // A transfer slower than 1 byte/s for this long counts as a network
  // error.
  absl::Duration stall_timeout = absl::Seconds(60);
  // PEM CA file for https:// URLs; empty: the system's.
  std::string ca_file;
};

// Called with (bytes done, bytes expected or -1 when unknown).
using ProgressCallback = std::function<void(int64_t done, int64_t total)>;

// PUTs `file` to a presigned upload with exactly its headers. Errors:
// ResourceExpired when the URL's signature has expired (create the
// artifact again for a fresh one); the blob store's error (InputError,
// AuthenticationFailed, ...) for other refusals; Unavailable after the
// attempts ran out on network errors; InternalError when the file cannot
// be read.
absl::Status UploadFile(const v1::PresignedUpload& upload,
                        const std::filesystem::path& file,
                        const TransferOptions& options = {},
                        const ProgressCallback& progress = nullptr);

struct DownloadInfo {
  // Bytes delivered to the sink.
  int64_t bytes = 0;
  std::string content_type;
  std::string content_encoding;
};

// GETs `url` from byte `offset` on (a Range request when offset > 0) and
// streams the body, exactly as stored, into `sink`. With `decode` the
// body is gunzipped on the fly when it came with Content-Encoding: gzip.
// Errors: ResourceNotFound for 404, the server's error for other 4xx,
// Unavailable after the attempts ran out, or the sink's error.
absl::StatusOr<DownloadInfo> Download(
    const std::string& url, int64_t offset, const BytesSink& sink, bool decode,
    const TransferOptions& options = {},
    const ProgressCallback& progress = nullptr);

// Lowercase hex SHA-256 and size of a file. Errors: InternalError when it
// cannot be read.
absl::StatusOr<std::pair<std::string, int64_t>> HashFile(
    const std::filesystem::path& file);

// Streaming gzip decompression (RFC 1952, concatenated members allowed).
class GzipDecoder {
 public:
  // Decoded bytes go to `sink`.
  explicit GzipDecoder(BytesSink sink);
  ~GzipDecoder();
  GzipDecoder(const GzipDecoder&) = delete;
  GzipDecoder& operator=(const GzipDecoder&) = delete;
  // Errors: InputError (field "gzip") for corrupt data; the sink's error.
  absl::Status Feed(std::string_view compressed);
  // Errors: InputError when the stream ended in the middle.
  absl::Status Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
  BytesSink sink_;
};

// Writes a gzip copy of `source` to `destination`. Errors: InternalError.
absl::Status GzipFile(const std::filesystem::path& source,
                      const std::filesystem::path& destination);

struct BlobArtifactUpload {
  std::string task_id;
  int run_id = 0;
  std::string name;
  std::string content_type;
  // "" or "gzip": `file` already holds the encoded bytes.
  std::string content_encoding;
  std::optional<absl::Time> expires;
  std::filesystem::path file;
};

// Creates the blob artifact, uploads `file` and finishes it. An upload URL
// that expires while retrying is replaced by creating the artifact again.
// Returns the finished artifact. Errors: those of CreateArtifact,
// UploadFile and FinishArtifact.
absl::StatusOr<v1::Artifact> UploadBlobArtifact(
    const ArtifactsClient& client, const BlobArtifactUpload& upload,
    const TransferOptions& options = {},
    const ProgressCallback& progress = nullptr);

}  // namespace drover::client

#endif  // DROVER_CLIENT_ARTIFACTS_CLIENT_H_
