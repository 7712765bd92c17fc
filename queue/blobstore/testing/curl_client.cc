#include "queue/blobstore/testing/curl_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "queue/blobstore/sha256.h"

namespace drover::queue::blobstore::testing {
namespace {

// splitmix64: cheap, and no two nearby offsets look alike.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct Transfer {
  const CurlRequest* request;
  CurlResponse* response;
  uint64_t sent = 0;
  uint64_t next_progress;
  Sha256 hasher;
};

void Progress(Transfer* t, uint64_t total) {
  if (!t->request->on_progress) return;
  while (total >= t->next_progress) {
    t->request->on_progress();
    t->next_progress += t->request->progress_every;
  }
}

size_t ReadBody(char* out, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const CurlRequest& request = *t->request;
  size_t room = size * count;
  size_t n = 0;
  if (request.body) {
    n = std::min<uint64_t>(room, request.body->size() - t->sent);
    std::memcpy(out, request.body->data() + t->sent, n);
  } else {
    n = std::min<uint64_t>(room, request.upload_size - t->sent);
    FillPattern(request.pattern_seed, t->sent, out, n);
  }
  t->sent += n;
  t->response->uploaded_bytes = t->sent;
  Progress(t, t->sent);
  return n;
}

size_t WriteBody(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t n = size * count;
  t->hasher.Update(data, n);
  CurlResponse& response = *t->response;
  size_t keep = t->request->keep_body_bytes;
  if (response.body.size() < keep) {
    response.body.append(data, std::min(n, keep - response.body.size()));
  }
  response.body_bytes += n;
  Progress(t, response.body_bytes);
  return n;
}

size_t WriteHeader(char* data, size_t size, size_t count, void* user) {
  auto* response = static_cast<CurlResponse*>(user);
  std::string line(data, size * count);
  size_t colon = line.find(':');
  if (colon == std::string::npos) return size * count;
  std::string name = line.substr(0, colon);
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  size_t start = line.find_first_not_of(" \t", colon + 1);
  size_t end = line.find_last_not_of(" \t\r\n");
  response->headers[name] = start == std::string::npos || end < start
                                ? ""
                                : line.substr(start, end - start + 1);
  return size * count;
}

}  // namespace

uint8_t PatternByte(uint64_t seed, uint64_t offset) {
  return static_cast<uint8_t>(Mix(seed * 0x100000001b3ULL + offset / 8) >>
                              (8 * (offset % 8)));
}

void FillPattern(uint64_t seed, uint64_t offset, char* out, size_t size) {
  size_t i = 0;
  while (i < size) {
    uint64_t position = offset + i;
    uint64_t word = Mix(seed * 0x100000001b3ULL + position / 8);
    for (uint64_t b = position % 8; b < 8 && i < size; ++b, ++i) {
      out[i] = static_cast<char>(word >> (8 * b));
    }
  }
}

std::string PatternString(uint64_t seed, size_t size) {
  std::string s(size, '\0');
  FillPattern(seed, 0, s.data(), size);
  return s;
}

std::string PatternSha256(uint64_t seed, uint64_t size) {
  Sha256 hasher;
  std::vector<char> buffer(1 << 20);
  for (uint64_t offset = 0; offset < size; offset += buffer.size()) {
    size_t n = std::min<uint64_t>(buffer.size(), size - offset);
    FillPattern(seed, offset, buffer.data(), n);
    hasher.Update(buffer.data(), n);
  }
  return HexEncode(hasher.Finish());
}

CurlResponse Perform(const CurlRequest& request) {
  CurlResponse response;
  Transfer transfer{&request, &response, 0, request.progress_every, {}};
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(),
                                              curl_easy_cleanup);
  CURL* h = curl.get();
  curl_slist* headers = nullptr;
  for (const auto& [name, value] : request.headers) {
    headers = curl_slist_append(headers, (name + ": " + value).c_str());
  }
  if (request.no_expect) headers = curl_slist_append(headers, "Expect:");
  char error[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, request.url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, request.timeout_ms);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, WriteHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &response);
  if (request.path_as_is) curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
  if (request.method == "PUT" || request.method == "POST") {
    uint64_t size = request.body ? request.body->size() : request.upload_size;
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(size));
    curl_easy_setopt(h, CURLOPT_READFUNCTION, ReadBody);
    curl_easy_setopt(h, CURLOPT_READDATA, &transfer);
    if (request.method == "POST") {
      curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "POST");
    }
  } else if (request.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (request.method != "GET") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }
  auto start = std::chrono::steady_clock::now();
  CURLcode rc = curl_easy_perform(h);
  response.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) {
    response.error = error[0] ? error : curl_easy_strerror(rc);
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &response.status);
  response.body_sha256 = HexEncode(transfer.hasher.Finish());
  return response;
}

uint64_t CurrentRssBytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoull(line.substr(6)) * 1024;  // reported in kB
    }
  }
  return 0;
}

}  // namespace drover::queue::blobstore::testing
