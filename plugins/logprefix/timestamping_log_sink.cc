#include "plugins/logprefix/timestamping_log_sink.h"

#include "absl/time/clock.h"

namespace drover::plugins::logprefix {

std::string FormatLogTime(absl::Time time) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", time, absl::UTCTimeZone());
}

void TimestampingLogSink::Write(std::string_view bytes) {
  if (bytes.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  const std::string stamp = FormatLogTime(clock_.Now()) + " ";
  std::string out;
  out.reserve(bytes.size() + stamp.size() * 4);
  size_t start = 0;
  while (start < bytes.size()) {
    if (at_line_start_) out += stamp;
    size_t newline = bytes.find('\n', start);
    if (newline == std::string_view::npos) {
      out.append(bytes.substr(start));
      at_line_start_ = false;
      break;
    }
    out.append(bytes.substr(start, newline + 1 - start));
    at_line_start_ = true;
    start = newline + 1;
  }
  // One write downstream per chunk, under the lock, keeps lines whole when
  // several threads write.
  inner_->Write(out);
}

}  // namespace drover::plugins::logprefix
