// BoundedExecutor: a small fixed pool of threads with a bounded queue.
//
// gRPC callback threads must never block, so handlers hand their blocking
// work (database calls) to this pool and finish the RPC from there. The
// queue is bounded so an overloaded server refuses work at once instead of
// piling up requests it cannot answer in time.
#ifndef DROVER_QUEUE_QUEUE_SERVICE_EXECUTOR_H_
#define DROVER_QUEUE_QUEUE_SERVICE_EXECUTOR_H_

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace drover::queue::queue_service {

class BoundedExecutor {
 public:
  // Starts `threads` (at least 1) workers; at most `max_queued` (at least 1)
  // tasks wait for a free worker.
  BoundedExecutor(int threads, size_t max_queued);
  // Runs everything already queued, then joins the workers.
  ~BoundedExecutor();

  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // Queues `task` to run on a worker. Returns false, without running it,
  // when the queue is full or the executor is shutting down. Thread-safe.
  bool TrySubmit(std::function<void()> task);

  // Stops accepting tasks, runs the ones already queued and joins the
  // workers. Idempotent; must not be called from a worker.
  void Shutdown();

  // Tasks waiting for a worker (for metrics). Thread-safe.
  size_t queued() const;

 private:
  void WorkerLoop();

  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_EXECUTOR_H_
