// SubmitTaskGraph: creates a task graph of any size through CreateTaskGraph,
// all tasks or none.
//
// A graph that fits in one call goes in one call. A larger one is staged in
// batches under a fresh graph id, several batches at once (the server
// validates one batch while PostgreSQL stores another), and committed by a
// last call that carries the last batch once every staged batch has been
// accepted. Staging is idempotent on the server, so each call is retried on
// UNAVAILABLE like any CreateTaskGraph call (client/queue_client.h).
#ifndef DROVER_CLIENT_GRAPH_SUBMIT_H_
#define DROVER_CLIENT_GRAPH_SUBMIT_H_

#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/queue_client.h"
#include "drover/v1/queue.pb.h"

namespace drover::client {

// The server's limit of tasks per CreateTaskGraph call.
inline constexpr int kMaxGraphBatch = 10000;

struct GraphSubmitOptions {
  // Tasks per call, 1..kMaxGraphBatch.
  int batch = 5000;
  // Staging calls sent at once, >= 1.
  int batches_in_flight = 2;
  // Options of every call; unset: the client's defaults.
  QueueClient::Options call;
  // Called after every accepted call, from the thread that made it (so
  // possibly several at once), with the call's tasks, its duration and
  // whether it was the commit.
  std::function<void(int tasks, absl::Duration took, bool commit)> on_call;
};

// Sends `tasks` (moved from) as one graph. Returns the commit's answer.
// Errors: InputError naming `batch` or `batches_in_flight` when out of
// range; otherwise the first failed call's error, after which no further
// call is sent and nothing is created (an uncommitted stage is discarded by
// the server a day later).
// Thread-safe as QueueClient is; blocks until the commit answers.
absl::StatusOr<v1::CreateTaskGraphResponse> SubmitTaskGraph(
    const QueueClient& queue, std::vector<v1::GraphTask> tasks,
    const GraphSubmitOptions& options = {});

}  // namespace drover::client

#endif  // DROVER_CLIENT_GRAPH_SUBMIT_H_
