// TimestampingLogSink: a LogSink wrapper that starts every line with the
// worker's time ("2024-05-01T12:00:00.123Z "), so a task log shows when each
// line arrived even for tasks that print no times of their own.
#ifndef DROVER_PLUGINS_LOGPREFIX_TIMESTAMPING_LOG_SINK_H_
#define DROVER_PLUGINS_LOGPREFIX_TIMESTAMPING_LOG_SINK_H_

#include <mutex>
#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "common/clock.h"
#include "engines/engine.h"

namespace drover::plugins::logprefix {

// "2024-05-01T12:00:00.123Z": UTC, millisecond precision.
std::string FormatLogTime(absl::Time time);

class TimestampingLogSink final : public engines::LogSink {
 public:
  // Neither is owned; both outlive the sink.
  TimestampingLogSink(engines::LogSink* inner, const Clock& clock)
      : inner_(inner), clock_(clock) {}

  // Thread-safe. A line's stamp is the time its first byte arrived; all
  // lines starting in one Write share it. Memory per call is bounded by the
  // chunk written.
  void Write(std::string_view bytes) override;

 private:
  engines::LogSink* const inner_;
  const Clock& clock_;
  std::mutex mu_;
  bool at_line_start_ = true;  // guarded by mu_
};

}  // namespace drover::plugins::logprefix

#endif  // DROVER_PLUGINS_LOGPREFIX_TIMESTAMPING_LOG_SINK_H_
