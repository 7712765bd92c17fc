// Decoder for the Engine API's multiplexed stdout/stderr stream.
//
// Without a TTY, /containers/{id}/logs and /attach frame the output: each
// frame is an 8-byte header {stream, 0, 0, 0, size as 32-bit big-endian}
// followed by `size` bytes. Frames may be split anywhere across the chunks
// libcurl delivers, so the decoder keeps the partial frame between calls.
#ifndef DROVER_ENGINES_DOCKER_STREAM_DECODER_H_
#define DROVER_ENGINES_DOCKER_STREAM_DECODER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace drover::engines::docker {

enum class StreamKind : uint8_t { kStdin = 0, kStdout = 1, kStderr = 2 };

class MultiplexedStreamDecoder {
 public:
  // Called with each frame's payload, possibly in several pieces.
  using Sink = std::function<void(StreamKind, std::string_view)>;

  explicit MultiplexedStreamDecoder(Sink sink) : sink_(std::move(sink)) {}

  // Decodes the next chunk of the stream. Errors: InternalError when a
  // header names an unknown stream (the stream is not multiplexed); the
  // decoder then refuses further input. Not thread-safe.
  absl::Status Feed(std::string_view chunk);

  // Ok when the stream ended on a frame boundary. Errors: InternalError
  // naming how many bytes of a header or payload are missing.
  absl::Status Finish() const;

 private:
  Sink sink_;
  // The bytes of a header seen so far (a header may be split).
  char header_[8] = {};
  size_t header_len_ = 0;
  // Payload bytes still owed by the current frame.
  uint32_t remaining_ = 0;
  StreamKind kind_ = StreamKind::kStdout;
  bool broken_ = false;
};

}  // namespace drover::engines::docker

#endif  // DROVER_ENGINES_DOCKER_STREAM_DECODER_H_
