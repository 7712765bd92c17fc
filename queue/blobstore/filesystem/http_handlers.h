// HTTP routes that serve a FilesystemBlobStore's signed URLs on the queue's
// HTTP listener (cpp-httplib). Bodies stream in both directions: an upload
// goes straight to its temporary file in chunks while its SHA-256 is
// computed, a download is read from the file as the socket drains; no blob
// is ever held in memory whole.
//
// Routes, for the store's url_prefix P:
//   PUT  P/<key>?expires&ct[&ce][&len][&sha256]&sig
//        200 {"size": N, "sha256": "..."} once the blob is stored.
//   GET  P/<key>?expires&sig   (HEAD too; single byte ranges are honoured)
//        200 with the bytes, Content-Type and Content-Encoding as uploaded
//        and X-Drover-Sha256 when known.
// Failures answer {"code", "message", "details"} (the error of
// common/status.h) as JSON with status 400 (bad key or upload; 413 when
// longer than signed), 403 (missing, tampered or expired signature), 404,
// 409 (key collides with another blob's path) or 500.
#ifndef DROVER_QUEUE_BLOBSTORE_FILESYSTEM_HTTP_HANDLERS_H_
#define DROVER_QUEUE_BLOBSTORE_FILESYSTEM_HTTP_HANDLERS_H_

#include <httplib.h>

#include <string>

#include "absl/status/status.h"
#include "queue/blobstore/filesystem/filesystem_blob_store.h"

namespace drover::queue::blobstore::filesystem {

// Registers the routes above on `server` and installs an Expect:
// 100-continue handler (see ExpectContinue) so that an upload with a bad
// signature is refused before its body is sent. A listener that needs its
// own Expect handler must call ExpectContinue from it. `store` must
// outlive `server`. Call before the server starts listening.
void RegisterHttpHandlers(httplib::Server& server, FilesystemBlobStore& store);

// Decides an "Expect: 100-continue" request: 100 (send the body) for
// anything that is not an upload to `store`, or an upload whose key,
// signature, expiry and declared length are acceptable; otherwise fills
// `res` with the JSON error and returns its status. Thread-safe.
int ExpectContinue(const FilesystemBlobStore& store,
                   const httplib::Request& req, httplib::Response& res);

// The HTTP status for an error status (see the header comment).
int HttpStatusFor(const absl::Status& status);

// {"code": ..., "message": ..., "details": {...}} for an error status.
std::string ErrorJson(const absl::Status& status);

}  // namespace drover::queue::blobstore::filesystem

#endif  // DROVER_QUEUE_BLOBSTORE_FILESYSTEM_HTTP_HANDLERS_H_
