// Resolvers: the background loops every drover-queue replica runs.
//
// Each loop calls one Store batch operation (claim expiry, deadlines,
// expiry cleanup, task-group resolution, event retention). The store takes rows with FOR UPDATE SKIP LOCKED, so
// replicas share the work through the database alone: no leader, no
// coordination in memory. A loop that handled a full batch goes again at
// once (there is probably more); otherwise it sleeps its interval.
#ifndef DROVER_QUEUE_RESOLVERS_RESOLVERS_H_
#define DROVER_QUEUE_RESOLVERS_RESOLVERS_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "queue/store/store.h"

namespace drover::queue::resolvers {

struct ResolverOptions {
  // Rows handled per transaction.
  int batch = 100;
  absl::Duration claim_expiry_interval = absl::Seconds(5);
  absl::Duration deadline_interval = absl::Seconds(10);
  absl::Duration expiry_interval = absl::Minutes(5);
  // task-group-resolved announcements (how late they may come).
  absl::Duration group_resolution_interval = absl::Seconds(1);
  // Events older than event_retention are deleted, batch by batch.
  absl::Duration event_retention = absl::Hours(24 * 7);
  absl::Duration event_retention_interval = absl::Minutes(5);
};

// What one loop has done so far, for metrics and tests.
struct ResolverStats {
  std::string name;
  int64_t passes = 0;    // Store calls made.
  int64_t resolved = 0;  // Rows handled.
  int64_t errors = 0;    // Store calls that failed.
};

class Resolvers {
 public:
  // `store` must outlive this object.
  Resolvers(ResolverOptions options, store::Store* store);
  // Calls Stop().
  ~Resolvers();

  Resolvers(const Resolvers&) = delete;
  Resolvers& operator=(const Resolvers&) = delete;

  // A loop owned by another component (e.g. "artifact-expiry"), run like
  // the built-in ones: `pass` handles up to `batch` rows and returns how
  // many. Call before Start(); `pass` must stay callable until Stop().
  void AddLoop(std::string name, absl::Duration interval,
               std::function<absl::StatusOr<int>(int batch)> pass);

  // Starts the loops ("claim-expiry", "deadline", "expiry",
  // "task-group-resolution", "event-retention", then the added
  // ones), each on its own thread. Not thread-safe against Stop; call once.
  void Start();

  // Wakes every loop for an immediate pass (tests; operators). Thread-safe.
  void Kick();

  // Stops the loops, waiting for a running store call to return.
  // Idempotent.
  void Stop();

  // Thread-safe snapshot.
  std::vector<ResolverStats> Stats() const;

 private:
  struct Loop {
    std::string name;
    absl::Duration interval;
    std::function<absl::StatusOr<int>(int batch)> pass;
    ResolverStats stats;
    std::thread thread;
  };

  void RunLoop(Loop* loop);

  const ResolverOptions options_;
  store::Store* const store_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint64_t kicks_ = 0;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::vector<std::unique_ptr<Loop>> added_;
};

}  // namespace drover::queue::resolvers

#endif  // DROVER_QUEUE_RESOLVERS_RESOLVERS_H_
