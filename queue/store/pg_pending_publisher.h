// PgPendingPublisher: sends the NOTIFYs that tell LISTENing replicas (see
// pg_pending_notifier.h) that a task queue got pending work, outside the
// transactions that made the work pending.
//
// Why not pg_notify inside those transactions: PostgreSQL serialises the
// commit of every notifying transaction behind one database-wide lock that
// is held across the WAL flush, so concurrent creates, resolutions and
// retries stop sharing flushes (group commit) and queue up one flush at a
// time. Instead the committed transactions hand their queue ids to this
// object; one thread coalesces them (a queue named many times is sent
// once) and sends them in one short transaction of its own on its own
// connection. A notification lost to a crash between the two costs a
// parked ClaimWork at most its safety poll.
#ifndef DROVER_QUEUE_STORE_PG_PENDING_PUBLISHER_H_
#define DROVER_QUEUE_STORE_PG_PENDING_PUBLISHER_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"

namespace drover::queue::store {

class PgPendingPublisher {
 public:
  struct Options {
    std::string connection_string;
    // After a failed send, the next attempt waits this long.
    absl::Duration retry_backoff = absl::Milliseconds(200);
    // Queue ids kept while the database is unreachable; beyond this the
    // oldest are dropped (waiters fall back to their safety poll).
    size_t max_backlog = 100000;
  };

  // Starts the sending thread; connects lazily.
  explicit PgPendingPublisher(Options options);
  // Calls Stop().
  ~PgPendingPublisher();

  PgPendingPublisher(const PgPendingPublisher&) = delete;
  PgPendingPublisher& operator=(const PgPendingPublisher&) = delete;

  // Queues a notification for each id (empty ids are ignored). Never
  // blocks on the database. Thread-safe.
  void Publish(const std::vector<std::string>& task_queue_ids);

  // Sends what is queued (one attempt) and stops the thread. Idempotent.
  void Stop();

  // Notifications sent so far (distinct ids per batch). Thread-safe.
  uint64_t sent() const { return sent_.load(); }

 private:
  struct Sender;  // The connection (pg_pending_publisher.cc).
  void Loop();

  const Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::string> queued_;  // Guarded by mu_.
  bool stop_ = false;             // Guarded by mu_.
  std::atomic<uint64_t> sent_{0};
  std::thread thread_;
};

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_PG_PENDING_PUBLISHER_H_
