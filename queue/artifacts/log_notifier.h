// LogNotifier: wakes live-log followers in this process when any replica
// changes a run's log. One dedicated PostgreSQL connection LISTENs on
// kLogChannel (payload "<task_id>/<run_id>", sent by AppendLog and by
// finishing a live log) and hands each payload to the callback on the
// notifier's own thread (store::PgChannelListener).
//
// When the connection drops it reconnects with backoff and then calls the
// callback once with an empty payload ("anything may have changed"), since
// notifications sent meanwhile are lost.
#ifndef DROVER_QUEUE_ARTIFACTS_LOG_NOTIFIER_H_
#define DROVER_QUEUE_ARTIFACTS_LOG_NOTIFIER_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "queue/store/pg_channel_listener.h"

namespace drover::queue::artifacts {

class LogNotifier {
 public:
  using Callback = std::function<void(const std::string& payload)>;

  struct Options {
    std::string connection_string;
    // How often the listening thread checks for Stop().
    absl::Duration poll_interval = absl::Milliseconds(200);
    absl::Duration min_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
  };

  explicit LogNotifier(Options options);
  // Calls Stop().
  ~LogNotifier();

  LogNotifier(const LogNotifier&) = delete;
  LogNotifier& operator=(const LogNotifier&) = delete;

  // Connects and LISTENs before returning, so a change committed after
  // Start() returns is reported. The callback must be thread-safe and
  // quick. Errors: InternalError when the first connection fails;
  // InputError (field "notifier") when already started. Not thread-safe
  // against Stop().
  absl::Status Start(Callback callback);
  // Stops the thread and closes the connection. Idempotent.
  void Stop();

 private:
  store::PgChannelListener listener_;
};

}  // namespace drover::queue::artifacts

#endif  // DROVER_QUEUE_ARTIFACTS_LOG_NOTIFIER_H_
