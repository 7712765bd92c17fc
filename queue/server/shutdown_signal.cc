#include "queue/server/shutdown_signal.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/status.h"

namespace drover::queue::server {
namespace {

// The handler can reach nothing but globals; this is the only one.
int g_pipe[2] = {-1, -1};

void OnSignal(int signo) {
  int saved = errno;
  unsigned char byte = static_cast<unsigned char>(signo);
  [[maybe_unused]] ssize_t n = write(g_pipe[1], &byte, 1);
  errno = saved;
}

}  // namespace

absl::Status ShutdownSignal::Install() {
  if (g_pipe[0] < 0 && pipe2(g_pipe, O_CLOEXEC) != 0) {
    return InternalError(std::string("pipe2: ") + std::strerror(errno));
  }
  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  for (int signo : {SIGTERM, SIGINT}) {
    if (sigaction(signo, &action, nullptr) != 0) {
      return InternalError(std::string("sigaction: ") + std::strerror(errno));
    }
  }
  return absl::OkStatus();
}

int ShutdownSignal::Wait() {
  unsigned char byte = 0;
  for (;;) {
    ssize_t n = read(g_pipe[0], &byte, 1);
    if (n == 1) return byte;
    if (n < 0 && errno == EINTR) continue;
    return 0;
  }
}

void ShutdownSignal::Trigger() { OnSignal(0); }

}  // namespace drover::queue::server
