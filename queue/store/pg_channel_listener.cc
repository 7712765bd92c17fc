#include "queue/store/pg_channel_listener.h"

#include <algorithm>
#include <utility>

#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/store/pg_util.h"
#include "spdlog/spdlog.h"

namespace drover::queue::store {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& conn, const std::string& channel,
           const PgChannelListener::Callback* callback)
      : pqxx::notification_receiver(conn, channel), callback_(callback) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override {
    (*callback_)(payload);
  }

 private:
  const PgChannelListener::Callback* callback_;
};

}  // namespace

// The receiver unregisters from its connection when destroyed, so it must
// go first: hence the explicit reset.
struct PgChannelListener::Connection {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<Receiver> receiver;
  ~Connection() { receiver.reset(); }
};

PgChannelListener::PgChannelListener(Options options)
    : options_(std::move(options)) {}

PgChannelListener::~PgChannelListener() { Stop(); }

absl::StatusOr<std::shared_ptr<PgChannelListener::Connection>>
PgChannelListener::Listen() {
  auto connection = std::make_shared<Connection>();
  DROVER_ASSIGN_OR_RETURN(connection->conn,
                          pg::Connect(options_.connection_string));
  try {
    // The receiver issues LISTEN; get_notifs makes sure it went out now.
    connection->receiver = std::make_unique<Receiver>(
        *connection->conn, options_.channel, &callback_);
    connection->conn->get_notifs();
  } catch (...) {
    return pg::CurrentExceptionToStatus("listening for " +
                                        options_.description);
  }
  connections_++;
  return connection;
}

absl::Status PgChannelListener::Start(Callback callback) {
  if (thread_.joinable()) {
    return InputError("notifier", "started", "Start() was already called");
  }
  callback_ = std::move(callback);
  stop_ = false;
  DROVER_ASSIGN_OR_RETURN(auto connection, Listen());
  thread_ = std::thread(
      [this, connection]() mutable { Loop(std::move(connection)); });
  return absl::OkStatus();
}

void PgChannelListener::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void PgChannelListener::Loop(std::shared_ptr<Connection> connection) {
  absl::Duration backoff = options_.min_backoff;
  const long poll_us =
      static_cast<long>(absl::ToInt64Microseconds(options_.poll_interval));
  while (!stop_) {
    if (connection == nullptr) {
      auto next = Listen();
      if (!next.ok()) {
        spdlog::warn("{} listener: {}; retrying in {}", options_.description,
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
      connection = std::move(next).value();
      backoff = options_.min_backoff;
      spdlog::info("{} listener reconnected", options_.description);
      callback_("");  // Anything may have happened while we were away.
    }
    try {
      connection->conn->await_notification(poll_us / 1000000,
                                           poll_us % 1000000);
      // await_notification does not notice a dead server by itself.
      if (!connection->conn->is_open()) throw pqxx::broken_connection();
    } catch (const std::exception& e) {
      spdlog::warn("{} listener lost its connection: {}", options_.description,
                   e.what());
      connection.reset();
    }
  }
  connection.reset();
}

}  // namespace drover::queue::store
