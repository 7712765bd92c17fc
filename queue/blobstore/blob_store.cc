#include "queue/blobstore/blob_store.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "queue/blobstore/sha256.h"

namespace drover::queue::blobstore {
namespace {

constexpr size_t kMaxKeyBytes = 1024;
// NAME_MAX on every filesystem we care about, and S3 has no tighter rule.
constexpr size_t kMaxSegmentBytes = 255;
constexpr size_t kMaxContentTypeBytes = 255;
constexpr size_t kMaxContentEncodingBytes = 64;

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
      (c >= '0' && c <= '9')) {
    return true;
  }
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

absl::Status KeyError(std::string_view key, std::string_view rule) {
  return InputError("key", PrintableForError(key),
                    "invalid blob key: " + std::string(rule));
}

}  // namespace

absl::Status ValidateBlobKey(std::string_view key) {
  if (key.empty()) return KeyError(key, "must not be empty");
  if (key.size() > kMaxKeyBytes) {
    return KeyError(key, absl::StrCat("longer than ", kMaxKeyBytes, " bytes"));
  }
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      return KeyError(key, "only printable ASCII characters are allowed");
    }
    if (c == '\\') return KeyError(key, "'\\' is not allowed");
  }
  if (key.front() == '/') return KeyError(key, "must not start with '/'");
  if (key.back() == '/') return KeyError(key, "must not end with '/'");
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view segment = key.substr(start, end - start);
    if (segment.empty()) return KeyError(key, "empty segment ('//')");
    if (segment == "." || segment == "..") {
      return KeyError(key, "'.' and '..' segments are not allowed");
    }
    if (segment.size() > kMaxSegmentBytes) {
      return KeyError(key, absl::StrCat("a segment is longer than ",
                                        kMaxSegmentBytes, " bytes"));
    }
    if (segment.front() == ' ' || segment.back() == ' ') {
      return KeyError(key, "segments must not start or end with a space");
    }
    start = end + 1;
  }
  return absl::OkStatus();
}

absl::Status ValidatePresignExpiry(absl::Duration expires_in) {
  if (expires_in < absl::Seconds(1)) {
    return InputError("expires_in", absl::FormatDuration(expires_in),
                      "must be at least one second");
  }
  if (expires_in > kMaxPresignExpiry) {
    return InputError("expires_in", absl::FormatDuration(expires_in),
                      absl::StrCat("must be at most ",
                                   absl::FormatDuration(kMaxPresignExpiry)));
  }
  return absl::OkStatus();
}

absl::Status ValidateUploadOptions(const UploadOptions& options) {
  const std::string& type = options.content_type;
  if (type.empty()) {
    return InputError("content_type", PrintableForError(type),
                      "must not be empty");
  }
  if (type.size() > kMaxContentTypeBytes) {
    return InputError("content_type", PrintableForError(type),
                      absl::StrCat("longer than ", kMaxContentTypeBytes));
  }
  size_t slash = type.find('/');
  size_t params = type.find(';');
  std::string_view media = std::string_view(type).substr(0, params);
  while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
  if (slash == std::string::npos || slash == 0 || slash + 1 >= media.size()) {
    return InputError("content_type", PrintableForError(type),
                      "must look like type/subtype");
  }
  for (size_t i = 0; i < media.size(); ++i) {
    if (i != slash && !IsTokenChar(media[i])) {
      return InputError("content_type", PrintableForError(type),
                        "type and subtype must be HTTP tokens");
    }
  }
  for (char c : type) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e) {
      return InputError("content_type", PrintableForError(type),
                        "only printable ASCII characters are allowed");
    }
  }
  const std::string& encoding = options.content_encoding;
  if (encoding.size() > kMaxContentEncodingBytes) {
    return InputError("content_encoding", PrintableForError(encoding),
                      "too long");
  }
  for (char c : encoding) {
    if (!IsTokenChar(c)) {
      return InputError("content_encoding", PrintableForError(encoding),
                        "must be an HTTP token such as gzip");
    }
  }
  if (options.sha256 && !IsSha256Hex(*options.sha256)) {
    return InputError("sha256", PrintableForError(*options.sha256),
                      "must be 64 lowercase hex digits");
  }
  return absl::OkStatus();
}

std::string PrintableForError(std::string_view value) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u <= 0x7e) {
      out.push_back(c);
    } else {
      absl::StrAppend(&out, "\\x", std::string(1, kDigits[u >> 4]),
                      std::string(1, kDigits[u & 0xf]));
    }
  }
  return out;
}

BlobSource StringSource(std::string_view data) {
  return [data, offset = size_t{0}](
             char* buffer, size_t size) mutable -> absl::StatusOr<size_t> {
    size_t n = std::min(size, data.size() - offset);
    std::copy_n(data.data() + offset, n, buffer);
    offset += n;
    return n;
  };
}

std::string EncodeKeyForUrl(std::string_view key) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(key.size());
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                c == '~' || c == '/';
    if (keep) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kDigits[u >> 4]);
      out.push_back(kDigits[u & 0xf]);
    }
  }
  return out;
}

}  // namespace drover::queue::blobstore
