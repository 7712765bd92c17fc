// Unary RPC calls with a deadline, credentials and retries: the one loop
// every service client in client/ uses.
//
// A call has one deadline covering all its attempts. UNAVAILABLE (the server
// is unreachable, restarting or shedding load) is retried with exponential
// backoff and jitter, but only for idempotent methods: repeating a
// non-idempotent one could apply it twice. Every other failure is returned
// at once, decoded with rpc::FromGrpcStatus so it keeps its
// {code, message, details}.
#ifndef DROVER_CLIENT_CALL_H_
#define DROVER_CLIENT_CALL_H_

#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "common/rpc/grpc_status.h"
#include "grpcpp/client_context.h"

namespace drover::client {

struct RetryPolicy {
  // Total attempts, the first included; 1 disables retries.
  int max_attempts = 5;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(3);
  double multiplier = 2.0;
};

struct CallOptions {
  // Deadline for the whole call, retries included. Long-polling calls
  // (ClaimWork) need more than the server's poll time.
  absl::Duration timeout = absl::Seconds(30);
  RetryPolicy retry;
};

enum class Idempotency { kIdempotent, kNotIdempotent };

// The wait before attempt `attempt` + 1 (attempt counts from 1), before
// jitter: initial_backoff * multiplier^(attempt-1), capped at max_backoff.
absl::Duration BackoffBeforeRetry(const RetryPolicy& policy, int attempt);

// Draws a jittered wait in [backoff/2, backoff]. Thread-safe.
absl::Duration Jitter(absl::Duration backoff);

// Whether a failed attempt should be repeated.
bool ShouldRetry(const absl::Status& status, Idempotency idempotency);

// Runs `invoke(grpc::ClientContext*, Response*) -> grpc::Status` until it
// succeeds, fails for good, runs out of attempts or reaches the deadline.
// Thread-safe if `invoke` is (gRPC stubs are).
template <typename Response, typename Invoke>
absl::StatusOr<Response> CallUnary(const Connection& connection,
                                   const CallOptions& options,
                                   Idempotency idempotency, Invoke&& invoke) {
  const absl::Time deadline = absl::Now() + options.timeout;
  absl::Status last;
  const int attempts =
      options.retry.max_attempts < 1 ? 1 : options.retry.max_attempts;
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    grpc::ClientContext context;
    connection.PrepareContext(&context, deadline);
    Response response;
    grpc::Status status = invoke(&context, &response);
    if (status.ok()) return response;
    last = rpc::FromGrpcStatus(status);
    if (attempt == attempts || !ShouldRetry(last, idempotency)) break;
    absl::Duration wait = Jitter(BackoffBeforeRetry(options.retry, attempt));
    // Sleeping past the deadline would only turn the real error into
    // DEADLINE_EXCEEDED.
    if (absl::Now() + wait >= deadline) break;
    absl::SleepFor(wait);
  }
  return last;
}

}  // namespace drover::client

#endif  // DROVER_CLIENT_CALL_H_
