// ShutdownSignal: lets the main thread wait for SIGTERM or SIGINT.
//
// The handler only writes a byte to a pipe (async-signal-safe); Wait()
// reads it. Signals are not blocked, so child processes (PostgreSQL) keep
// the default disposition.
#ifndef DROVER_QUEUE_SERVER_SHUTDOWN_SIGNAL_H_
#define DROVER_QUEUE_SERVER_SHUTDOWN_SIGNAL_H_

#include "absl/status/status.h"

namespace drover::queue::server {

class ShutdownSignal {
 public:
  // Installs the SIGTERM/SIGINT handlers. One instance per process (the
  // handler is process-wide), created by main. Errors: InternalError when
  // the pipe or handlers cannot be set up.
  absl::Status Install();

  // Blocks until a signal arrives or Trigger() is called; returns the
  // signal number (0 for Trigger). Call from one thread.
  int Wait();

  // Wakes Wait() without a signal. Async-signal-safe, thread-safe.
  void Trigger();
};

}  // namespace drover::queue::server

#endif  // DROVER_QUEUE_SERVER_SHUTDOWN_SIGNAL_H_
