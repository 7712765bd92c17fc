#include "queue/artifacts/log_notifier.h"

#include <algorithm>

#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/artifacts/artifact_store.h"
#include "queue/store/pg_util.h"
#include "spdlog/spdlog.h"

namespace drover::queue::artifacts {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const LogNotifier::Callback* callback)
      : pqxx::notification_receiver(conn, std::string(kLogChannel)),
        callback_(callback) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override {
    (*callback_)(payload);
  }

 private:
  const LogNotifier::Callback* callback_;
};

}  // namespace

// The receiver unregisters from its connection, so it goes first.
struct LogNotifier::Listener {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<Receiver> receiver;
  ~Listener() { receiver.reset(); }
};

LogNotifier::LogNotifier(Options options) : options_(std::move(options)) {}

LogNotifier::~LogNotifier() { Stop(); }

absl::StatusOr<std::shared_ptr<LogNotifier::Listener>> LogNotifier::Listen(
    const std::string& connection_string, const Callback* callback) {
  auto listener = std::make_shared<Listener>();
  DROVER_ASSIGN_OR_RETURN(listener->conn,
                          store::pg::Connect(connection_string));
  try {
    listener->receiver = std::make_unique<Receiver>(*listener->conn, callback);
    // Makes sure the LISTEN has reached the server before Start returns.
    listener->conn->get_notifs();
  } catch (...) {
    return store::pg::CurrentExceptionToStatus(
        "listening for live-log changes");
  }
  return listener;
}

absl::Status LogNotifier::Start(Callback callback) {
  if (thread_.joinable()) {
    return InputError("notifier", "started", "Start() was already called");
  }
  callback_ = std::move(callback);
  stop_ = false;
  DROVER_ASSIGN_OR_RETURN(auto listener,
                          Listen(options_.connection_string, &callback_));
  thread_ =
      std::thread([this, listener]() mutable { Loop(std::move(listener)); });
  return absl::OkStatus();
}

void LogNotifier::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void LogNotifier::Loop(std::shared_ptr<Listener> listener) {
  absl::Duration backoff = options_.min_backoff;
  const int64_t poll_us = absl::ToInt64Microseconds(options_.poll_interval);
  while (!stop_) {
    if (listener == nullptr) {
      auto next = Listen(options_.connection_string, &callback_);
      if (!next.ok()) {
        spdlog::warn("live-log listener: {}; retrying in {}",
                     std::string(next.status().message()),
                     absl::FormatDuration(backoff));
        absl::Time until = absl::Now() + backoff;
        while (!stop_ && absl::Now() < until) {
          absl::SleepFor(std::min(options_.poll_interval, until - absl::Now()));
        }
        backoff = std::min(backoff * 2, options_.max_backoff);
        continue;
      }
      listener = std::move(next).value();
      backoff = options_.min_backoff;
      callback_("");
    }
    try {
      listener->conn->await_notification(poll_us / 1000000, poll_us % 1000000);
      if (!listener->conn->is_open()) throw pqxx::broken_connection();
    } catch (const std::exception& e) {
      spdlog::warn("live-log listener lost its connection: {}", e.what());
      listener.reset();
    }
  }
  listener.reset();
}

}  // namespace drover::queue::artifacts
