#include "common/rpc/process_defaults.h"

#include "absl/synchronization/mutex.h"

namespace drover::rpc {

void ApplyProcessDefaults() {
  // Our own lock order is kept by design and exercised by the tests; the
  // detector would only abort a production process after the fact.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace drover::rpc
