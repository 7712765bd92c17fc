#include "queue/artifacts/artifact_validation.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "common/crypto/encoding.h"
#include "common/slugid.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "queue/blobstore/blob_store.h"
#include "queue/blobstore/sha256.h"

namespace drover::queue::artifacts {
namespace {

using blobstore::PrintableForError;

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  // The database keeps microseconds; truncate so a stored expiry reads back
  // equal to the accepted one.
  return absl::FromUnixMicros(ts.seconds() * 1000000 + ts.nanos() / 1000);
}

google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rest * 1000));
  return ts;
}

// Re-labels an error about field "from" (as blob store helpers name them)
// with the request field it came from.
absl::Status Relabel(const absl::Status& status, std::string_view field) {
  if (status.ok()) return status;
  ErrorInfo info = GetErrorInfo(status);
  info.details["field"] = std::string(field);
  return MakeError(info.code,
                   absl::StrCat(std::string(field), ": ", info.message),
                   info.details);
}

absl::Status ValidateContentType(const std::string& content_type) {
  blobstore::UploadOptions options;
  options.content_type = content_type;
  return Relabel(blobstore::ValidateUploadOptions(options), "content_type");
}

absl::Status ValidateUrl(std::string_view field, std::string_view url) {
  if (url.empty()) return InputError(field, url, "a URL is required");
  if (url.size() > kMaxUrlBytes) {
    return InputError(field, url.substr(0, 64),
                      absl::StrCat("longer than ", kMaxUrlBytes, " bytes"));
  }
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u > 0x7e) {
      return InputError(field, PrintableForError(url),
                        "URLs may hold only printable ASCII without spaces");
    }
  }
  const bool http = url.rfind("http://", 0) == 0 && url.size() > 7;
  const bool https = url.rfind("https://", 0) == 0 && url.size() > 8;
  if (!http && !https) {
    return InputError(field, url, "must be an http:// or https:// URL");
  }
  return absl::OkStatus();
}

