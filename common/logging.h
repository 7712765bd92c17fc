// Process-wide log setup on spdlog: human-readable text or one JSON object
// per line for log shippers. Called once from main.
#ifndef DROVER_COMMON_LOGGING_H_
#define DROVER_COMMON_LOGGING_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace drover {

enum class LogFormat { kText, kJson };

struct LogOptions {
  LogFormat format = LogFormat::kText;
  // trace, debug, info, warn, error, critical, off.
  std::string level = "info";
};

// Parses "text"/"json". Errors: InputError naming `field`.
absl::Status ParseLogFormat(std::string_view value, std::string_view field,
                            LogFormat* out);

// Installs the default spdlog logger (stderr). Not thread-safe against
// concurrent logging; call before starting threads.
absl::Status SetUpLogging(const LogOptions& options);

}  // namespace drover

#endif  // DROVER_COMMON_LOGGING_H_
