#include "engines/docker/docker_client.h"

#include <curl/curl.h>

#include <cctype>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/escaping.h"
#include "common/status.h"

namespace drover::engines::docker {
namespace {

// Error bodies and inspect results are small; anything beyond this is kept
// only in part.
constexpr size_t kMaxCollectedBody = 64 << 20;
constexpr long kConnectTimeoutMs = 5000;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Transfer {
  const DockerClient::Request* request = nullptr;
  CURL* curl = nullptr;
  std::string body;
  absl::Status sink_status;
  bool cancelled = false;
  bool headers_done = false;
  std::map<std::string, std::string> headers;
};

bool IsSuccess(long status) {
  return (status >= 200 && status < 300) || status == 304;
}

// The callbacks below run inside libcurl's C frames: nothing may throw
// through them, so callers' exceptions become a failed transfer.
size_t OnWrite(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * count;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->request->on_body && IsSuccess(status)) {
    absl::Status s;
    try {
      s = t->request->on_body(std::string_view(data, len));
    } catch (const std::exception& e) {
      s = InternalError(std::string("docker stream consumer failed: ") +
                        e.what());
    }
    if (!s.ok()) {
      t->sink_status = std::move(s);
      return 0;  // any short count makes libcurl stop with CURLE_WRITE_ERROR
    }
    return len;
  }
  if (t->body.size() < kMaxCollectedBody) {
    t->body.append(data, std::min(len, kMaxCollectedBody - t->body.size()));
  }
  return len;
}

size_t OnHeader(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * count;
  std::string_view line(data, len);
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    for (char& ch : name) ch = static_cast<char>(std::tolower(ch));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
      value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == '\r' || value.back() == '\n')) {
      value.remove_suffix(1);
    }
    t->headers[name] = std::string(value);
  }
  // A blank line ends a header block. 1xx answers have their own block.
  if ((line == "\r\n" || line == "\n") && !t->headers_done) {
    long status = 0;
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200) {
      t->headers_done = true;
      if (t->request->on_headers) {
        try {
          t->request->on_headers(status);
        } catch (...) {
          return 0;
        }
      }
    }
  }
  return len;
}

int OnProgress(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  bool stop = false;
  try {
    stop = t->request->cancelled && t->request->cancelled();
  } catch (...) {
    stop = true;
  }
  if (stop) {
    t->cancelled = true;
    return 1;
  }
  return 0;
}

std::string Endpoint(const DockerClient::Request& r) {
  std::string path = r.target.substr(0, r.target.find('?'));
  return r.method + " " + path;
}

absl::Status ClientError(ErrorCode code, std::string message,
                         const DockerClient::Request& r, std::string reason,
                         ErrorDetails extra = {}) {
  extra["endpoint"] = Endpoint(r);
  extra["reason"] = std::move(reason);
  return MakeError(code, message, std::move(extra));
}

// dockerd's error bodies are {"message": "..."}.
std::string DockerMessage(const std::string& body) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("message") && j["message"].is_string()) {
    return j["message"].get<std::string>();
  }
  return body.substr(0, 500);
}

ErrorCode CodeForHttp(long status) {
  switch (status) {
    case 400:
      return ErrorCode::kInputError;
    case 404:
      return ErrorCode::kResourceNotFound;
    case 409:
      return ErrorCode::kRequestConflict;
    default:
      return ErrorCode::kInternalError;
  }
}

bool IsHttpStatus(const absl::Status& s, std::string_view code) {
  ErrorInfo info = GetErrorInfo(s);
  auto it = info.details.find("docker_status");
  return it != info.details.end() && it->second == code;
}

absl::StatusOr<nlohmann::json> ParseJson(const std::string& body,
                                         const DockerClient::Request& r) {
  nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) {
    return ClientError(ErrorCode::kInternalError,
                       "dockerd returned a body that is not JSON", r,
                       "transport");
  }
  return j;
}

}  // namespace

std::string DockerErrorReason(const absl::Status& status) {
  ErrorInfo info = GetErrorInfo(status);
  auto it = info.details.find("reason");
  return it == info.details.end() ? "" : it->second;
}

