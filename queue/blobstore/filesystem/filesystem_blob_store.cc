#include "queue/blobstore/filesystem/filesystem_blob_store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace drover::queue::blobstore::filesystem {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kDefaultContentType = "application/octet-stream";
// Bytes gathered before each write(2): large enough that syscalls vanish
// from the profile, small enough to be irrelevant per upload.
constexpr size_t kWriteBufferBytes = 1 << 20;
constexpr size_t kHashReadBytes = 1 << 20;
// A concurrent Delete may remove an empty parent directory between our
// mkdir and rename; a few retries settle that race.
constexpr int kPublishAttempts = 5;
// Domain separation: the server key signs other things too (tokens,
// certificates); URLs get their own derived key.
constexpr std::string_view kUrlKeyContext =
    "drover/queue/blobstore/filesystem/url-signing/v1";
constexpr std::string_view kSignatureVersion = "drover-blob-url-v1";
constexpr size_t kMinSigningKeyBytes = 32;

absl::Status ErrnoError(std::string_view what, const fs::path& path, int err) {
  return MakeError(ErrorCode::kInternalError,
                   absl::StrCat(std::string(what), " ", path.string(), ": ",
                                std::strerror(err)),
                   {{"path", path.string()}});
}

// Percent-encodes a query value: only RFC 3986 unreserved characters stay.
std::string EncodeQueryValue(std::string_view value) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
        c == '~') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kDigits[u >> 4]);
      out.push_back(kDigits[u & 0xf]);
    }
  }
  return out;
}

// Length-prefixed fields: no choice of values can make two different
// field lists produce the same signed message.
void AppendField(std::string& message, std::string_view field) {
  absl::StrAppend(&message, field.size(), ":", std::string(field), "\n");
}

bool WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

absl::Status SyncDirectory(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open directory", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError("fsync directory", dir, err);
  return absl::OkStatus();
}

// The identity of a data file, recorded in its metadata so stale metadata
// (left by a crash or a concurrent writer) is never believed.
struct FileIdentity {
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;

  static FileIdentity Of(const struct stat& st) {
    return FileIdentity{static_cast<uint64_t>(st.st_ino),
                        static_cast<uint64_t>(st.st_size),
                        static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 +
                            st.st_mtim.tv_nsec};
  }
  bool operator==(const FileIdentity&) const = default;
};

std::string MetadataJson(const BlobInfo& info, const FileIdentity& id) {
  nlohmann::json meta = {
      {"size", info.size},
      {"sha256", info.sha256.value_or("")},
      {"content_type", info.content_type},
      {"content_encoding", info.content_encoding},
      {"inode", id.inode},
      {"mtime_ns", id.mtime_ns},
  };
  return meta.dump();
}

// Fills `info` from the metadata file when it describes exactly the data
// file `id`; otherwise leaves the defaults (no digest).
void LoadMetadata(const fs::path& meta_path, const FileIdentity& id,
                  BlobInfo* info) {
  info->size = id.size;
  info->content_type = std::string(kDefaultContentType);
  std::ifstream in(meta_path, std::ios::binary);
  if (!in) return;
  nlohmann::json meta = nlohmann::json::parse(in, nullptr, false);
  if (meta.is_discarded() || !meta.is_object()) return;
  try {
    if (meta.value("inode", uint64_t{0}) != id.inode ||
        meta.value("size", uint64_t{0}) != id.size ||
        meta.value("mtime_ns", int64_t{0}) != id.mtime_ns) {
      return;
    }
    std::string sha = meta.value("sha256", "");
    if (IsSha256Hex(sha)) info->sha256 = sha;
    std::string type = meta.value("content_type", "");
    if (!type.empty()) info->content_type = type;
    info->content_encoding = meta.value("content_encoding", "");
  } catch (const nlohmann::json::exception&) {
    // A metadata file of the wrong shape is as good as none.
  }
}

// mkdir -p of `path`'s parent, mapping "a blob is in the way" to a
// conflict.
absl::Status MakeParents(const fs::path& path, std::string_view key) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  if (!ec) return absl::OkStatus();
  if (ec == std::errc::not_a_directory || ec == std::errc::file_exists) {
    return ConflictError("another blob's key is a prefix of this key",
                         {{"key", std::string(key)}});
  }
  return MakeError(
      ErrorCode::kInternalError,
      absl::StrCat("create directory ", path.parent_path().string(), ": ",
                   ec.message()),
      {{"path", path.parent_path().string()}});
}

