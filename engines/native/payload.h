// The native engine's task payload:
//
//   {
//     "command": ["argv0", "arg", ...]            one command, or
//                [["argv0", ...], ["argv0", ...]]  several, run in order,
//                                                  stopping at the first
//                                                  non-zero exit;
//     "env": {"NAME": "value", ...},               (applied by the env plugin)
//     "maxRunTime": seconds,                       (enforced by maxruntime)
//     "artifacts": [{...}, ...],                   (the artifacts plugin)
//     "onExitStatus": {"retry": [codes]},          (the exit-status plugin)
//     "mounts": [{...}, ...]                       (the mounts plugin)
//   }
//
// The engine checks the shape of every key it documents so that a bad
// payload fails early with the field named; plugins check their own rules.
#ifndef DROVER_ENGINES_NATIVE_PAYLOAD_H_
#define DROVER_ENGINES_NATIVE_PAYLOAD_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace drover::engines::native {

struct NativePayload {
  // At least one command, each a non-empty argv.
  std::vector<std::vector<std::string>> commands;
};

// The top-level keys above.
std::vector<std::string> NativePayloadKeys();

// Checks `payload` and extracts the commands. Pure and thread-safe.
// Errors: MalformedPayload with details {field, value} naming the first
// offending field, e.g. "payload.command[1][0]", "payload.env.HOME",
// "payload.maxRunTime", "payload.onExitStatus.retry[2]".
absl::StatusOr<NativePayload> ParseNativePayload(const nlohmann::json& payload);

// A MalformedPayload status naming `field` (shared with the tests).
absl::Status MalformedPayloadError(std::string_view field,
                                   const nlohmann::json& value,
                                   std::string_view message);

}  // namespace drover::engines::native

#endif  // DROVER_ENGINES_NATIVE_PAYLOAD_H_
