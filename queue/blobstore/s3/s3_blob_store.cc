#include "queue/blobstore/s3/s3_blob_store.h"

#include <curl/curl.h>
#include <sodium.h>

#include <cctype>
#include <cstdio>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace drover::queue::blobstore::s3 {
namespace {

// Enough of an S3 error document to quote its <Code> and <Message>.
constexpr size_t kMaxErrorBodyBytes = 8192;

bool IsValidBucket(std::string_view bucket) {
  if (bucket.size() < 3 || bucket.size() > 63) return false;
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  };
  if (!alnum(bucket.front()) || !alnum(bucket.back())) return false;
  for (char c : bucket) {
    if (!alnum(c) && c != '-' && c != '.') return false;
  }
  return bucket.find("..") == std::string_view::npos;
}

bool IsValidRegion(std::string_view region) {
  if (region.empty() || region.size() > 64) return false;
  for (char c : region) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return false;
    }
  }
  return true;
}

// Splits "scheme://host[:port][/]" into scheme and the Host header value
// clients will send (the port only when not the scheme's default).
absl::Status ParseEndpoint(std::string_view endpoint, std::string* scheme,
                           std::string* host) {
  auto bad = [&](std::string_view why) {
    return InputError("endpoint", endpoint, why);
  };
  size_t sep = endpoint.find("://");
  if (sep == std::string_view::npos) {
    return bad("must be http(s)://host[:port]");
  }
  *scheme = std::string(endpoint.substr(0, sep));
  if (*scheme != "http" && *scheme != "https") {
    return bad("scheme must be http or https");
  }
  std::string_view rest = endpoint.substr(sep + 3);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.empty()) return bad("host is missing");
  if (rest.find_first_of("/?#@ ") != std::string_view::npos) {
    return bad("must not carry a path, query or user info");
  }
  std::string_view hostname = rest;
  std::string_view port;
  size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos &&
      rest.find(']', colon) == std::string_view::npos) {
    hostname = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    int number = 0;
    if (!absl::SimpleAtoi(absl::string_view(port.data(), port.size()),
                          &number) ||
        number <= 0 || number > 65535) {
      return bad("port must be 1..65535");
    }
  }
  if (hostname.empty()) return bad("host is missing");
  bool default_port = (*scheme == "http" && port == "80") ||
                      (*scheme == "https" && port == "443");
  *host = std::string(hostname);
  absl::AsciiStrToLower(host);
  if (!port.empty() && !default_port)
    absl::StrAppend(host, ":", std::string(port));
  return absl::OkStatus();
}

std::string Base64(const uint8_t* data, size_t size) {
  std::string out(
      sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size,
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::char_traits<char>::length(out.c_str()));
  return out;
}

// Hex SHA-256 -> the base64 form x-amz-checksum-sha256 carries.
std::string ChecksumHeaderValue(std::string_view hex) {
  Sha256Digest digest{};
  for (size_t i = 0; i < digest.size(); ++i) {
    auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
    digest[i] =
        static_cast<uint8_t>(nibble(hex[2 * i]) << 4 | nibble(hex[2 * i + 1]));
  }
  return Base64(digest.data(), digest.size());
}

// x-amz-checksum-sha256 -> hex, when it is a plain (not multipart) digest.
std::optional<std::string> ChecksumFromHeader(std::string_view value) {
  Sha256Digest digest{};
  size_t length = 0;
  if (sodium_base642bin(digest.data(), digest.size(), value.data(),
                        value.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0 ||
      length != digest.size()) {
    return std::nullopt;
  }
  return HexEncode(digest);
}

// Quotes <Code> and <Message> of an S3 XML error, if any.
std::string S3ErrorSummary(const std::string& body) {
  auto element = [&body](std::string_view name) -> std::string {
    std::string open = "<" + std::string(name) + ">";
    size_t start = body.find(open);
    if (start == std::string::npos) return "";
    start += open.size();
    size_t end = body.find('<', start);
    return body.substr(start, end == std::string::npos ? 0 : end - start);
  };
  std::string code = element("Code");
  std::string message = element("Message");
  if (code.empty()) return "";
  return message.empty() ? code : absl::StrCat(code, ": ", message);
}

struct CurlDeleter {
  void operator()(CURL* curl) const { curl_easy_cleanup(curl); }
};
struct SlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};