// rename(2) into place, creating parents and retrying the race with a
// concurrent Delete pruning them.
absl::Status Publish(const fs::path& from, const fs::path& to,
                     std::string_view key) {
  for (int attempt = 0;; ++attempt) {
    DROVER_RETURN_IF_ERROR(MakeParents(to, key));
    if (::rename(from.c_str(), to.c_str()) == 0) return absl::OkStatus();
    int err = errno;
    if (err == ENOENT && attempt + 1 < kPublishAttempts) continue;
    if (err == EISDIR || err == ENOTDIR || err == ENOTEMPTY || err == EEXIST) {
      return ConflictError("this key is a prefix of other blobs' keys",
                           {{"key", std::string(key)}});
    }
    return ErrnoError("rename into", to, err);
  }
}

// Removes now-empty directories from `dir` up to (not including) `stop`.
void PruneEmptyParents(fs::path dir, const fs::path& stop) {
  while (dir != stop && dir.string().size() > stop.string().size()) {
    if (::rmdir(dir.c_str()) != 0) return;  // not empty, or already gone
    dir = dir.parent_path();
  }
}

class FileBlobReader final : public BlobReader {
 public:
  FileBlobReader(int fd, BlobInfo info) : fd_(fd), info_(std::move(info)) {}
  ~FileBlobReader() override { ::close(fd_); }

  const BlobInfo& info() const override { return info_; }

  absl::StatusOr<size_t> ReadAt(uint64_t offset, char* buffer,
                                size_t size) const override {
    for (;;) {
      ssize_t n = ::pread(fd_, buffer, size, static_cast<off_t>(offset));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno != EINTR) {
        return MakeError(ErrorCode::kInternalError,
                         absl::StrCat("read blob: ", std::strerror(errno)));
      }
    }
  }

  int fd() const { return fd_; }

 private:
  int fd_;
  BlobInfo info_;
};

struct Layout {
  fs::path data_root;
  fs::path meta_root;
  fs::path tmp_root;
};

Layout LayoutOf(const fs::path& root) {
  return Layout{root / "data", root / "meta", root / "tmp"};
}

// Opens data/<key> and describes it. Errors: ResourceNotFound,
// InternalError.
absl::StatusOr<std::unique_ptr<FileBlobReader>> OpenBlob(const Layout& layout,
                                                         std::string_view key) {
  fs::path data_path = layout.data_root / std::string(key);
  int fd = ::open(data_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR || err == ELOOP) {
      return NotFoundError("blob", key);
    }
    return ErrnoError("open", data_path, err);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoError("stat", data_path, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return NotFoundError("blob", key);
  }
  BlobInfo info;
  LoadMetadata(layout.meta_root / std::string(key), FileIdentity::Of(st),
               &info);
  return std::make_unique<FileBlobReader>(fd, std::move(info));
}

class FileBlobWriter final : public BlobWriter {
 public:
  FileBlobWriter(Layout layout, std::string key, UploadOptions options,
                 bool sync, int fd, fs::path tmp_path)
      : layout_(std::move(layout)),
        key_(std::move(key)),
        options_(std::move(options)),
        sync_(sync),
        fd_(fd),
        tmp_path_(std::move(tmp_path)) {
    buffer_.reserve(kWriteBufferBytes);
  }

  ~FileBlobWriter() override { Discard(); }

  absl::Status Write(const char* data, size_t size) override {
    if (spent_) return InternalError("write after the upload ended");
    if (options_.content_length && bytes_ + size > *options_.content_length) {
      return MakeError(
          ErrorCode::kInputTooLarge,
          absl::StrCat("upload is longer than the signed length of ",
                       *options_.content_length, " bytes"),
          {{"field", "content_length"},
           {"value", absl::StrCat(*options_.content_length)}});
    }
    hasher_.Update(data, size);
    bytes_ += size;
    if (buffer_.size() + size > kWriteBufferBytes) {
      DROVER_RETURN_IF_ERROR(Flush());
    }
    if (size >= kWriteBufferBytes) {
      if (!WriteAll(fd_, data, size)) {
        return ErrnoError("write", tmp_path_, errno);
      }
      return absl::OkStatus();
    }
    buffer_.insert(buffer_.end(), data, data + size);
    return absl::OkStatus();
  }

