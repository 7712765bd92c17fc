#include "queue/artifacts/log_notifier.h"

#include <utility>

#include "queue/artifacts/artifact_store.h"

namespace drover::queue::artifacts {
namespace {

store::PgChannelListener::Options ListenerOptions(LogNotifier::Options o) {
  store::PgChannelListener::Options options;
  options.connection_string = std::move(o.connection_string);
  options.channel = std::string(kLogChannel);
  options.description = "live-log changes";
  options.poll_interval = o.poll_interval;
  options.min_backoff = o.min_backoff;
  options.max_backoff = o.max_backoff;
  return options;
}

}  // namespace

LogNotifier::LogNotifier(Options options)
    : listener_(ListenerOptions(std::move(options))) {}

LogNotifier::~LogNotifier() { Stop(); }

absl::Status LogNotifier::Start(Callback callback) {
  return listener_.Start(std::move(callback));
}

void LogNotifier::Stop() { listener_.Stop(); }

}  // namespace drover::queue::artifacts