// Per-request state shared with the libcurl callbacks.
struct Transfer {
  CURL* handle = nullptr;
  const BlobSink* sink = nullptr;
  const std::function<size_t(char*, size_t)>* read = nullptr;
  std::string* error_body = nullptr;
  absl::Status sink_status;
};

size_t OnResponseBody(char* data, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  size_t bytes = size * count;
  long status = 0;
  curl_easy_getinfo(transfer->handle, CURLINFO_RESPONSE_CODE, &status);
  if (transfer->sink != nullptr && status >= 200 && status < 300) {
    transfer->sink_status = (*transfer->sink)(data, bytes);
    return transfer->sink_status.ok() ? bytes : 0;  // 0 aborts the transfer
  }
  std::string* body = transfer->error_body;
  size_t room = kMaxErrorBodyBytes - std::min(body->size(), kMaxErrorBodyBytes);
  body->append(data, std::min(bytes, room));
  return bytes;
}

size_t OnRequestBody(char* buffer, size_t size, size_t count, void* user) {
  auto* transfer = static_cast<Transfer*>(user);
  return (*transfer->read)(buffer, size * count);
}

size_t CollectHeader(char* data, size_t size, size_t count, void* user) {
  auto* headers = static_cast<std::multimap<std::string, std::string>*>(user);
  std::string_view line(data, size * count);
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    absl::AsciiStrToLower(&name);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n' ||
                              value.back() == ' ')) {
      value.remove_suffix(1);
    }
    headers->emplace(std::move(name), std::string(value));
  } else if (line.starts_with("HTTP/")) {
    headers->clear();  // a new response (after 100 Continue or a redirect)
  }
  return size * count;
}

std::string HeaderOr(const std::multimap<std::string, std::string>& headers,
                     const std::string& name, std::string fallback) {
  auto it = headers.find(name);
  return it == headers.end() ? fallback : it->second;
}

}  // namespace

absl::StatusOr<std::unique_ptr<S3BlobStore>> S3BlobStore::Create(
    S3BlobStoreOptions options, const Clock* clock) {
  std::string scheme;
  std::string host;
  DROVER_RETURN_IF_ERROR(ParseEndpoint(options.endpoint, &scheme, &host));
  if (!IsValidRegion(options.region)) {
    return InputError("region", options.region,
                      "must be an AWS region name such as us-east-1");
  }
  if (!IsValidBucket(options.bucket)) {
    return InputError("bucket", options.bucket,
                      "must be 3-63 characters of [a-z0-9.-], starting and "
                      "ending with a letter or digit");
  }
  if (!options.path_style && options.bucket.find('.') != std::string::npos &&
      scheme == "https") {
    return InputError("bucket", options.bucket,
                      "a bucket with dots needs path_style over https (its "
                      "virtual host would not match the TLS certificate)");
  }
  if (options.credentials.access_key_id.empty()) {
    return InputError("credentials.access_key_id", "", "must not be empty");
  }
  if (options.credentials.secret_access_key.empty()) {
    return InputError("credentials.secret_access_key", "", "must not be empty");
  }
  if (!options.key_prefix.empty()) {
    std::string_view prefix = options.key_prefix;
    if (prefix.back() != '/' ||
        !ValidateBlobKey(prefix.substr(0, prefix.size() - 1)).ok()) {
      return InputError("key_prefix", options.key_prefix,
                        "must be a valid blob key followed by '/'");
    }
  }
  if (options.request_timeout <= absl::ZeroDuration()) {
    return InputError("request_timeout",
                      absl::FormatDuration(options.request_timeout),
                      "must be positive");
  }
  if (sodium_init() < 0) return InternalError("libsodium failed to start");
  return std::unique_ptr<S3BlobStore>(new S3BlobStore(
      std::move(options), clock, std::move(scheme), std::move(host)));
}

S3BlobStore::S3BlobStore(S3BlobStoreOptions options, const Clock* clock,
                         std::string scheme, std::string host)
    : options_(std::move(options)),
      clock_(clock),
      scheme_(std::move(scheme)),
      host_(std::move(host)) {}

