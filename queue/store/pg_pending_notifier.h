// PgPendingNotifier: the PendingNotifier on PostgreSQL LISTEN/NOTIFY.
//
// One dedicated connection per process listens on the channel PgStore
// notifies (payload: the task queue id that got pending work) and hands
// each notification to the callback on the notifier's own thread
// (PgChannelListener). When the connection drops it reconnects with backoff
// and then calls the callback once with an empty task_queue_id ("any
// queue"): notifications sent while it was away are lost, so every waiter
// should look again.
#ifndef DROVER_QUEUE_STORE_PG_PENDING_NOTIFIER_H_
#define DROVER_QUEUE_STORE_PG_PENDING_NOTIFIER_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "queue/store/pg_channel_listener.h"
#include "queue/store/store.h"

namespace drover::queue::store {

class PgPendingNotifier final : public PendingNotifier {
 public:
  struct Options {
    std::string connection_string;
    // How often the listening thread checks for Stop().
    absl::Duration poll_interval = absl::Milliseconds(200);
    // Reconnect backoff, doubling from min to max.
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
  };

  explicit PgPendingNotifier(Options options);
  ~PgPendingNotifier() override;

  // Connects and LISTENs before returning, so a notification committed
  // after Start() returns is delivered. Errors: InternalError when the
  // first connection fails; InputError (field "notifier") when already
  // started. Not thread-safe against Stop().
  absl::Status Start(Callback callback) override;
  // Stops the thread and closes the connection; idempotent.
  void Stop() override;

  // Number of (re)connections made; for tests and metrics. Thread-safe.
  int connections() const { return listener_.connections(); }

 private:
  PgChannelListener listener_;
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_PG_PENDING_NOTIFIER_H_
