// ClaimLongPoll: the waiting half of ClaimWork.
//
// A ClaimWork call first tries the store. When the queue is empty its
// reactor is parked here, keyed by task queue, until work may have arrived
// (a PendingNotifier notification or a local create), the periodic safety
// poll fires, the poll timeout passes (answered with no tasks) or the
// client cancels. Parked calls cost no thread: all store calls run on the
// BoundedExecutor and the reactor is finished from there.
//
// Wake-ups are debounced per queue: a notification marks the queue dirty
// and starts at most one claim attempt (for the oldest parked call); an
// attempt that finds work starts up to two more, so a burst of tasks fans
// out to the waiting workers while an empty queue costs one query per
// wake-up, not one per waiter.
#ifndef DROVER_QUEUE_QUEUE_SERVICE_CLAIM_LONG_POLL_H_
#define DROVER_QUEUE_QUEUE_SERVICE_CLAIM_LONG_POLL_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "drover/v1/queue.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "queue/queue_service/executor.h"
#include "queue/queue_service/task_credentials.h"
#include "queue/queue_service/worker_gate.h"
#include "queue/store/store.h"

namespace drover::queue::queue_service {

struct ClaimLongPollOptions {
  // How long a ClaimWork call waits for work before answering empty.
  absl::Duration poll_timeout = absl::Seconds(20);
  // Parked calls retry the store this often even without notifications,
  // the safety net for lost NOTIFYs.
  absl::Duration safety_poll_interval = absl::Seconds(1);
  // taken_until = now + claim_timeout for claimed runs.
  absl::Duration claim_timeout = absl::Minutes(20);
  // Concurrent claim attempts per queue started by wake-ups.
  int max_parallel_attempts = 4;
};

class ClaimLongPoll {
 public:
  // Runs checks that must pass before claiming (authorisation and request
  // validation) on the executor; a non-OK status answers the call.
  using Precheck = std::function<absl::Status()>;

  // `store` and `executor` must outlive this object.
  ClaimLongPoll(ClaimLongPollOptions options, store::Store* store,
                BoundedExecutor* executor);
  // Calls Shutdown().
  ~ClaimLongPoll();

  ClaimLongPoll(const ClaimLongPoll&) = delete;
  ClaimLongPoll& operator=(const ClaimLongPoll&) = delete;

  // Starts serving one ClaimWork call and returns its reactor, which
  // finishes it exactly once. Call from the gRPC handler; does not block.
  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* context,
                                  const v1::ClaimWorkRequest* request,
                                  v1::ClaimWorkResponse* response,
                                  Precheck precheck);

  // Work may have arrived on `task_queue_id` (empty: on any queue): wakes
  // its parked calls (debounced). Thread-safe, cheap, never blocks on the
  // store.
  void Wake(const std::string& task_queue_id);

  // Answers every parked call with no tasks and stops parking new ones
  // (they get one attempt and their answer). Idempotent. In-flight attempts
  // finish on the executor, which the caller drains afterwards.
  void Shutdown();

  // Calls currently parked, over all queues (for metrics and tests).
  size_t parked() const;

  // Claimed tasks get credentials from `issuer` (null: none). Call before
  // serving; `issuer` must outlive this object.
  void SetTaskCredentialsIssuer(const TaskCredentialsIssuer* issuer) {
    issuer_ = issuer;
  }
  // Claims ask `gate` first and report to it afterwards (null: every
  // worker may claim). Call before serving; `gate` must outlive this
  // object.
  void SetWorkerGate(WorkerGate* gate) { gate_.store(gate); }

 private:
  class Call;
  struct QueueEntry {
    std::list<Call*> parked;  // Oldest first.
    int attempting = 0;
    // Work may exist that no running attempt will see.
    bool dirty = false;
  };
  using SteadyTime = std::chrono::steady_clock::time_point;

  void Begin(Call* call);
  void Attempt(Call* call);
  // Launches up to `budget` attempts for a dirty queue. Needs mu_.
  void PumpLocked(QueueEntry& entry, int budget);
  void ForgetIfIdleLocked(const std::string& queue_id);
  void Cancel(Call* call);
  void TimerLoop();

  const ClaimLongPollOptions options_;
  store::Store* const store_;
  BoundedExecutor* const executor_;
  const TaskCredentialsIssuer* issuer_ = nullptr;
  // Atomic so it may be set while calls are served (tests do).
  std::atomic<WorkerGate*> gate_{nullptr};

  mutable std::mutex mu_;
  std::condition_variable timer_cv_;
  std::map<std::string, QueueEntry> queues_;
  size_t parked_count_ = 0;
  bool shutting_down_ = false;
  std::thread timer_;
};

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_CLAIM_LONG_POLL_H_
