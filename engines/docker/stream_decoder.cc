#include "engines/docker/stream_decoder.h"

#include <algorithm>

#include "common/status.h"

namespace drover::engines::docker {

absl::Status MultiplexedStreamDecoder::Feed(std::string_view chunk) {
  if (broken_) return InternalError("log stream decoder already failed");
  while (!chunk.empty()) {
    if (remaining_ > 0) {
      size_t n = std::min<size_t>(remaining_, chunk.size());
      sink_(kind_, chunk.substr(0, n));
      remaining_ -= static_cast<uint32_t>(n);
      chunk.remove_prefix(n);
      continue;
    }
    size_t n = std::min(sizeof(header_) - header_len_, chunk.size());
    std::copy_n(chunk.data(), n, header_ + header_len_);
    header_len_ += n;
    chunk.remove_prefix(n);
    if (header_len_ < sizeof(header_)) break;
    header_len_ = 0;
    auto byte = [&](int i) { return static_cast<uint8_t>(header_[i]); };
    if (byte(0) > 2 || byte(1) != 0 || byte(2) != 0 || byte(3) != 0) {
      broken_ = true;
      return MakeError(ErrorCode::kInternalError,
                       "docker log stream has an invalid frame header",
                       {{"stream_byte", std::to_string(byte(0))}});
    }
    kind_ = static_cast<StreamKind>(byte(0));
    remaining_ = (uint32_t{byte(4)} << 24) | (uint32_t{byte(5)} << 16) |
                 (uint32_t{byte(6)} << 8) | uint32_t{byte(7)};
  }
  return absl::OkStatus();
}

absl::Status MultiplexedStreamDecoder::Finish() const {
  if (broken_) return InternalError("docker log stream was not multiplexed");
  if (header_len_ > 0) {
    return MakeError(ErrorCode::kInternalError,
                     "docker log stream ended inside a frame header",
                     {{"header_bytes", std::to_string(header_len_)}});
  }
  if (remaining_ > 0) {
    return MakeError(ErrorCode::kInternalError,
                     "docker log stream ended inside a frame",
                     {{"missing_bytes", std::to_string(remaining_)}});
  }
  return absl::OkStatus();
}

}  // namespace drover::engines::docker
