#include "queue/store/pg_pending_notifier.h"

#include <utility>

#include "queue/store/pg_sql.h"

namespace drover::queue::store {
namespace {

PgChannelListener::Options ListenerOptions(PgPendingNotifier::Options o) {
  PgChannelListener::Options options;
  options.connection_string = std::move(o.connection_string);
  options.channel = sql::kPendingChannel;
  options.description = "pending work";
  options.poll_interval = o.poll_interval;
  options.min_backoff = o.min_backoff;
  options.max_backoff = o.max_backoff;
  return options;
}

}  // namespace

PgPendingNotifier::PgPendingNotifier(Options options)
    : listener_(ListenerOptions(std::move(options))) {}

PgPendingNotifier::~PgPendingNotifier() { Stop(); }

absl::Status PgPendingNotifier::Start(Callback callback) {
  return listener_.Start(std::move(callback));
}

void PgPendingNotifier::Stop() { listener_.Stop(); }

}  // namespace drover::queue::store