absl::StatusOr<S3BlobStore::Target> S3BlobStore::TargetFor(
    std::string_view key) const {
  DROVER_RETURN_IF_ERROR(ValidateBlobKey(key));
  std::string object = options_.key_prefix + std::string(key);
  Target target;
  if (options_.path_style) {
    target.host = host_;
    target.path = absl::StrCat("/", options_.bucket, "/", object);
  } else {
    target.host = absl::StrCat(options_.bucket, ".", host_);
    target.path = absl::StrCat("/", object);
  }
  target.url = absl::StrCat(scheme_, "://", target.host,
                            CanonicalUri(target.path, /*normalize=*/false));
  return target;
}

absl::StatusOr<std::string> S3BlobStore::ObjectUrl(std::string_view key) const {
  DROVER_ASSIGN_OR_RETURN(Target target, TargetFor(key));
  return target.url;
}

absl::StatusOr<PresignedRequest> S3BlobStore::PresignUpload(
    std::string_view key, const UploadOptions& options,
    absl::Duration expires_in) {
  DROVER_ASSIGN_OR_RETURN(Target target, TargetFor(key));
  DROVER_RETURN_IF_ERROR(ValidateUploadOptions(options));
  DROVER_RETURN_IF_ERROR(ValidatePresignExpiry(expires_in));
  PresignedRequest presigned;
  presigned.method = "PUT";
  presigned.headers["Content-Type"] = options.content_type;
  if (!options.content_encoding.empty()) {
    presigned.headers["Content-Encoding"] = options.content_encoding;
  }
  if (options.content_length) {
    presigned.headers["Content-Length"] = absl::StrCat(*options.content_length);
  }
  if (options.sha256) {
    presigned.headers["x-amz-checksum-sha256"] =
        ChecksumHeaderValue(*options.sha256);
  }
  SigV4Request request;
  request.method = "PUT";
  request.path = target.path;
  request.payload_sha256 = std::string(kUnsignedPayload);
  request.headers.emplace_back("host", target.host);
  for (const auto& [name, value] : presigned.headers) {
    request.headers.emplace_back(name, value);
  }
  absl::Time now = clock_->Now();
  SigningScope scope{options_.region, "s3", now};
  presigned.url = absl::StrCat(
      target.url, "?",
      PresignedQueryString(std::move(request), options_.credentials, scope,
                           expires_in));
  presigned.expires = absl::FromUnixSeconds(absl::ToUnixSeconds(now)) +
                      absl::Seconds(absl::ToInt64Seconds(expires_in));
  return presigned;
}

absl::StatusOr<std::string> S3BlobStore::PresignDownload(
    std::string_view key, absl::Duration expires_in) {
  DROVER_ASSIGN_OR_RETURN(Target target, TargetFor(key));
  DROVER_RETURN_IF_ERROR(ValidatePresignExpiry(expires_in));
  SigV4Request request;
  request.method = "GET";
  request.path = target.path;
  request.payload_sha256 = std::string(kUnsignedPayload);
  request.headers.emplace_back("host", target.host);
  SigningScope scope{options_.region, "s3", clock_->Now()};
  return absl::StrCat(
      target.url, "?",
      PresignedQueryString(std::move(request), options_.credentials, scope,
                           expires_in));
}