std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

DockerClient::DockerClient(DockerClientOptions options)
    : options_(std::move(options)) {
  // Reference-counted and thread-safe in libcurl >= 7.84 (Debian 12 ships
  // 7.88), so every client may call it.
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

DockerClient::~DockerClient() { curl_global_cleanup(); }

absl::StatusOr<DockerClient::Response> DockerClient::Call(
    const Request& request) {
  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl)
    return ClientError(ErrorCode::kInternalError, "curl_easy_init failed",
                       request, "transport");
  Transfer transfer;
  transfer.request = &request;
  transfer.curl = curl.get();

  // The host part is ignored on a unix socket; the version prefix pins the
  // response shapes.
  std::string url = "http://docker/v" + options_.api_version + request.target;
  char error_buffer[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, options_.socket_path.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, kConnectTimeoutMs);
  if (request.timeout > absl::ZeroDuration()) {
    curl_easy_setopt(
        c, CURLOPT_TIMEOUT_MS,
        static_cast<long>(absl::ToInt64Milliseconds(request.timeout)));
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &transfer);
  if (request.cancelled) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &OnProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &transfer);
  }

  curl_slist* raw_headers = nullptr;
  std::string body_text;
  if (request.body != nullptr) {
    body_text = request.body->dump();
    raw_headers =
        curl_slist_append(raw_headers, "Content-Type: application/json");
  }
  // No "Expect: 100-continue" round trip for larger bodies.
  raw_headers = curl_slist_append(raw_headers, "Expect:");
  for (const std::string& h : request.headers) {
    raw_headers = curl_slist_append(raw_headers, h.c_str());
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(raw_headers);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

  if (request.method == "POST") {
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE,
                     static_cast<long>(body_text.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body_text.c_str());
  } else if (request.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK) {
    if (rc == CURLE_WRITE_ERROR && !transfer.sink_status.ok()) {
      return transfer.sink_status;
    }
    std::string detail =
        error_buffer[0] ? error_buffer : curl_easy_strerror(rc);
    ErrorDetails extra = {{"socket", options_.socket_path},
                          {"curl_error", detail}};
    if (rc == CURLE_ABORTED_BY_CALLBACK && transfer.cancelled) {
      return ClientError(ErrorCode::kInternalError, "docker call cancelled",
                         request, "cancelled", std::move(extra));
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return ClientError(ErrorCode::kInternalError,
                         "docker call timed out after " +
                             absl::FormatDuration(request.timeout),
                         request, "timeout", std::move(extra));
    }
    if (rc == CURLE_COULDNT_CONNECT) {
      return ClientError(
          ErrorCode::kInternalError,
          "dockerd unreachable at " + options_.socket_path + ": " + detail,
          request, "unreachable", std::move(extra));
    }
    return ClientError(ErrorCode::kInternalError,
                       "docker call failed: " + detail, request, "transport",
                       std::move(extra));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (!IsSuccess(status)) {
    return ClientError(CodeForHttp(status), DockerMessage(transfer.body),
                       request, "http",
                       {{"docker_status", std::to_string(status)}});
  }
  return Response{status, std::move(transfer.body),
                  std::move(transfer.headers)};
}

absl::Status DockerClient::Ping(absl::Duration timeout) {
  Request r;
  r.target = "/_ping";
  r.timeout = timeout;
  DROVER_ASSIGN_OR_RETURN(Response resp, Call(r));
  if (resp.body != "OK") {
    return ClientError(
        ErrorCode::kInternalError,
        "dockerd answered /_ping with '" + resp.body.substr(0, 100) + "'", r,
        "transport");
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> DockerClient::InspectImage(
    const std::string& image) {
  Request r;
  r.target = "/images/" + image + "/json";
  r.timeout = options_.request_timeout;
  DROVER_ASSIGN_OR_RETURN(Response resp, Call(r));
  return ParseJson(resp.body, r);
}

absl::Status DockerClient::PullImage(
    const std::string& from_image, const std::string& tag,
    const std::string& registry_auth, absl::Duration timeout,
    const std::function<void(const nlohmann::json&)>& on_message,
    const CancelFn& cancelled) {
  Request r;
  r.method = "POST";
  r.target = "/images/create?fromImage=" + UrlEncode(from_image) +
             "&tag=" + UrlEncode(tag);
  r.timeout = timeout;
  r.cancelled = cancelled;
  if (!registry_auth.empty()) {
    r.headers.push_back("X-Registry-Auth: " + registry_auth);
  }
  // The body is one JSON object per line; lines may straddle chunks.
  std::string partial;
  std::string pull_error;
  auto handle_line = [&](std::string_view line) {
    if (line.empty()) return;
    nlohmann::json msg = nlohmann::json::parse(line, nullptr, false);
    if (!msg.is_object()) return;
    if (msg.contains("error") && pull_error.empty()) {
      pull_error = msg["error"].is_string() ? msg["error"].get<std::string>()
                                            : msg["error"].dump();
    }
    if (on_message) on_message(msg);
  };
  r.on_body = [&](std::string_view chunk) {
    partial.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos;
         start = nl + 1) {
      handle_line(std::string_view(partial).substr(start, nl - start));
    }
    partial.erase(0, start);
    return absl::OkStatus();
  };
  DROVER_ASSIGN_OR_RETURN(Response resp, Call(r));
  (void)resp;
  handle_line(partial);
  if (!pull_error.empty()) {
    return ClientError(ErrorCode::kResourceNotFound, pull_error, r, "http",
                       {{"docker_status", "200"}});
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> DockerClient::CreateContainer(
    const std::string& name, const nlohmann::json& body) {
  Request r;
  r.method = "POST";
  r.target = "/containers/create";
  if (!name.empty()) r.target += "?name=" + UrlEncode(name);
  r.body = &body;
  r.timeout = options_.request_timeout;
  DROVER_ASSIGN_OR_RETURN(Response resp, Call(r));
  DROVER_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(resp.body, r));
  if (!j.contains("Id") || !j["Id"].is_string()) {
    return ClientError(ErrorCode::kInternalError,
                       "dockerd created a container but returned no Id", r,
                       "transport");
  }
  return j["Id"].get<std::string>();
}

absl::Status DockerClient::StartContainer(const std::string& id) {
  Request r;
  r.method = "POST";
  r.target = "/containers/" + id + "/start";
  r.timeout = options_.request_timeout;
  return Call(r).status();
}

absl::Status DockerClient::KillContainer(const std::string& id) {
  Request r;
  r.method = "POST";
  r.target = "/containers/" + id + "/kill?signal=SIGKILL";
  r.timeout = options_.request_timeout;
  absl::Status s = Call(r).status();
  if (IsHttpStatus(s, "404") || IsHttpStatus(s, "409")) return absl::OkStatus();
  return s;
}

absl::Status DockerClient::AttachOutput(
    const std::string& id, const std::function<void()>& on_attached,
    const std::function<void(StreamKind, std::string_view)>& sink,
    const CancelFn& cancelled) {
  MultiplexedStreamDecoder decoder(sink);
  Request r;
  r.method = "POST";
  r.target = "/containers/" + id + "/attach?stream=1&stdout=1&stderr=1";
  r.cancelled = cancelled;
  r.on_headers = [&](long status) {
    if (IsSuccess(status) && on_attached) on_attached();
  };
  r.on_body = [&](std::string_view chunk) { return decoder.Feed(chunk); };
  DROVER_RETURN_IF_ERROR(Call(r).status());
  return decoder.Finish();
}

absl::StatusOr<int64_t> DockerClient::WaitContainer(const std::string& id,
                                                    const CancelFn& cancelled) {
  Request r;
  r.method = "POST";
  r.target = "/containers/" + id + "/wait?condition=not-running";
  r.cancelled = cancelled;
  DROVER_ASSIGN_OR_RETURN(Response resp, Call(r));
  DROVER_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(resp.body, r));
  if (j.contains("Error") && j["Error"].is_object() &&
      j["Error"].contains("Message") && j["Error"]["Message"].is_string() &&
      !j["Error"]["Message"].get<std::string>().empty()) {
    return ClientError(ErrorCode::kInternalError,
                       "waiting for the container failed: " +
                           j["Error"]["Message"].get<std::string>(),
                       r, "http", {{"docker_status", "200"}});
  }
  if (!j.contains("StatusCode") || !j["StatusCode"].is_number_integer()) {
    return ClientError(ErrorCode::kInternalError,
                       "dockerd's wait answer has no StatusCode", r,
                       "transport");
  }
  return j["StatusCode"].get<int64_t>();
}

absl::StatusOr<nlohmann::json> DockerClient::InspectContainer(
    const std::string& id) {
  Request r;
  r.target = "/containers/" + id + "/json";
  r.timeout = options_.request_timeout;
  DROVER_ASSIGN_OR_RETURN(Response resp, Call(r));
  return ParseJson(resp.body, r);
}

absl::StatusOr<PathStat> DockerClient::StatPath(const std::string& id,
                                                const std::string& path) {
  Request r;
  r.method = "HEAD";
  r.target = "/containers/" + id + "/archive?path=" + UrlEncode(path);
  r.timeout = options_.request_timeout;
  absl::StatusOr<Response> resp = Call(r);
  if (!resp.ok()) {
    // A HEAD answer has no body, so dockerd's message is lost; say what 404
    // means here.
    if (IsHttpStatus(resp.status(), "404")) {
      return ClientError(ErrorCode::kResourceNotFound,
                         "no such path in the container: " + path, r, "http",
                         {{"docker_status", "404"}, {"path", path}});
    }
    return resp.status();
  }
  auto it = resp->headers.find("x-docker-container-path-stat");
  std::string decoded;
  if (it == resp->headers.end() ||
      !absl::Base64Unescape(it->second, &decoded)) {
    return ClientError(ErrorCode::kInternalError,
                       "dockerd sent no readable path stat", r, "transport");
  }
  nlohmann::json j = nlohmann::json::parse(decoded, nullptr, false);
  if (!j.is_object()) {
    return ClientError(ErrorCode::kInternalError,
                       "dockerd's path stat is not a JSON object", r,
                       "transport");
  }
  PathStat stat;
  if (j.contains("name") && j["name"].is_string()) stat.name = j["name"];
  if (j.contains("size") && j["size"].is_number_integer())
    stat.size = j["size"];
  if (j.contains("mode") && j["mode"].is_number_unsigned()) {
    stat.mode = j["mode"].get<uint32_t>();
  }
  if (j.contains("linkTarget") && j["linkTarget"].is_string()) {
    stat.link_target = j["linkTarget"];
  }
  return stat;
}

absl::Status DockerClient::GetArchive(
    const std::string& id, const std::string& path,
    const std::function<absl::Status(std::string_view)>& sink) {
  Request r;
  r.target = "/containers/" + id + "/archive?path=" + UrlEncode(path);
  r.on_body = sink;
  return Call(r).status();
}

absl::Status DockerClient::RemoveContainer(const std::string& id) {
  Request r;
  r.method = "DELETE";
  r.target = "/containers/" + id + "?force=true&v=true";
  r.timeout = options_.request_timeout;
  absl::Status s = Call(r).status();
  // 404: already gone. 409: a removal is already in progress.
  if (IsHttpStatus(s, "404") || IsHttpStatus(s, "409")) return absl::OkStatus();
  return s;
}

absl::StatusOr<std::vector<nlohmann::json>> DockerClient::ListContainers(
    const std::vector<std::string>& labels) {
  nlohmann::json filters = {{"label", labels}};
  Request r;
  r.target = "/containers/json?all=1&filters=" + UrlEncode(filters.dump());
  r.timeout = options_.request_timeout;
  DROVER_ASSIGN_OR_RETURN(Response resp, Call(r));
  DROVER_ASSIGN_OR_RETURN(nlohmann::json j, ParseJson(resp.body, r));
  if (!j.is_array()) {
    return ClientError(ErrorCode::kInternalError,
                       "dockerd's container list is not an array", r,
                       "transport");
  }
  return j.get<std::vector<nlohmann::json>>();
}

}  // namespace drover::engines::docker
