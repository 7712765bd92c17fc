// PgChannelListener: one PostgreSQL NOTIFY channel followed on a dedicated
// connection and thread, for the notifiers that wake waiters in this
// process (PgPendingNotifier for pending work, the artifacts LogNotifier
// for live logs).
//
// Each notification's payload goes to the callback on the listener's
// thread. When the connection drops, the listener reconnects with a
// doubling backoff and then calls the callback once with an empty payload
// ("anything may have changed"): notifications sent while it was away are
// lost, so whoever waits must look again.
#ifndef DROVER_QUEUE_STORE_PG_CHANNEL_LISTENER_H_
#define DROVER_QUEUE_STORE_PG_CHANNEL_LISTENER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace drover::queue::store {

class PgChannelListener {
 public:
  using Callback = std::function<void(const std::string& payload)>;

  struct Options {
    std::string connection_string;
    // The channel to LISTEN on.
    std::string channel;
    // What is listened for, in log lines and errors ("pending work").
    std::string description;
    // How often the listening thread checks for Stop().
    absl::Duration poll_interval = absl::Milliseconds(200);
    // Reconnect backoff, doubling from min to max.
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
  };

  explicit PgChannelListener(Options options);
  // Calls Stop().
  ~PgChannelListener();

  PgChannelListener(const PgChannelListener&) = delete;
  PgChannelListener& operator=(const PgChannelListener&) = delete;

  // Connects and LISTENs before returning, so a notification committed
  // after Start() returns is delivered. The callback must be thread-safe
  // and quick: it runs on the listener's thread, which reads nothing else
  // meanwhile. Errors: InternalError when the first connection fails;
  // InputError (field "notifier") when already started. Not thread-safe
  // against Stop().
  absl::Status Start(Callback callback);
  // Stops the thread and closes the connection. Idempotent.
  void Stop();

  // Number of (re)connections made; for tests and metrics. Thread-safe.
  int connections() const { return connections_.load(); }

 private:
  struct Connection;  // A LISTENing connection (pg_channel_listener.cc).
  absl::StatusOr<std::shared_ptr<Connection>> Listen();
  void Loop(std::shared_ptr<Connection> connection);

  const Options options_;
  Callback callback_;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_PG_CHANNEL_LISTENER_H_
