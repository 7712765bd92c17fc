// OutputPump: a pipe whose read end a thread drains into a sink, so that a
// task's merged stdout+stderr reaches the task log as it is written, in
// fixed-size chunks (constant memory however much the task prints).
#ifndef DROVER_ENGINES_NATIVE_OUTPUT_PUMP_H_
#define DROVER_ENGINES_NATIVE_OUTPUT_PUMP_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace drover::engines::native {

class OutputPump {
 public:
  // Receives output chunks, from the pump's thread only.
  using Sink = std::function<void(std::string_view)>;

  // Makes the pipe and starts the reading thread. Errors: InternalError
  // when the pipe, eventfd or thread cannot be made.
  static absl::StatusOr<std::unique_ptr<OutputPump>> Start(Sink sink);

  // Stops reading (as Finish(zero)) and closes everything.
  ~OutputPump();

  OutputPump(const OutputPump&) = delete;
  OutputPump& operator=(const OutputPump&) = delete;

  // The write end (close-on-exec) for LaunchOptions::output_fd; -1 after
  // CloseWriteEnd().
  int write_fd() const { return write_fd_; }

  // Closes this process's write end; EOF then comes once every process
  // holding a copy has exited. Not thread-safe against write_fd() users.
  void CloseWriteEnd();

  // Waits until the pipe reached EOF (all output delivered) or `timeout`
  // passed, then stops the reader. Returns true on EOF. Call after
  // CloseWriteEnd(). Not thread-safe; call once.
  bool Finish(absl::Duration timeout);

  uint64_t bytes() const { return bytes_.load(); }

 private:
  OutputPump(Sink sink, int read_fd, int write_fd, int stop_fd);
  void Run();

  Sink sink_;
  const int read_fd_;
  int write_fd_;
  const int stop_fd_;
  std::atomic<uint64_t> bytes_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool eof_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace drover::engines::native

#endif  // DROVER_ENGINES_NATIVE_OUTPUT_PUMP_H_
