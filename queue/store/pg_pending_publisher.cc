#include "queue/store/pg_pending_publisher.h"

#include <utility>

#include "pqxx/pqxx"
#include "queue/store/pg_sql.h"
#include "queue/store/pg_util.h"
#include "spdlog/spdlog.h"

namespace drover::queue::store {

struct PgPendingPublisher::Sender {
  std::unique_ptr<pqxx::connection> conn;
};

PgPendingPublisher::PgPendingPublisher(Options options)
    : options_(std::move(options)), thread_([this] { Loop(); }) {}

PgPendingPublisher::~PgPendingPublisher() { Stop(); }

void PgPendingPublisher::Publish(const std::vector<std::string>& ids) {
  bool any = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& id : ids) {
      if (id.empty()) continue;
      if (queued_.size() >= options_.max_backlog) break;
      any |= queued_.insert(id).second;
    }
  }
  if (any) cv_.notify_one();
}

void PgPendingPublisher::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void PgPendingPublisher::Loop() {
  Sender sender;
  for (;;) {
    std::vector<std::string> batch;
    bool stopping;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queued_.empty(); });
      stopping = stop_;
      batch.assign(queued_.begin(), queued_.end());
      queued_.clear();
    }
    if (!batch.empty()) {
      try {
        if (sender.conn == nullptr) {
          auto conn = pg::Connect(options_.connection_string);
          if (!conn.ok())
            throw pqxx::broken_connection(conn.status().ToString());
          // A notifying transaction takes a transaction id and so writes a
          // commit record. Waiting for it to reach disk buys nothing
          // (notifications are delivered at commit and never survive a
          // crash) and made every NOTIFY compete for the WAL flush with the
          // claim the same wake-up starts.
          (*conn)->set_variable("synchronous_commit", "off");
          sender.conn = std::move(*conn);
        }
        pqxx::nontransaction txn(*sender.conn);
        txn.exec_params(sql::kNotifyPending, sql::kPendingChannel,
                        pg::TextArrayParam(batch));
        sent_ += batch.size();
      } catch (const std::exception& e) {
        sender.conn.reset();
        spdlog::warn("pending-work notifications not sent ({} queues): {}",
                     batch.size(), e.what());
        std::unique_lock<std::mutex> lock(mu_);
        // Put them back for the next attempt (unless stopping).
        if (!stop_) {
          for (std::string& id : batch) {
            if (queued_.size() >= options_.max_backlog) break;
            queued_.insert(std::move(id));
          }
          cv_.wait_for(lock, absl::ToChronoNanoseconds(options_.retry_backoff),
                       [this] { return stop_; });
        }
      }
    }
    if (stopping) return;
  }
}

}  // namespace drover::queue::store