  absl::StatusOr<BlobInfo> Commit() override {
    if (spent_) return InternalError("commit after the upload ended");
    absl::StatusOr<BlobInfo> result = CommitOnce();
    Discard();
    return result;
  }

  uint64_t bytes_written() const override { return bytes_; }

 private:
  absl::Status Flush() {
    if (buffer_.empty()) return absl::OkStatus();
    if (!WriteAll(fd_, buffer_.data(), buffer_.size())) {
      return ErrnoError("write", tmp_path_, errno);
    }
    buffer_.clear();
    return absl::OkStatus();
  }

  absl::StatusOr<BlobInfo> CommitOnce() {
    DROVER_RETURN_IF_ERROR(Flush());
    spent_ = true;
    if (options_.content_length && bytes_ != *options_.content_length) {
      return InputError("content_length", absl::StrCat(bytes_),
                        absl::StrCat("upload has ", bytes_,
                                     " bytes but the signed URL is for ",
                                     *options_.content_length));
    }
    std::string sha = HexEncode(hasher_.Finish());
    if (options_.sha256 && sha != *options_.sha256) {
      return InputError(
          "sha256", sha,
          absl::StrCat("uploaded bytes hash to ", sha,
                       " but the signed URL is for ", *options_.sha256));
    }
    if (sync_ && ::fsync(fd_) != 0) {
      return ErrnoError("fsync", tmp_path_, errno);
    }
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return ErrnoError("stat", tmp_path_, errno);
    ::close(fd_);
    fd_ = -1;

    BlobInfo info;
    info.size = bytes_;
    info.sha256 = sha;
    info.content_type = options_.content_type.empty()
                            ? std::string(kDefaultContentType)
                            : options_.content_type;
    info.content_encoding = options_.content_encoding;

    fs::path data_path = layout_.data_root / key_;
    DROVER_RETURN_IF_ERROR(Publish(tmp_path_, data_path, key_));
    tmp_path_.clear();
    if (sync_) DROVER_RETURN_IF_ERROR(SyncDirectory(data_path.parent_path()));

    // The blob is complete and visible from here on. Metadata only caches
    // what can be recomputed, so failing to write it is not the upload's
    // failure.
    if (absl::Status meta = WriteMetadata(info, FileIdentity::Of(st));
        !meta.ok()) {
      spdlog::warn("blobstore: metadata for {} not written: {}", key_,
                   meta.ToString());
    }
    return info;
  }

  absl::Status WriteMetadata(const BlobInfo& info, const FileIdentity& id) {
    fs::path tmp = layout_.tmp_root / "meta-XXXXXX";
    std::string tmpl = tmp.string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) return ErrnoError("create", tmp, errno);
    std::string json = MetadataJson(info, id);
    bool ok =
        WriteAll(fd, json.data(), json.size()) && (!sync_ || ::fsync(fd) == 0);
    int err = errno;
    ::close(fd);
    if (!ok) {
      ::unlink(tmpl.c_str());
      return ErrnoError("write", tmpl, err);
    }
    absl::Status published = Publish(tmpl, layout_.meta_root / key_, key_);
    if (!published.ok()) ::unlink(tmpl.c_str());
    return published;
  }

  void Discard() {
    spent_ = true;
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!tmp_path_.empty()) {
      ::unlink(tmp_path_.c_str());
      tmp_path_.clear();
    }
  }

  Layout layout_;
  std::string key_;
  UploadOptions options_;
  bool sync_;
  int fd_;
  fs::path tmp_path_;
  std::vector<char> buffer_;
  Sha256 hasher_;
  uint64_t bytes_ = 0;
  bool spent_ = false;
};

