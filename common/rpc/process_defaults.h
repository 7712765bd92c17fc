// Process-wide settings that every Drover binary applies first thing in
// main, before it starts threads.
#ifndef DROVER_COMMON_RPC_PROCESS_DEFAULTS_H_
#define DROVER_COMMON_RPC_PROCESS_DEFAULTS_H_

namespace drover::rpc {

// Turns off abseil's mutex deadlock detection. It is a debugging aid that
// abseil enables whenever it was built without NDEBUG, as the Debian
// packages are; it then records every absl::Mutex acquisition (gRPC's
// included, several per call) in one process-wide lock graph guarded by a
// global spin lock, which showed up in the server's CPU profile.
// Not thread-safe: call before other threads exist.
void ApplyProcessDefaults();

}  // namespace drover::rpc

#endif  // DROVER_COMMON_RPC_PROCESS_DEFAULTS_H_
