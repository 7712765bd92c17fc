#include "client/graph_submit.h"

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "client/task_json.h"
#include "common/status.h"

namespace drover::client {
namespace {

v1::CreateTaskGraphRequest BatchRequest(const std::string& graph_id,
                                        std::vector<v1::GraphTask>& tasks,
                                        size_t first, size_t last,
                                        bool commit) {
  v1::CreateTaskGraphRequest request;
  request.set_graph_id(graph_id);
  request.mutable_tasks()->Reserve(static_cast<int>(last - first));
  for (size_t i = first; i < last; ++i) {
    *request.add_tasks() = std::move(tasks[i]);
  }
  request.set_commit(commit);
  return request;
}

}  // namespace

absl::StatusOr<v1::CreateTaskGraphResponse> SubmitTaskGraph(
    const QueueClient& queue, std::vector<v1::GraphTask> tasks,
    const GraphSubmitOptions& options) {
  if (options.batch < 1 || options.batch > kMaxGraphBatch) {
    return InputError("batch", std::to_string(options.batch),
                      "must be within 1..10000");
  }
  if (options.batches_in_flight < 1) {
    return InputError("batches_in_flight",
                      std::to_string(options.batches_in_flight),
                      "must be at least 1");
  }
  const size_t batch = static_cast<size_t>(options.batch);
  auto send = [&](const v1::CreateTaskGraphRequest& request)
      -> absl::StatusOr<v1::CreateTaskGraphResponse> {
    absl::Time sent = absl::Now();
    auto response = queue.CreateTaskGraph(request, options.call);
    if (response.ok() && options.on_call) {
      options.on_call(request.tasks_size(), absl::Now() - sent,
                      request.commit());
    }
    return response;
  };
  if (tasks.size() <= batch) {
    return send(BatchRequest("", tasks, 0, tasks.size(), /*commit=*/true));
  }

  const std::string graph_id = NewTaskId();
  // Every batch but the last is staged; the last one commits.
  const size_t staged_batches = (tasks.size() - 1) / batch;
  std::atomic<size_t> next{0};
  absl::Mutex mu;
  absl::Status first_error;  // guarded by mu
  auto failed = [&] {
    absl::MutexLock lock(&mu);
    return !first_error.ok();
  };
  auto stage = [&] {
    for (;;) {
      if (failed()) return;
      size_t b = next.fetch_add(1);
      if (b >= staged_batches) return;
      // Each batch owns its slice of `tasks`, so threads move disjoint
      // elements.
      auto response = send(BatchRequest(graph_id, tasks, b * batch,
                                        (b + 1) * batch, /*commit=*/false));
      if (!response.ok()) {
        absl::MutexLock lock(&mu);
        if (first_error.ok()) first_error = response.status();
        return;
      }
    }
  };
  const int helpers =
      static_cast<int>(std::min<size_t>(options.batches_in_flight,
                                        staged_batches)) - 1;
  std::vector<std::thread> threads;
  threads.reserve(helpers);
  for (int i = 0; i < helpers; ++i) threads.emplace_back(stage);
  stage();
  for (std::thread& t : threads) t.join();
  if (failed()) return first_error;
  return send(BatchRequest(graph_id, tasks, staged_batches * batch,
                           tasks.size(), /*commit=*/true));
}

}  // namespace drover::client