bool IsValidUrlPrefix(std::string_view prefix) {
  if (prefix.size() < 2 || prefix.front() != '/' || prefix.back() == '/') {
    return false;
  }
  char previous = '/';
  for (char c : prefix.substr(1)) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || (c == '/' && previous != '/');
    if (!ok) return false;
    previous = c;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<FilesystemBlobStore>>
FilesystemBlobStore::Create(FilesystemBlobStoreOptions options,
                            const Clock* clock) {
  if (options.root.empty()) {
    return InputError("root", "", "a blob directory is required");
  }
  if (!(options.base_url.starts_with("http://") ||
        options.base_url.starts_with("https://")) ||
      options.base_url.ends_with("/")) {
    return InputError("base_url", options.base_url,
                      "must be http(s)://host[:port] without a trailing '/'");
  }
  if (!IsValidUrlPrefix(options.url_prefix)) {
    return InputError("url_prefix", options.url_prefix,
                      "must be '/' followed by [a-z0-9_-] segments");
  }
  if (options.signing_key.size() < kMinSigningKeyBytes ||
      options.signing_key.size() > crypto_generichash_KEYBYTES_MAX) {
    return InputError("signing_key",
                      absl::StrCat(options.signing_key.size(), " bytes"),
                      "must be 32 to 64 bytes");
  }
  if (sodium_init() < 0) return InternalError("libsodium failed to start");

  Layout layout = LayoutOf(options.root);
  for (const fs::path& dir :
       {layout.data_root, layout.meta_root, layout.tmp_root}) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return MakeError(ErrorCode::kInternalError,
                       absl::StrCat("create blob directory ", dir.string(),
                                    ": ", ec.message()),
                       {{"path", dir.string()}});
    }
  }

  std::array<uint8_t, 32> url_key{};
  crypto_generichash(
      url_key.data(), url_key.size(),
      reinterpret_cast<const unsigned char*>(kUrlKeyContext.data()),
      kUrlKeyContext.size(),
      reinterpret_cast<const unsigned char*>(options.signing_key.data()),
      options.signing_key.size());
  return std::unique_ptr<FilesystemBlobStore>(
      new FilesystemBlobStore(std::move(options), clock, url_key));
}

FilesystemBlobStore::FilesystemBlobStore(FilesystemBlobStoreOptions options,
                                         const Clock* clock,
                                         std::array<uint8_t, 32> url_key)
    : options_(std::move(options)), clock_(clock), url_key_(url_key) {
  static_assert(crypto_auth_KEYBYTES == 32);
  static_assert(crypto_auth_BYTES == 32);
}

