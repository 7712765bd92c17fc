#include "engines/native/output_pump.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/status.h"

namespace drover::engines::native {
namespace {

// Large enough that a task printing fast costs few wake-ups, small enough
// to sit on the reader's stack.
constexpr size_t kChunkBytes = 64 * 1024;

}  // namespace

absl::StatusOr<std::unique_ptr<OutputPump>> OutputPump::Start(Sink sink) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) {
    return MakeError(ErrorCode::kInternalError, "pipe2 failed",
                     {{"errno", std::strerror(errno)}});
  }
  int stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    int saved = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return MakeError(ErrorCode::kInternalError, "eventfd failed",
                     {{"errno", std::strerror(saved)}});
  }
  std::unique_ptr<OutputPump> pump(
      new OutputPump(std::move(sink), fds[0], fds[1], stop_fd));
  pump->thread_ = std::thread([p = pump.get()] { p->Run(); });
  return pump;
}

OutputPump::OutputPump(Sink sink, int read_fd, int write_fd, int stop_fd)
    : sink_(std::move(sink)),
      read_fd_(read_fd),
      write_fd_(write_fd),
      stop_fd_(stop_fd) {}

OutputPump::~OutputPump() {
  CloseWriteEnd();
  if (thread_.joinable()) Finish(absl::ZeroDuration());
  ::close(read_fd_);
  ::close(stop_fd_);
}

void OutputPump::CloseWriteEnd() {
  if (write_fd_ >= 0) {
    ::close(write_fd_);
    write_fd_ = -1;
  }
}

bool OutputPump::Finish(absl::Duration timeout) {
  bool eof;
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                 [this] { return eof_; });
    eof = eof_;
  }
  if (!eof) {
    uint64_t one = 1;
    ssize_t ignored = ::write(stop_fd_, &one, sizeof(one));
    (void)ignored;
  }
  if (thread_.joinable()) thread_.join();
  return eof;
}

void OutputPump::Run() {
  char buffer[kChunkBytes];
  while (true) {
    struct pollfd fds[2] = {{read_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    int ready = ::poll(fds, 2, -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    // A stop request wins over pending data: it comes only after the
    // drain timeout, when a writer that escaped the kill keeps the pipe open.
    if (fds[1].revents != 0) return;
    if (fds[0].revents != 0) {
      ssize_t n = ::read(read_fd_, buffer, sizeof(buffer));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) break;  // EOF: every writer is gone.
      bytes_ += static_cast<uint64_t>(n);
      sink_(std::string_view(buffer, static_cast<size_t>(n)));
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  eof_ = true;
  cv_.notify_all();
}

}  // namespace drover::engines::native
