#include "client/artifacts_client.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/grpc_status.h"
#include "common/status.h"
#include "grpcpp/client_context.h"
#include "nlohmann/json.hpp"

namespace drover::client {
namespace {

void EnsureCurl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// The URL without its query, which carries the signature.
std::string RedactUrl(const std::string& url) {
  return url.substr(0, url.find('?'));
}

// Errors the next attempt may not see.
bool RetryableCurl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

bool RetryableHttp(long status) {
  return status == 408 || status == 429 || status >= 500;
}

// The blob stores answer {"code", "message", "details"}; S3 answers XML.
absl::Status HttpError(long status, const std::string& body,
                       const std::string& url) {
  nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_object() && json.contains("code") && json["code"].is_string()) {
    ErrorDetails details;
    if (json.contains("details") && json["details"].is_object()) {
      for (const auto& [k, v] : json["details"].items()) {
        details[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
    }
    details["url"] = RedactUrl(url);
    details["http_status"] = std::to_string(status);
    std::optional<ErrorCode> code =
        ErrorCodeFromName(json["code"].get<std::string>());
    return MakeError(code.value_or(ErrorCode::kInternalError),
                     json.value("message", "HTTP " + std::to_string(status)),
                     details);
  }
  ErrorDetails details = {{"url", RedactUrl(url)},
                          {"http_status", std::to_string(status)}};
  std::string snippet = body.substr(0, 300);
  if (status == 404) {
    return MakeError(ErrorCode::kResourceNotFound,
                     "nothing at " + RedactUrl(url) + " (HTTP 404)", details);
  }
  if (status == 403 && snippet.find("expired") != std::string::npos) {
    return MakeError(ErrorCode::kResourceExpired, "the signed URL has expired",
                     details);
  }
  if (status == 401 || status == 403) {
    return MakeError(ErrorCode::kAuthenticationFailed,
                     absl::StrCat("HTTP ", status, ": ", snippet), details);
  }
  if (status >= 400 && status < 500) {
    return MakeError(ErrorCode::kInputError,
                     absl::StrCat("HTTP ", status, ": ", snippet), details);
  }
  return absl::UnavailableError(
      absl::StrCat("HTTP ", status, " from ", RedactUrl(url), ": ", snippet));
}

absl::Duration Backoff(const TransferOptions& options, int attempt) {
  absl::Duration d = options.initial_backoff;
  for (int i = 1; i < attempt && d < options.max_backoff; ++i) d *= 2;
  return std::min(d, options.max_backoff);
}

struct CurlHandle {
  CURL* curl = nullptr;
  curl_slist* headers = nullptr;
  CurlHandle() {
    EnsureCurl();
    curl = curl_easy_init();
  }
  ~CurlHandle() {
    if (headers != nullptr) curl_slist_free_all(headers);
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
  void AddHeader(const std::string& line) {
    headers = curl_slist_append(headers, line.c_str());
  }
};

void CommonOptions(CurlHandle& h, const std::string& url,
                   const TransferOptions& options) {
  curl_easy_setopt(h.curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(
      h.curl, CURLOPT_CONNECTTIMEOUT_MS,
      static_cast<long>(absl::ToInt64Milliseconds(options.connect_timeout)));
  curl_easy_setopt(h.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(
      h.curl, CURLOPT_LOW_SPEED_TIME,
      static_cast<long>(absl::ToInt64Seconds(options.stall_timeout)));
  if (!options.ca_file.empty()) {
    curl_easy_setopt(h.curl, CURLOPT_CAINFO, options.ca_file.c_str());
  }
}

// Collects up to 64 KiB of a response body (error bodies are small).
size_t CollectBody(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  size_t bytes = size * n;
  if (body->size() < 65536) {
    body->append(data, std::min(bytes, 65536 - body->size()));
  }
  return bytes;
}

struct UploadState {
  std::FILE* file = nullptr;
  int64_t sent = 0;
  int64_t total = 0;
  const ProgressCallback* progress = nullptr;
  bool read_error = false;
};

size_t ReadFileChunk(char* buffer, size_t size, size_t n, void* user) {
  auto* state = static_cast<UploadState*>(user);
  size_t got = std::fread(buffer, 1, size * n, state->file);
  if (got == 0 && std::ferror(state->file)) {
    state->read_error = true;
    return CURL_READFUNC_ABORT;
  }
  state->sent += static_cast<int64_t>(got);
  if (state->progress != nullptr && *state->progress) {
    (*state->progress)(state->sent, state->total);
  }
  return got;
}

struct DownloadState {
  const BytesSink* sink = nullptr;
  std::unique_ptr<GzipDecoder> decoder;
  bool decode = false;
  bool decided = false;
  long status = 0;
  CURL* curl = nullptr;
  // A 200 answer to a Range request: drop this many leading bytes.
  int64_t skip = 0;
  int64_t delivered = 0;
  int64_t total = -1;
  int64_t base = 0;
  std::string error_body;
  absl::Status sink_error;
  std::string content_type;
  std::string content_encoding;
  const ProgressCallback* progress = nullptr;
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* state = static_cast<DownloadState*>(user);
  std::string_view line(data, size * n);
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name =
        absl::AsciiStrToLower(absl::string_view(line.data(), colon));
    std::string value(absl::StripAsciiWhitespace(
        absl::string_view(line.data() + colon + 1, line.size() - colon - 1)));
    if (name == "content-type") state->content_type = value;
    if (name == "content-encoding") state->content_encoding = value;
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* state = static_cast<DownloadState*>(user);
  const size_t bytes = size * n;
  if (!state->decided) {
    state->decided = true;
    curl_easy_getinfo(state->curl, CURLINFO_RESPONSE_CODE, &state->status);
    curl_off_t length = -1;
    curl_easy_getinfo(state->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
    if (state->status == 200 && state->base > 0) {
      state->skip = state->base;  // the server ignored the Range
      if (length >= 0) state->total = length;
    } else if (length >= 0) {
      state->total = state->base + length;
    }
    if (state->decode && state->content_encoding == "gzip" &&
        state->decoder == nullptr) {
      state->decoder = std::make_unique<GzipDecoder>(*state->sink);
    }
  }
  if (state->status >= 300) {
    CollectBody(data, size, n, &state->error_body);
    return bytes;
  }
  std::string_view chunk(data, bytes);
  if (state->skip > 0) {
    size_t drop = static_cast<size_t>(
        std::min<int64_t>(state->skip, static_cast<int64_t>(bytes)));
    chunk.remove_prefix(drop);
    state->skip -= static_cast<int64_t>(drop);
  }
  if (!chunk.empty()) {
    absl::Status s = state->decoder != nullptr ? state->decoder->Feed(chunk)
                                               : (*state->sink)(chunk);
    if (!s.ok()) {
      state->sink_error = s;
      return 0;  // aborts the transfer
    }
    state->delivered += static_cast<int64_t>(chunk.size());
    if (state->progress != nullptr && *state->progress) {
      (*state->progress)(state->base + state->delivered, state->total);
    }
  }
  return bytes;
}

}  // namespace

// ---- gRPC -----------------------------------------------------------------

absl::StatusOr<v1::CreateArtifactResponse> ArtifactsClient::CreateArtifact(
    const v1::CreateArtifactRequest& request, Options options) const {
  return Call(&v1::Artifacts::Stub::CreateArtifact, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::FinishArtifactResponse> ArtifactsClient::FinishArtifact(
    const v1::ArtifactRequest& request, Options options) const {
  return Call(&v1::Artifacts::Stub::FinishArtifact, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::GetArtifactResponse> ArtifactsClient::GetArtifact(
    const v1::ArtifactRequest& request, Options options) const {
  return Call(&v1::Artifacts::Stub::GetArtifact, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::GetArtifactResponse> ArtifactsClient::GetLatestArtifact(
    const v1::LatestArtifactRequest& request, Options options) const {
  return Call(&v1::Artifacts::Stub::GetLatestArtifact, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListArtifactsResponse> ArtifactsClient::ListArtifacts(
    const v1::ListArtifactsRequest& request, Options options) const {
  return Call(&v1::Artifacts::Stub::ListArtifacts, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::ListArtifactsResponse> ArtifactsClient::ListLatestArtifacts(
    const v1::ListLatestArtifactsRequest& request, Options options) const {
  return Call(&v1::Artifacts::Stub::ListLatestArtifacts, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<v1::AppendLogResponse> ArtifactsClient::AppendLog(
    const v1::AppendLogRequest& request, Options options) const {
  return Call(&v1::Artifacts::Stub::AppendLog, request, options,
              Idempotency::kIdempotent);
}

absl::StatusOr<ArtifactsClient::TailResult> ArtifactsClient::TailLog(
    const v1::TailLogRequest& request, const BytesSink& on_data,
    int max_reconnects) const {
  TailResult result;
  result.end_offset = request.offset();
  v1::TailLogRequest current = request;
  bool know_run = request.has_run_id();
  result.run_id = know_run ? request.run_id() : 0;
  int reconnects = 0;
  for (;;) {
    if (know_run) current.set_run_id(result.run_id);
    current.set_offset(result.end_offset);
    grpc::ClientContext context;
    // No deadline: a follow lasts as long as the run. Credentials only.
    connection().PrepareContext(&context, absl::InfiniteFuture());
    auto reader = stub()->TailLog(&context, current);
    v1::TailLogResponse message;
    std::string remaining_url;
    absl::Status sink_error;
    while (reader->Read(&message)) {
      result.run_id = message.run_id();
      know_run = true;
      if (message.offset() != result.end_offset) {
        context.TryCancel();
        sink_error = InternalError(
            absl::StrCat("the log stream jumped from offset ",
                         result.end_offset, " to ", message.offset()));
        break;
      }
      if (!message.data().empty()) {
        sink_error = on_data(message.data());
        if (!sink_error.ok()) {
          context.TryCancel();
          break;
        }
        result.end_offset += static_cast<int64_t>(message.data().size());
      }
      if (!message.remaining_url().empty()) {
        remaining_url = message.remaining_url();
      }
    }
    grpc::Status status = reader->Finish();
    if (!sink_error.ok()) return sink_error;
    if (status.ok()) {
      if (!remaining_url.empty()) {
        DROVER_ASSIGN_OR_RETURN(
            DownloadInfo info,
            Download(remaining_url, result.end_offset, on_data,
                     /*decode=*/true));
        result.end_offset += info.bytes;
      }
      return result;
    }
    absl::Status error = rpc::FromGrpcStatus(status);
    if (error.code() != absl::StatusCode::kUnavailable ||
        ++reconnects > max_reconnects) {
      return error;
    }
    absl::SleepFor(
        std::min(absl::Milliseconds(200) * reconnects, absl::Seconds(3)));
  }
}

Credentials TaskCredentials(const std::string& client_id,
                            const std::string& access_token,
                            const std::string& certificate) {
  Credentials credentials;
  credentials.client_id = client_id;
  if (!certificate.empty()) {
    credentials.certificate = certificate;
  } else {
    credentials.access_token = access_token;
  }
  credentials.source = "task credentials";
  return credentials;
}

// ---- HTTP -----------------------------------------------------------------

absl::Status UploadFile(const v1::PresignedUpload& upload,
                        const std::filesystem::path& file,
                        const TransferOptions& options,
                        const ProgressCallback& progress) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(file, ec);
  if (ec) {
    return InternalError("cannot read " + file.string() + ": " + ec.message());
  }
  absl::Status last;
  for (int attempt = 1; attempt <= std::max(1, options.max_attempts);
       ++attempt) {
    if (attempt > 1) absl::SleepFor(Backoff(options, attempt - 1));
    std::FILE* f = std::fopen(file.c_str(), "rb");
    if (f == nullptr) {
      return InternalError("cannot open " + file.string());
    }
    UploadState state{f, 0, static_cast<int64_t>(size), &progress};
    CurlHandle h;
    CommonOptions(h, upload.url(), options);
    curl_easy_setopt(h.curl, CURLOPT_UPLOAD, 1L);
    if (!upload.method().empty() && upload.method() != "PUT") {
      curl_easy_setopt(h.curl, CURLOPT_CUSTOMREQUEST, upload.method().c_str());
    }
    curl_easy_setopt(h.curl, CURLOPT_READFUNCTION, ReadFileChunk);
    curl_easy_setopt(h.curl, CURLOPT_READDATA, &state);
    curl_easy_setopt(h.curl, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(size));
    for (const auto& [name, value] : upload.headers()) {
      h.AddHeader(name + ": " + value);
    }
    curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
    std::string body;
    curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, CollectBody);
    curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, &body);
    CURLcode code = curl_easy_perform(h.curl);
    std::fclose(f);
    if (state.read_error) {
      return InternalError("reading " + file.string() + " failed mid-upload");
    }
    if (code != CURLE_OK) {
      last = absl::UnavailableError(absl::StrCat("uploading to ",
                                                 RedactUrl(upload.url()), ": ",
                                                 curl_easy_strerror(code)));
      if (!RetryableCurl(code)) return last;
      continue;
    }
    long status = 0;
    curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) return absl::OkStatus();
    last = HttpError(status, body, upload.url());
    if (!RetryableHttp(status)) return last;
  }
  return last;
}

absl::StatusOr<DownloadInfo> Download(const std::string& url, int64_t offset,
                                      const BytesSink& sink, bool decode,
                                      const TransferOptions& options,
                                      const ProgressCallback& progress) {
  DownloadInfo info;
  absl::Status last;
  // A decoded stream cannot resume in the middle: the Range would be in
  // encoded bytes. Only plain bodies resume.
  bool resumable = true;
  std::unique_ptr<GzipDecoder> decoder_carry;
  for (int attempt = 1; attempt <= std::max(1, options.max_attempts);
       ++attempt) {
    if (attempt > 1) {
      if (!resumable) break;
      absl::SleepFor(Backoff(options, attempt - 1));
    }
    DownloadState state;
    state.sink = &sink;
    state.decode = decode;
    state.base = offset + info.bytes;
    state.progress = &progress;
    CurlHandle h;
    state.curl = h.curl;
    CommonOptions(h, url, options);
    if (state.base > 0) {
      h.AddHeader(absl::StrCat("Range: bytes=", state.base, "-"));
      curl_easy_setopt(h.curl, CURLOPT_HTTPHEADER, h.headers);
    }
    curl_easy_setopt(h.curl, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(h.curl, CURLOPT_HEADERDATA, &state);
    curl_easy_setopt(h.curl, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(h.curl, CURLOPT_WRITEDATA, &state);
    CURLcode code = curl_easy_perform(h.curl);
    info.bytes += state.delivered;
    info.content_type = state.content_type;
    info.content_encoding = state.content_encoding;
    if (state.decoder != nullptr) resumable = false;
    if (!state.sink_error.ok()) return state.sink_error;
    long status = state.status;
    if (status == 0) curl_easy_getinfo(h.curl, CURLINFO_RESPONSE_CODE, &status);
    if (code != CURLE_OK) {
      last = absl::UnavailableError(absl::StrCat(
          "downloading ", RedactUrl(url), ": ", curl_easy_strerror(code)));
      if (!RetryableCurl(code)) return last;
      continue;
    }
    if (status == 416 && state.base > 0) {
      // Asked past the end: nothing more to deliver.
      return info;
    }
    if (status >= 300) {
      last = HttpError(status, state.error_body, url);
      if (!RetryableHttp(status)) return last;
      continue;
    }
    if (state.decoder != nullptr) {
      DROVER_RETURN_IF_ERROR(state.decoder->Finish());
    }
    return info;
  }
  return last;
}

absl::StatusOr<std::pair<std::string, int64_t>> HashFile(
    const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return InternalError("cannot open " + file.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                              EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buffer(1 << 20);
  int64_t size = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize got = in.gcount();
    if (got <= 0) break;
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(got));
    size += got;
  }
  if (in.bad()) return InternalError("reading " + file.string() + " failed");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  return std::make_pair(hex, size);
}

// ---- gzip -----------------------------------------------------------------

struct GzipDecoder::State {
  z_stream zs{};
  bool open = false;
  bool ended = false;  // the current member ended
};

GzipDecoder::GzipDecoder(BytesSink sink)
    : state_(std::make_unique<State>()), sink_(std::move(sink)) {
  // 16 + MAX_WBITS: gzip wrapper only.
  state_->open = inflateInit2(&state_->zs, 16 + MAX_WBITS) == Z_OK;
}

GzipDecoder::~GzipDecoder() {
  if (state_->open) inflateEnd(&state_->zs);
}

absl::Status GzipDecoder::Feed(std::string_view compressed) {
  if (!state_->open) return InternalError("cannot initialise zlib");
  z_stream& zs = state_->zs;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  char out[65536];
  while (zs.avail_in > 0) {
    if (state_->ended) {
      // Another member follows (concatenated gzip files).
      inflateReset(&zs);
      state_->ended = false;
    }
    zs.next_out = reinterpret_cast<Bytef*>(out);
    zs.avail_out = sizeof(out);
    int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
      return InputError("gzip", zs.msg != nullptr ? zs.msg : "",
                        "the gzip data is corrupt");
    }
    size_t produced = sizeof(out) - zs.avail_out;
    if (produced > 0) {
      DROVER_RETURN_IF_ERROR(sink_(std::string_view(out, produced)));
    }
    if (rc == Z_STREAM_END) state_->ended = true;
    if (rc == Z_BUF_ERROR && produced == 0) break;
  }
  return absl::OkStatus();
}

absl::Status GzipDecoder::Finish() {
  if (!state_->ended) {
    return InputError("gzip", "", "the gzip data ended in the middle");
  }
  return absl::OkStatus();
}

absl::Status GzipFile(const std::filesystem::path& source,
                      const std::filesystem::path& destination) {
  std::ifstream in(source, std::ios::binary);
  if (!in) return InternalError("cannot open " + source.string());
  gzFile out = gzopen(destination.c_str(), "wb6");
  if (out == nullptr) {
    return InternalError("cannot create " + destination.string());
  }
  std::vector<char> buffer(1 << 20);
  bool ok = true;
  while (in && ok) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    std::streamsize got = in.gcount();
    if (got <= 0) break;
    ok = gzwrite(out, buffer.data(), static_cast<unsigned>(got)) == got;
  }
  ok = gzclose(out) == Z_OK && ok && !in.bad();
  if (!ok) {
    return InternalError("compressing " + source.string() + " into " +
                         destination.string() + " failed");
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Artifact> UploadBlobArtifact(
    const ArtifactsClient& client, const BlobArtifactUpload& upload,
    const TransferOptions& options, const ProgressCallback& progress) {
  DROVER_ASSIGN_OR_RETURN(auto hashed, HashFile(upload.file));
  v1::CreateArtifactRequest request;
  request.set_task_id(upload.task_id);
  request.set_run_id(upload.run_id);
  request.set_name(upload.name);
  request.set_content_type(upload.content_type);
  if (upload.expires) {
    const int64_t micros = absl::ToUnixMicros(*upload.expires);
    request.mutable_expires()->set_seconds(micros / 1000000);
    request.mutable_expires()->set_nanos(
        static_cast<int32_t>(micros % 1000000) * 1000);
  }
  request.mutable_blob()->set_size(hashed.second);
  request.mutable_blob()->set_sha256(hashed.first);
  request.mutable_blob()->set_content_encoding(upload.content_encoding);
  absl::Status last;
  // An upload URL can expire while a slow upload is retried; a fresh one
  // comes from creating the (same) artifact again.
  for (int round = 0; round < 3; ++round) {
    DROVER_ASSIGN_OR_RETURN(v1::CreateArtifactResponse created,
                            client.CreateArtifact(request));
    if (created.artifact().present()) return created.artifact();
    last = UploadFile(created.upload(), upload.file, options, progress);
    if (HasErrorCode(last, ErrorCode::kResourceExpired)) continue;
    if (!last.ok()) return last;
    v1::ArtifactRequest finish;
    finish.set_task_id(upload.task_id);
    finish.set_run_id(upload.run_id);
    finish.set_name(upload.name);
    DROVER_ASSIGN_OR_RETURN(v1::FinishArtifactResponse finished,
                            client.FinishArtifact(finish));
    return finished.artifact();
  }
  return last;
}

}  // namespace drover::client