std::string FilesystemBlobStore::Sign(std::string_view method,
                                      std::string_view key,
                                      const SignedUrlParams& params) const {
  std::string message;
  AppendField(message, kSignatureVersion);
  AppendField(message, method);
  AppendField(message, key);
  AppendField(message, params.expires);
  AppendField(message, params.content_type);
  AppendField(message, params.content_encoding);
  AppendField(message, params.length);
  AppendField(message, params.sha256);
  std::array<unsigned char, crypto_auth_BYTES> mac{};
  crypto_auth(mac.data(),
              reinterpret_cast<const unsigned char*>(message.data()),
              message.size(), url_key_.data());
  std::string encoded(sodium_base64_ENCODED_LEN(
                          mac.size(), sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                      '\0');
  sodium_bin2base64(encoded.data(), encoded.size(), mac.data(), mac.size(),
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  encoded.resize(std::strlen(encoded.c_str()));
  return encoded;
}

std::string FilesystemBlobStore::SignedUrl(std::string_view method,
                                           std::string_view key,
                                           SignedUrlParams params) const {
  params.signature = Sign(method, key, params);
  std::string url =
      absl::StrCat(options_.base_url, options_.url_prefix, "/",
                   EncodeKeyForUrl(key), "?expires=", params.expires);
  auto add = [&url](std::string_view name, std::string_view value) {
    if (!value.empty()) {
      absl::StrAppend(&url, "&", std::string(name), "=",
                      EncodeQueryValue(value));
    }
  };
  add("ct", params.content_type);
  add("ce", params.content_encoding);
  add("len", params.length);
  add("sha256", params.sha256);
  add("sig", params.signature);
  return url;
}

absl::StatusOr<PresignedRequest> FilesystemBlobStore::PresignUpload(
    std::string_view key, const UploadOptions& options,
    absl::Duration expires_in) {
  DROVER_RETURN_IF_ERROR(ValidateBlobKey(key));
  DROVER_RETURN_IF_ERROR(ValidateUploadOptions(options));
  DROVER_RETURN_IF_ERROR(ValidatePresignExpiry(expires_in));
  absl::Time expires = clock_->Now() + expires_in;
  SignedUrlParams params;
  params.expires = absl::StrCat(absl::ToUnixSeconds(expires));
  params.content_type = options.content_type;
  params.content_encoding = options.content_encoding;
  if (options.content_length) {
    params.length = absl::StrCat(*options.content_length);
  }
  params.sha256 = options.sha256.value_or("");
  PresignedRequest request;
  request.method = "PUT";
  request.url = SignedUrl("PUT", key, std::move(params));
  // Content-Encoding is deliberately not a header here: the listener would
  // decode a gzip body before storing it. The encoding rides in the URL.
  request.headers = {{"Content-Type", options.content_type}};
  request.expires = absl::FromUnixSeconds(absl::ToUnixSeconds(expires));
  return request;
}

absl::StatusOr<std::string> FilesystemBlobStore::PresignDownload(
    std::string_view key, absl::Duration expires_in) {
  DROVER_RETURN_IF_ERROR(ValidateBlobKey(key));
  DROVER_RETURN_IF_ERROR(ValidatePresignExpiry(expires_in));
  SignedUrlParams params;
  params.expires =
      absl::StrCat(absl::ToUnixSeconds(clock_->Now() + expires_in));
  return SignedUrl("GET", key, std::move(params));
}

absl::Status FilesystemBlobStore::VerifySignedRequest(
    std::string_view method, std::string_view key,
    const SignedUrlParams& params) const {
  if (params.signature.empty()) {
    return MakeError(ErrorCode::kAuthenticationFailed,
                     "the URL carries no signature", {{"field", "sig"}});
  }
  if (params.expires.empty()) {
    return MakeError(ErrorCode::kAuthenticationFailed,
                     "the URL carries no expiry", {{"field", "expires"}});
  }
  std::array<unsigned char, crypto_auth_BYTES> mac{};
  size_t mac_len = 0;
  if (sodium_base642bin(mac.data(), mac.size(), params.signature.data(),
                        params.signature.size(), nullptr, &mac_len, nullptr,
                        sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
      mac_len != mac.size()) {
    return MakeError(
        ErrorCode::kAuthenticationFailed, "the URL signature is malformed",
        {{"field", "sig"}, {"value", PrintableForError(params.signature)}});
  }
  std::string message;
  AppendField(message, kSignatureVersion);
  AppendField(message, method);
  AppendField(message, key);
  AppendField(message, params.expires);
  AppendField(message, params.content_type);
  AppendField(message, params.content_encoding);
  AppendField(message, params.length);
  AppendField(message, params.sha256);
  if (crypto_auth_verify(mac.data(),
                         reinterpret_cast<const unsigned char*>(message.data()),
                         message.size(), url_key_.data()) != 0) {
    return MakeError(ErrorCode::kAuthenticationFailed,
                     "the URL signature does not match: the URL was altered "
                     "or signed for another request",
                     {{"field", "sig"},
                      {"method", PrintableForError(method)},
                      {"key", PrintableForError(key)}});
  }
  int64_t expires = 0;
  if (!absl::SimpleAtoi(
          absl::string_view(params.expires.data(), params.expires.size()),
          &expires)) {
    // Only the server signs, so this means a bug, not an attack.
    return MakeError(
        ErrorCode::kAuthenticationFailed, "the URL expiry is not a number",
        {{"field", "expires"}, {"value", PrintableForError(params.expires)}});
  }
  absl::Time now = clock_->Now();
  if (now > absl::FromUnixSeconds(expires)) {
    return MakeError(ErrorCode::kResourceExpired, "the signed URL has expired",
                     {{"field", "expires"},
                      {"value", absl::FormatTime(absl::RFC3339_sec,
                                                 absl::FromUnixSeconds(expires),
                                                 absl::UTCTimeZone())},
                      {"now", absl::FormatTime(absl::RFC3339_sec, now,
                                               absl::UTCTimeZone())}});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<BlobWriter>> FilesystemBlobStore::OpenForWrite(
    std::string_view key, const UploadOptions& options) {
  DROVER_RETURN_IF_ERROR(ValidateBlobKey(key));
  DROVER_RETURN_IF_ERROR(ValidateUploadOptions(options));
  Layout layout = LayoutOf(options_.root);
  std::string tmpl = (layout.tmp_root / "upload-XXXXXX").string();
  int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
  if (fd < 0) return ErrnoError("create", tmpl, errno);
  // mkstemp makes 0600 files; blobs are meant to be readable by operators.
  ::fchmod(fd, 0644);
  return std::make_unique<FileBlobWriter>(std::move(layout), std::string(key),
                                          options, options_.sync_writes, fd,
                                          fs::path(tmpl));
}

absl::StatusOr<std::unique_ptr<BlobReader>> FilesystemBlobStore::OpenForRead(
    std::string_view key) const {
  DROVER_RETURN_IF_ERROR(ValidateBlobKey(key));
  DROVER_ASSIGN_OR_RETURN(auto reader, OpenBlob(LayoutOf(options_.root), key));
  return std::unique_ptr<BlobReader>(std::move(reader));
}

absl::StatusOr<BlobInfo> FilesystemBlobStore::Stat(std::string_view key) {
  DROVER_RETURN_IF_ERROR(ValidateBlobKey(key));
  DROVER_ASSIGN_OR_RETURN(auto reader, OpenBlob(LayoutOf(options_.root), key));
  BlobInfo info = reader->info();
  if (info.sha256) return info;
  // No trustworthy metadata (a crash between rename and metadata write):
  // the bytes are the truth, so hash them.
  Sha256 hasher;
  std::vector<char> buffer(kHashReadBytes);
  uint64_t offset = 0;
  for (;;) {
    DROVER_ASSIGN_OR_RETURN(
        size_t n, reader->ReadAt(offset, buffer.data(), buffer.size()));
    if (n == 0) break;
    hasher.Update(buffer.data(), n);
    offset += n;
  }
  info.size = offset;
  info.sha256 = HexEncode(hasher.Finish());
  return info;
}

absl::StatusOr<BlobInfo> FilesystemBlobStore::Put(std::string_view key,
                                                  const UploadOptions& options,
                                                  const BlobSource& source) {
  DROVER_ASSIGN_OR_RETURN(auto writer, OpenForWrite(key, options));
  std::vector<char> buffer(kWriteBufferBytes);
  for (;;) {
    DROVER_ASSIGN_OR_RETURN(size_t n, source(buffer.data(), buffer.size()));
    if (n == 0) break;
    if (n > buffer.size()) {
      return InternalError("blob source returned more bytes than asked for");
    }
    DROVER_RETURN_IF_ERROR(writer->Write(buffer.data(), n));
  }
  return writer->Commit();
}

absl::Status FilesystemBlobStore::Get(std::string_view key,
                                      const BlobSink& sink) {
  DROVER_ASSIGN_OR_RETURN(auto reader, OpenForRead(key));
  uint64_t size = reader->info().size;
  std::vector<char> buffer(std::min<uint64_t>(size, kHashReadBytes));
  for (uint64_t offset = 0; offset < size;) {
    DROVER_ASSIGN_OR_RETURN(
        size_t n, reader->ReadAt(offset, buffer.data(), buffer.size()));
    if (n == 0) {
      return MakeError(ErrorCode::kInternalError,
                       "blob file is shorter than when it was opened",
                       {{"key", std::string(key)}});
    }
    DROVER_RETURN_IF_ERROR(sink(buffer.data(), n));
    offset += n;
  }
  return absl::OkStatus();
}

absl::Status FilesystemBlobStore::Delete(std::string_view key) {
  DROVER_RETURN_IF_ERROR(ValidateBlobKey(key));
  Layout layout = LayoutOf(options_.root);
  for (const fs::path& tree : {layout.data_root, layout.meta_root}) {
    fs::path path = tree / std::string(key);
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      continue;  // a prefix of other keys, not a blob
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
      return ErrnoError("delete", path, errno);
    }
    PruneEmptyParents(path.parent_path(), tree);
  }
  return absl::OkStatus();
}

}  // namespace drover::queue::blobstore::filesystem
