// Incremental SHA-256 and hex helpers shared by the blob stores (digests of
// uploaded blobs, SigV4 payload and request hashes).
#ifndef DROVER_QUEUE_BLOBSTORE_SHA256_H_
#define DROVER_QUEUE_BLOBSTORE_SHA256_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace drover::queue::blobstore {

using Sha256Digest = std::array<uint8_t, 32>;

// Streaming SHA-256. Not thread-safe: one hasher per stream.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // Ends the stream; the hasher must not be used afterwards.
  Sha256Digest Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

Sha256Digest Sha256Of(std::string_view data);

// Lowercase hex of arbitrary bytes.
std::string HexEncode(const void* data, size_t size);
inline std::string HexEncode(const Sha256Digest& digest) {
  return HexEncode(digest.data(), digest.size());
}

// True for exactly 64 lowercase hex digits.
bool IsSha256Hex(std::string_view hex);

}  // namespace drover::queue::blobstore

#endif  // DROVER_QUEUE_BLOBSTORE_SHA256_H_
