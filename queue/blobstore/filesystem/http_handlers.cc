#include "queue/blobstore/filesystem/http_handlers.h"

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace drover::queue::blobstore::filesystem {
namespace {

// Bytes read from the file per content-provider call on downloads.
constexpr size_t kDownloadChunkBytes = 256 * 1024;
// A refused upload's body up to this size is read and dropped so that the
// client gets its answer on a connection that stays usable; a larger one is
// not worth receiving and the connection is closed instead.
constexpr uint64_t kDrainLimitBytes = 1 << 20;

SignedUrlParams ParamsOf(const httplib::Request& req) {
  SignedUrlParams params;
  params.expires = req.get_param_value("expires");
  params.signature = req.get_param_value("sig");
  params.content_type = req.get_param_value("ct");
  params.content_encoding = req.get_param_value("ce");
  params.length = req.get_param_value("len");
  params.sha256 = req.get_param_value("sha256");
  return params;
}

// The upload a verified URL describes. The values were signed by us, so a
// parse failure is a server bug, reported as such.
absl::StatusOr<UploadOptions> UploadOptionsOf(const SignedUrlParams& params) {
  UploadOptions options;
  options.content_type = params.content_type;
  options.content_encoding = params.content_encoding;
  if (!params.length.empty()) {
    uint64_t length = 0;
    if (!absl::SimpleAtoi(
            absl::string_view(params.length.data(), params.length.size()),
            &length)) {
      return MakeError(
          ErrorCode::kInternalError,
          "a signed upload URL carries a malformed length",
          {{"field", "len"}, {"value", PrintableForError(params.length)}});
    }
    options.content_length = length;
  }
  if (!params.sha256.empty()) options.sha256 = params.sha256;
  return options;
}

// Everything an upload is checked on before its body is read.
absl::StatusOr<UploadOptions> CheckUpload(const FilesystemBlobStore& store,
                                          const httplib::Request& req,
                                          const std::string& key) {
  DROVER_RETURN_IF_ERROR(ValidateBlobKey(key));
  SignedUrlParams params = ParamsOf(req);
  DROVER_RETURN_IF_ERROR(store.VerifySignedRequest("PUT", key, params));
  DROVER_ASSIGN_OR_RETURN(UploadOptions options, UploadOptionsOf(params));
  if (req.has_header("Content-Encoding")) {
    // cpp-httplib would decode a compressed body before handing it over;
    // blobs are stored exactly as sent, with the encoding from the URL.
    return InputError(
        "Content-Encoding",
        PrintableForError(req.get_header_value("Content-Encoding")),
        "send no Content-Encoding header; the encoding is part "
        "of the signed URL");
  }
  if (options.content_length && req.has_header("Content-Length")) {
    std::string declared = req.get_header_value("Content-Length");
    if (declared != absl::StrCat(*options.content_length)) {
      return InputError("Content-Length", PrintableForError(declared),
                        absl::StrCat("the signed URL is for ",
                                     *options.content_length, " bytes"));
    }
  }
  return options;
}

// Answers `status` as a JSON error. With `close_connection`, the connection
// is closed after the response: cpp-httplib keeps reading a keep-alive
// connection after a handler returns, so an unread request body would be
// parsed as the next request line (and read without any length limit).
// Failing the content provider once the body is written is the one way a
// handler can make it hang up. `set_length` is for paths on which
// cpp-httplib does not add Content-Length for a provider itself.
void SetError(httplib::Response& res, const absl::Status& status,
              bool close_connection, bool set_length = false) {
  res.status = HttpStatusFor(status);
  std::string body = ErrorJson(status);
  if (!close_connection) {
    res.set_content(body, "application/json");
    return;
  }
  res.set_header("Connection", "close");
  if (set_length) res.set_header("Content-Length", absl::StrCat(body.size()));
  auto shared = std::make_shared<const std::string>(std::move(body));
  res.set_content_provider(
      shared->size(), "application/json",
      [shared](size_t offset, size_t length, httplib::DataSink& sink) {
        sink.write(shared->data() + offset, length);
        return false;
      });
}

// Answers an upload refused before its body was read.
void RefuseUnread(const httplib::Request& req, httplib::Response& res,
                  const httplib::ContentReader& content_reader,
                  const absl::Status& status) {
  std::string declared = req.get_header_value("Content-Length");
  uint64_t length = 0;
  if (absl::SimpleAtoi(absl::string_view(declared.data(), declared.size()),
                       &length) &&
      length <= kDrainLimitBytes &&
      content_reader([](const char*, size_t) { return true; })) {
    SetError(res, status, /*close_connection=*/false);
    return;
  }
  SetError(res, status, /*close_connection=*/true);
}

void HandleUpload(FilesystemBlobStore& store, const httplib::Request& req,
                  httplib::Response& res,
                  const httplib::ContentReader& content_reader) {
  std::string key = req.matches[1];
  absl::StatusOr<UploadOptions> options = CheckUpload(store, req, key);
  if (!options.ok()) {
    RefuseUnread(req, res, content_reader, options.status());
    return;
  }
  absl::StatusOr<std::unique_ptr<BlobWriter>> writer =
      store.OpenForWrite(key, *options);
  if (!writer.ok()) {
    RefuseUnread(req, res, content_reader, writer.status());
    return;
  }
  absl::Status write_status;
  bool complete = content_reader([&](const char* data, size_t size) {
    write_status = (*writer)->Write(data, size);
    return write_status.ok();
  });
  if (!write_status.ok()) {
    SetError(res, write_status, /*close_connection=*/true);
    return;
  }
  if (!complete) {
    SetError(
        res,
        InputError("body",
                   absl::StrCat((*writer)->bytes_written(), " bytes received"),
                   "the upload ended before its body was complete"),
        /*close_connection=*/true);
    return;
  }
  absl::StatusOr<BlobInfo> info = (*writer)->Commit();
  if (!info.ok()) {
    SetError(res, info.status(), /*close_connection=*/false);
    return;
  }
  nlohmann::json body = {{"size", info->size},
                         {"sha256", info->sha256.value_or("")}};
  res.status = 200;
  res.set_content(body.dump(), "application/json");
}

void HandleDownload(const FilesystemBlobStore& store,
                    const httplib::Request& req, httplib::Response& res) {
  std::string key = req.matches[1];
  absl::Status checked = ValidateBlobKey(key);
  if (checked.ok()) {
    // HEAD is a GET without the body; one signature serves both.
    checked = store.VerifySignedRequest("GET", key, ParamsOf(req));
  }
  if (!checked.ok()) {
    SetError(res, checked, /*close_connection=*/false);
    return;
  }
  absl::StatusOr<std::unique_ptr<BlobReader>> opened = store.OpenForRead(key);
  if (!opened.ok()) {
    SetError(res, opened.status(), /*close_connection=*/false);
    return;
  }
  std::shared_ptr<BlobReader> reader = std::move(*opened);
  const BlobInfo& info = reader->info();
  if (!info.content_encoding.empty()) {
    res.set_header("Content-Encoding", info.content_encoding);
  }
  if (info.sha256) res.set_header("X-Drover-Sha256", *info.sha256);
  // res.status stays unset: cpp-httplib then answers 200, or 206 when it
  // serves a byte range from the provider.
  if (info.size == 0) {
    res.set_content("", info.content_type);
    return;
  }
  auto buffer = std::make_shared<std::vector<char>>(
      std::min<uint64_t>(info.size, kDownloadChunkBytes));
  res.set_content_provider(
      info.size, info.content_type,
      [reader, buffer](size_t offset, size_t length, httplib::DataSink& sink) {
        size_t want = std::min(length, buffer->size());
        absl::StatusOr<size_t> n = reader->ReadAt(offset, buffer->data(), want);
        // A file shorter than announced cannot be answered honestly any
        // more; failing drops the connection so the client sees a short
        // read instead of wrong bytes.
        if (!n.ok() || *n == 0) return false;
        return sink.write(buffer->data(), *n);
      });
}

}  // namespace

int HttpStatusFor(const absl::Status& status) {
  if (status.ok()) return 200;
  switch (GetErrorInfo(status).code) {
    case ErrorCode::kInputError:
    case ErrorCode::kMalformedPayload:
      return 400;
    case ErrorCode::kInputTooLarge:
      return 413;
    case ErrorCode::kAuthenticationFailed:
    case ErrorCode::kInsufficientScopes:
    case ErrorCode::kResourceExpired:
      return 403;
    case ErrorCode::kResourceNotFound:
      return 404;
    case ErrorCode::kRequestConflict:
      return 409;
    case ErrorCode::kInternalError:
      return 500;
  }
  return 500;
}

std::string ErrorJson(const absl::Status& status) {
  ErrorInfo info = GetErrorInfo(status);
  nlohmann::json details = nlohmann::json::object();
  for (const auto& [name, value] : info.details) details[name] = value;
  nlohmann::json body = {{"code", std::string(ErrorCodeName(info.code))},
                         {"message", info.message},
                         {"details", std::move(details)}};
  return body.dump();
}

int ExpectContinue(const FilesystemBlobStore& store,
                   const httplib::Request& req, httplib::Response& res) {
  std::string prefix = store.options().url_prefix + "/";
  if (req.method != "PUT" || !req.path.starts_with(prefix)) return 100;
  absl::StatusOr<UploadOptions> options =
      CheckUpload(store, req, req.path.substr(prefix.size()));
  if (options.ok()) return 100;
  // The client may send the body regardless; hanging up after the answer
  // keeps it from being read as a request.
  SetError(res, options.status(), /*close_connection=*/true,
           /*set_length=*/true);
  return res.status;
}

void RegisterHttpHandlers(httplib::Server& server, FilesystemBlobStore& store) {
  std::string pattern = store.options().url_prefix + "/(.+)";
  server.Put(pattern,
             [&store](const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& content_reader) {
               HandleUpload(store, req, res, content_reader);
             });
  server.Get(pattern,
             [&store](const httplib::Request& req, httplib::Response& res) {
               HandleDownload(store, req, res);
             });
  server.set_expect_100_continue_handler(
      [&store](const httplib::Request& req, httplib::Response& res) {
        return ExpectContinue(store, req, res);
      });
}

}  // namespace drover::queue::blobstore::filesystem
