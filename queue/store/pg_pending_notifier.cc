#include "queue/store/pg_pending_notifier.h"

#include <memory>

#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/store/pg_sql.h"
#include "queue/store/pg_util.h"
#include "spdlog/spdlog.h"

namespace drover::queue::store {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const PendingNotifier::Callback* cb)
      : pqxx::notification_receiver(conn, sql::kPendingChannel), cb_(cb) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override {
    (*cb_)(payload);
  }

 private:
  const PendingNotifier::Callback* cb_;
};

}  // namespace

// The receiver must be destroyed before the connection it is registered
// with, hence the member order and the explicit reset.
struct PgPendingNotifier::Listener {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<Receiver> receiver;
  ~Listener() { receiver.reset(); }
};

absl::StatusOr<std::shared_ptr<PgPendingNotifier::Listener>>
PgPendingNotifier::Listen(const std::string& connection_string,
                          const Callback* callback) {
  auto listener = std::make_shared<PgPendingNotifier::Listener>();
  DROVER_ASSIGN_OR_RETURN(listener->conn, pg::Connect(connection_string));
  try {
    // The receiver issues LISTEN; get_notifs makes sure it went out now.
    listener->receiver = std::make_unique<Receiver>(*listener->conn, callback);
    listener->conn->get_notifs();
  } catch (...) {
    return pg::CurrentExceptionToStatus("listening for pending work");
  }
  return listener;
}

PgPendingNotifier::PgPendingNotifier(Options options)
    : options_(std::move(options)) {}

PgPendingNotifier::~PgPendingNotifier() { Stop(); }

absl::Status PgPendingNotifier::Start(Callback callback) {
  if (thread_.joinable()) {
    return InputError("notifier", "started", "Start() was already called");
  }
  callback_ = std::move(callback);
  stop_ = false;
  DROVER_ASSIGN_OR_RETURN(auto listener,
                          Listen(options_.connection_string, &callback_));
  connections_++;
  thread_ =
      std::thread([this, listener]() mutable { Loop(std::move(listener)); });
  return absl::OkStatus();
}

void PgPendingNotifier::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void PgPendingNotifier::Loop(std::shared_ptr<Listener> listener) {
  absl::Duration backoff = options_.min_backoff;
  const long poll_us =
      static_cast<long>(absl::ToInt64Microseconds(options_.poll_interval));
  while (!stop_) {
    if (listener == nullptr) {
      auto next = Listen(options_.connection_string, &callback_);
      if (!next.ok()) {
        spdlog::warn("pending-work listener: {}; retrying in {}",
                     std::string(next.status().message()),
                     absl::FormatDuration(backoff));
        // Sleep in slices so Stop() stays prompt.
        absl::Time until = absl::Now() + backoff;
        while (!stop_ && absl::Now() < until) {
          absl::SleepFor(std::min(options_.poll_interval, until - absl::Now()));
        }
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      listener = std::move(next).value();
      connections_++;
      backoff = options_.min_backoff;
      spdlog::info("pending-work listener reconnected");
      callback_("");  // Anything may have arrived while we were away.
    }
    try {
      listener->conn->await_notification(poll_us / 1000000, poll_us % 1000000);
      // await_notification does not notice a dead server by itself.
      if (!listener->conn->is_open()) throw pqxx::broken_connection();
    } catch (const std::exception& e) {
      spdlog::warn("pending-work listener lost its connection: {}", e.what());
      listener.reset();
    }
  }
  listener.reset();
}

}  // namespace drover::queue::store
