#include "client/call.h"

#include <algorithm>

#include "absl/random/random.h"

namespace drover::client {

absl::Duration BackoffBeforeRetry(const RetryPolicy& policy, int attempt) {
  absl::Duration backoff = policy.initial_backoff;
  for (int i = 1; i < attempt && backoff < policy.max_backoff; ++i) {
    backoff = backoff * policy.multiplier;
  }
  return std::min(backoff, policy.max_backoff);
}

absl::Duration Jitter(absl::Duration backoff) {
  // Jitter keeps a fleet of workers that lost the server at the same moment
  // from returning in lockstep. A generator per call: retries are rare, and
  // sharing one would need a lock.
  absl::BitGen gen;
  return backoff * absl::Uniform(gen, 0.5, 1.0);
}

bool ShouldRetry(const absl::Status& status, Idempotency idempotency) {
  return idempotency == Idempotency::kIdempotent &&
         status.code() == absl::StatusCode::kUnavailable;
}

}  // namespace drover::client