absl::StatusOr<S3BlobStore::Response> S3BlobStore::Send(
    const Exchange& exchange, const Target& target) const {
  SigningScope scope{options_.region, "s3", clock_->Now()};
  SigV4Request request;
  request.method = exchange.method;
  request.path = target.path;
  request.payload_sha256 = exchange.payload_sha256;
  request.headers = {
      {"host", target.host},
      {"x-amz-content-sha256", exchange.payload_sha256},
      {"x-amz-date", AmzDate(scope.time)},
  };
  request.headers.insert(request.headers.end(), exchange.headers.begin(),
                         exchange.headers.end());
  if (!options_.credentials.session_token.empty()) {
    request.headers.emplace_back("x-amz-security-token",
                                 options_.credentials.session_token);
  }
  std::string authorization =
      AuthorizationHeader(request, options_.credentials, scope);

  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) return InternalError("libcurl could not create a handle");
  std::unique_ptr<curl_slist, SlistDeleter> headers;
  auto add_header = [&headers](const std::string& line) {
    headers.reset(curl_slist_append(headers.release(), line.c_str()));
  };
  for (const auto& [name, value] : request.headers) {
    if (name != "host") add_header(absl::StrCat(name, ": ", value));
  }
  add_header(absl::StrCat("Authorization: ", authorization));

  Response response;
  CURL* handle = curl.get();
  Transfer transfer;
  transfer.handle = handle;
  transfer.sink = exchange.sink;
  transfer.read = &exchange.read;
  transfer.error_body = &response.body;
  long timeout_ms =
      static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout));
  curl_easy_setopt(handle, CURLOPT_URL, target.url.c_str());
  curl_easy_setopt(handle, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(handle, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(handle, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
  if (exchange.body_size || exchange.sink != nullptr) {
    // Bodies may take any time; only a stalled transfer is a failure.
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(handle, CURLOPT_LOW_SPEED_TIME,
                     std::max<long>(1, timeout_ms / 1000));
  } else {
    curl_easy_setopt(handle, CURLOPT_TIMEOUT_MS, timeout_ms);
  }
  curl_easy_setopt(handle, CURLOPT_HEADERFUNCTION, CollectHeader);
  curl_easy_setopt(handle, CURLOPT_HEADERDATA, &response.headers);
  curl_easy_setopt(handle, CURLOPT_WRITEFUNCTION, OnResponseBody);
  curl_easy_setopt(handle, CURLOPT_WRITEDATA, &transfer);
  if (exchange.method == "HEAD") {
    curl_easy_setopt(handle, CURLOPT_NOBODY, 1L);
  } else if (exchange.body_size) {
    curl_easy_setopt(handle, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(handle, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(*exchange.body_size));
    curl_easy_setopt(handle, CURLOPT_READFUNCTION, OnRequestBody);
    curl_easy_setopt(handle, CURLOPT_READDATA, &transfer);
    if (exchange.method != "PUT") {
      curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, exchange.method.c_str());
    }
  } else if (exchange.method != "GET") {
    curl_easy_setopt(handle, CURLOPT_CUSTOMREQUEST, exchange.method.c_str());
  }
  CURLcode rc = curl_easy_perform(handle);
  if (!transfer.sink_status.ok()) return transfer.sink_status;
  if (rc != CURLE_OK) {
    return MakeError(ErrorCode::kInternalError,
                     absl::StrCat("S3 ", exchange.method, " ", target.url,
                                  " failed: ", curl_easy_strerror(rc)),
                     {{"endpoint", options_.endpoint}});
  }
  curl_easy_getinfo(handle, CURLINFO_RESPONSE_CODE, &response.status);
  return response;
}

absl::Status S3BlobStore::UnexpectedStatus(std::string_view method,
                                           const Target& target,
                                           std::string_view key,
                                           const Response& response) const {
  std::string summary = S3ErrorSummary(response.body);
  return MakeError(
      ErrorCode::kInternalError,
      absl::StrCat("S3 ", std::string(method), " ", target.url, " answered ",
                   response.status, summary.empty() ? "" : ": ", summary),
      {{"key", std::string(key)}, {"status", absl::StrCat(response.status)}});
}

absl::StatusOr<BlobInfo> S3BlobStore::Stat(std::string_view key) {
  DROVER_ASSIGN_OR_RETURN(Target target, TargetFor(key));
  Exchange exchange;
  exchange.method = "HEAD";
  exchange.headers = {{"x-amz-checksum-mode", "ENABLED"}};
  DROVER_ASSIGN_OR_RETURN(Response response, Send(exchange, target));
  if (response.status == 404) return NotFoundError("blob", key);
  if (response.status != 200) {
    return UnexpectedStatus("HEAD", target, key, response);
  }
  BlobInfo info;
  std::string length = HeaderOr(response.headers, "content-length", "");
  if (!absl::SimpleAtoi(absl::string_view(length.data(), length.size()),
                        &info.size)) {
    return MakeError(ErrorCode::kInternalError,
                     "S3 HEAD answered without a valid Content-Length",
                     {{"key", std::string(key)}, {"content-length", length}});
  }
  info.content_type =
      HeaderOr(response.headers, "content-type", "application/octet-stream");
  info.content_encoding = HeaderOr(response.headers, "content-encoding", "");
  std::string checksum =
      HeaderOr(response.headers, "x-amz-checksum-sha256", "");
  if (!checksum.empty()) info.sha256 = ChecksumFromHeader(checksum);
  return info;
}

absl::Status S3BlobStore::Delete(std::string_view key) {
  DROVER_ASSIGN_OR_RETURN(Target target, TargetFor(key));
  Exchange exchange;
  exchange.method = "DELETE";
  DROVER_ASSIGN_OR_RETURN(Response response, Send(exchange, target));
  // S3 answers 204 whether or not the object existed; some compatible
  // servers say 404 for a missing one, which is just as deleted.
  if (response.status == 200 || response.status == 204 ||
      response.status == 404) {
    return absl::OkStatus();
  }
  return UnexpectedStatus("DELETE", target, key, response);
}

absl::StatusOr<BlobInfo> S3BlobStore::Put(std::string_view key,
                                          const UploadOptions& options,
                                          const BlobSource& source) {
  DROVER_ASSIGN_OR_RETURN(Target target, TargetFor(key));
  DROVER_RETURN_IF_ERROR(ValidateUploadOptions(options));
  Exchange exchange;
  exchange.method = "PUT";
  exchange.headers = {{"content-type", options.content_type}};
  if (!options.content_encoding.empty()) {
    exchange.headers.emplace_back("content-encoding", options.content_encoding);
  }
  if (options.sha256) {
    exchange.headers.emplace_back("x-amz-checksum-sha256",
                                  ChecksumHeaderValue(*options.sha256));
  }

  // Spooled first, to an unnamed file that vanishes on close: S3 needs the
  // length up front, and with the bytes in hand every promise is checked
  // and the payload signed with its SHA-256 (which S3 verifies) before
  // anything is sent, so a broken source never leaves a partial object.
  std::unique_ptr<FILE, int (*)(FILE*)> spool(std::tmpfile(), std::fclose);
  if (!spool) return InternalError("cannot create a spool file for S3 Put");
  Sha256 hasher;
  uint64_t size = 0;
  std::vector<char> buffer(1 << 20);
  for (;;) {
    DROVER_ASSIGN_OR_RETURN(size_t n, source(buffer.data(), buffer.size()));
    if (n == 0) break;
    if (n > buffer.size()) {
      return InternalError("blob source returned more bytes than asked for");
    }
    size += n;
    if (options.content_length && size > *options.content_length) {
      return MakeError(
          ErrorCode::kInputTooLarge,
          absl::StrCat("blob is longer than its content_length of ",
                       *options.content_length),
          {{"field", "content_length"},
           {"value", absl::StrCat(*options.content_length)}});
    }
    if (std::fwrite(buffer.data(), 1, n, spool.get()) != n) {
      return InternalError("cannot write the spool file for S3 Put");
    }
    hasher.Update(buffer.data(), n);
  }
  if (std::fflush(spool.get()) != 0) {
    return InternalError("cannot write the spool file for S3 Put");
  }
  std::rewind(spool.get());
  if (options.content_length && size != *options.content_length) {
    return InputError("content_length", absl::StrCat(size),
                      absl::StrCat("blob has ", size, " bytes, not ",
                                   *options.content_length));
  }
  std::string sha = HexEncode(hasher.Finish());
  if (options.sha256 && sha != *options.sha256) {
    return InputError(
        "sha256", sha,
        absl::StrCat("bytes hash to ", sha, ", not ", *options.sha256));
  }

  exchange.body_size = size;
  exchange.payload_sha256 = sha;
  FILE* file = spool.get();
  exchange.read = [file](char* out, size_t room) -> size_t {
    size_t n = std::fread(out, 1, room, file);
    return n == 0 && std::ferror(file) ? CURL_READFUNC_ABORT : n;
  };
  DROVER_ASSIGN_OR_RETURN(Response response, Send(exchange, target));
  if (response.status != 200) {
    return UnexpectedStatus("PUT", target, key, response);
  }
  BlobInfo info;
  info.size = size;
  info.sha256 = sha;
  info.content_type = options.content_type;
  info.content_encoding = options.content_encoding;
  return info;
}

absl::Status S3BlobStore::Get(std::string_view key, const BlobSink& sink) {
  DROVER_ASSIGN_OR_RETURN(Target target, TargetFor(key));
  Exchange exchange;
  exchange.method = "GET";
  exchange.sink = &sink;
  DROVER_ASSIGN_OR_RETURN(Response response, Send(exchange, target));
  if (response.status == 404) return NotFoundError("blob", key);
  if (response.status != 200) {
    return UnexpectedStatus("GET", target, key, response);
  }
  return absl::OkStatus();
}

}  // namespace drover::queue::blobstore::s3
