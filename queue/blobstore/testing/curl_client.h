// Test helper: a minimal libcurl client for blob-store tests. Streams
// request bodies from a generator and hashes response bodies as they
// arrive, so multi-hundred-megabyte transfers need no memory of their own.
#ifndef DROVER_QUEUE_BLOBSTORE_TESTING_CURL_CLIENT_H_
#define DROVER_QUEUE_BLOBSTORE_TESTING_CURL_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

namespace drover::queue::blobstore::testing {

// Deterministic pseudo-random content: byte i of a blob with `seed`.
uint8_t PatternByte(uint64_t seed, uint64_t offset);
// Fills `out` with bytes [offset, offset + size) of the pattern.
void FillPattern(uint64_t seed, uint64_t offset, char* out, size_t size);
// SHA-256 (hex) of the first `size` bytes of the pattern.
std::string PatternSha256(uint64_t seed, uint64_t size);
std::string PatternString(uint64_t seed, size_t size);

struct CurlRequest {
  std::string method = "GET";
  std::string url;
  std::map<std::string, std::string> headers;
  // Upload body: `body` when set, else `upload_size` bytes of the pattern
  // with `pattern_seed` (only for PUT/POST).
  std::optional<std::string> body;
  uint64_t upload_size = 0;
  uint64_t pattern_seed = 0;
  // Called every time another `progress_every` bytes have been uploaded or
  // downloaded (for sampling memory use mid-transfer).
  std::function<void()> on_progress;
  uint64_t progress_every = 8 << 20;
  // Keep at most this much of the response body in `CurlResponse::body`
  // (all of it is hashed).
  size_t keep_body_bytes = 1 << 20;
  // Send the path exactly as given (no "/../" squashing).
  bool path_as_is = false;
  // Suppress "Expect: 100-continue" so the body goes out unasked.
  bool no_expect = false;
  long timeout_ms = 120000;
};

struct CurlResponse {
  long status = 0;
  std::string body;  // first keep_body_bytes bytes
  uint64_t body_bytes = 0;
  std::string body_sha256;
  std::map<std::string, std::string> headers;  // lowercase names
  std::string error;  // libcurl's error, empty on success
  double seconds = 0;
  uint64_t uploaded_bytes = 0;
};

CurlResponse Perform(const CurlRequest& request);

// VmRSS of this process in bytes (from /proc/self/status).
uint64_t CurrentRssBytes();

}  // namespace drover::queue::blobstore::testing

#endif  // DROVER_QUEUE_BLOBSTORE_TESTING_CURL_CLIENT_H_