absl::Status ValidateErrorReason(std::string_view reason) {
  if (reason.empty() || reason.size() > kMaxErrorReasonBytes) {
    return InputError("error.reason", PrintableForError(reason),
                      absl::StrCat("must be 1..", kMaxErrorReasonBytes,
                                   " characters of [a-z0-9-]"));
  }
  for (char c : reason) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return InputError("error.reason", PrintableForError(reason),
                        "must be 1..64 characters of [a-z0-9-], e.g. "
                        "file-missing-on-worker");
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string BlobKeyFor(std::string_view task_id, int run_id,
                       std::string_view name) {
  return absl::StrCat(std::string(task_id), "/", run_id, "/",
                      std::string(name));
}

absl::Status ValidateArtifactName(std::string_view field,
                                  std::string_view name) {
  if (name.empty()) return InputError(field, name, "a name is required");
  if (name.size() > kMaxArtifactNameBytes) {
    return InputError(
        field, PrintableForError(name.substr(0, 64)),
        absl::StrCat("longer than ", kMaxArtifactNameBytes, " bytes"));
  }
  return Relabel(blobstore::ValidateBlobKey(name), field);
}

absl::Status ValidateRun(std::string_view task_id, int run_id) {
  if (!IsValidSlugId(task_id)) {
    return InputError("task_id", PrintableForError(task_id),
                      "must be a 22-character slug id");
  }
  if (run_id < 0 || run_id > kMaxRunId) {
    return InputError("run_id", std::to_string(run_id),
                      absl::StrCat("must be 0..", kMaxRunId));
  }
  return absl::OkStatus();
}

absl::StatusOr<NewArtifact> ValidateCreateArtifact(
    const v1::CreateArtifactRequest& request) {
  DROVER_RETURN_IF_ERROR(ValidateRun(request.task_id(), request.run_id()));
  DROVER_RETURN_IF_ERROR(ValidateArtifactName("name", request.name()));
  NewArtifact out;
  Artifact& a = out.artifact;
  a.task_id = request.task_id();
  a.run_id = request.run_id();
  a.name = request.name();
  a.content_type = request.content_type().empty()
                       ? std::string(kDefaultContentType)
                       : request.content_type();
  DROVER_RETURN_IF_ERROR(ValidateContentType(a.content_type));
  if (request.has_expires()) {
    const auto& ts = request.expires();
    using google::protobuf::util::TimeUtil;
    if (ts.nanos() < 0 || ts.nanos() > 999999999 ||
        ts.seconds() < TimeUtil::kTimestampMinSeconds ||
        ts.seconds() > TimeUtil::kTimestampMaxSeconds) {
      return InputError("expires", ts.DebugString(), "not a valid timestamp");
    }
    out.expires = FromProto(ts);
  }
  switch (request.kind_case()) {
    case v1::CreateArtifactRequest::kBlob: {
      a.kind = ArtifactKind::kBlob;
      const auto& blob = request.blob();
      if (blob.size() < 0 || blob.size() > kMaxBlobSize) {
        return InputError("blob.size", std::to_string(blob.size()),
                          "must be 0..1 TiB");
      }
      if (!blobstore::IsSha256Hex(blob.sha256())) {
        return InputError("blob.sha256", PrintableForError(blob.sha256()),
                          "must be 64 lowercase hex digits");
      }
      if (!blob.content_encoding().empty() &&
          blob.content_encoding() != "gzip") {
        return InputError("blob.content_encoding",
                          PrintableForError(blob.content_encoding()),
                          "must be empty or gzip");
      }
      a.size = blob.size();
      a.sha256 = blob.sha256();
      a.content_encoding = blob.content_encoding();
      a.blob_key = BlobKeyFor(a.task_id, a.run_id, a.name);
      DROVER_RETURN_IF_ERROR(
          Relabel(blobstore::ValidateBlobKey(a.blob_key), "name"));
      break;
    }
    case v1::CreateArtifactRequest::kReference:
      a.kind = ArtifactKind::kReference;
      DROVER_RETURN_IF_ERROR(
          ValidateUrl("reference.url", request.reference().url()));
      a.url = request.reference().url();
      break;
    case v1::CreateArtifactRequest::kLink: {
      a.kind = ArtifactKind::kLink;
      const auto& link = request.link();
      DROVER_RETURN_IF_ERROR(
          ValidateArtifactName("link.artifact", link.artifact()));
      a.link_name = link.artifact();
      a.link_run_id = link.has_run_id() ? link.run_id() : a.run_id;
      if (a.link_run_id < 0 || a.link_run_id > kMaxRunId) {
        return InputError("link.run_id", std::to_string(a.link_run_id),
                          absl::StrCat("must be 0..", kMaxRunId));
      }
      break;
    }
    case v1::CreateArtifactRequest::kError:
      a.kind = ArtifactKind::kError;
      DROVER_RETURN_IF_ERROR(ValidateErrorReason(request.error().reason()));
      if (request.error().message().size() > kMaxErrorMessageBytes) {
        return InputError(
            "error.message", request.error().message().substr(0, 64),
            absl::StrCat("longer than ", kMaxErrorMessageBytes, " bytes"));
      }
      a.error_reason = request.error().reason();
      a.error_message = request.error().message();
      break;
    case v1::CreateArtifactRequest::KIND_NOT_SET:
      return InputError("kind", "",
                        "one of blob, reference, link or error is required");
  }
  return out;
}

absl::Status ValidateArtifactRequest(const v1::ArtifactRequest& request) {
  DROVER_RETURN_IF_ERROR(ValidateRun(request.task_id(), request.run_id()));
  return ValidateArtifactName("name", request.name());
}

absl::StatusOr<int> ValidateListLimit(int limit) {
  if (limit == 0) return kDefaultListLimit;
  if (limit < 1 || limit > kMaxListLimit) {
    return InputError("limit", std::to_string(limit),
                      absl::StrCat("must be 1..", kMaxListLimit));
  }
  return limit;
}

std::string EncodeContinuationToken(int run_id, std::string_view after_name) {
  return crypto::Base64UrlEncode(
      absl::StrCat(run_id, ":", std::string(after_name)));
}

absl::StatusOr<std::pair<int, std::string>> DecodeContinuationToken(
    std::string_view token) {
  auto bad = [&] {
    return InputError("continuation_token", PrintableForError(token),
                      "not a continuation token from this listing");
  };
  std::optional<std::string> text = crypto::Base64UrlDecode(token);
  if (!text) return bad();
  size_t colon = text->find(':');
  if (colon == std::string::npos || colon == 0) return bad();
  int run_id = -1;
  auto [end, ec] = std::from_chars(text->data(), text->data() + colon, run_id);
  if (ec != std::errc() || end != text->data() + colon || run_id < 0 ||
      run_id > kMaxRunId) {
    return bad();
  }
  std::string name = text->substr(colon + 1);
  if (!ValidateArtifactName("continuation_token", name).ok()) return bad();
  return std::make_pair(run_id, std::move(name));
}

absl::Status ValidateAppendLog(const v1::AppendLogRequest& request) {
  DROVER_RETURN_IF_ERROR(ValidateRun(request.task_id(), request.run_id()));
  if (request.offset() < 0) {
    return InputError("offset", std::to_string(request.offset()),
                      "must not be negative");
  }
  if (request.data().empty()) {
    return InputError("data", "", "an append needs at least one byte");
  }
  if (static_cast<int64_t>(request.data().size()) > kMaxAppendBytes) {
    return MakeError(
        ErrorCode::kInputTooLarge,
        absl::StrCat("an append carries at most ", kMaxAppendBytes, " bytes"),
        {{"field", "data"}, {"value", std::to_string(request.data().size())}});
  }
  return absl::OkStatus();
}

absl::Status ValidateTailLog(const v1::TailLogRequest& request) {
  DROVER_RETURN_IF_ERROR(ValidateRun(
      request.task_id(), request.has_run_id() ? request.run_id() : 0));
  if (request.offset() < 0) {
    return InputError("offset", std::to_string(request.offset()),
                      "must not be negative");
  }
  return absl::OkStatus();
}

void ToProto(const Artifact& a, v1::Artifact* out) {
  out->set_task_id(a.task_id);
  out->set_run_id(a.run_id);
  out->set_name(a.name);
  out->set_content_type(a.content_type);
  *out->mutable_expires() = ToProtoTime(a.expires);
  *out->mutable_created() = ToProtoTime(a.created);
  out->set_present(a.present);
  switch (a.kind) {
    case ArtifactKind::kBlob: {
      auto* blob = out->mutable_blob();
      blob->set_size(a.size);
      blob->set_sha256(a.sha256);
      blob->set_content_encoding(a.content_encoding);
      break;
    }
    case ArtifactKind::kReference:
      out->mutable_reference()->set_url(a.url);
      break;
    case ArtifactKind::kLink:
      out->mutable_link()->set_artifact(a.link_name);
      out->mutable_link()->set_run_id(a.link_run_id);
      break;
    case ArtifactKind::kError:
      out->mutable_error()->set_reason(a.error_reason);
      out->mutable_error()->set_message(a.error_message);
      break;
  }
}

}  // namespace drover::queue::artifacts
