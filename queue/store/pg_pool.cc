#include "queue/store/pg_pool.h"

#include "common/status.h"
#include "queue/store/pg_util.h"

namespace drover::queue::store {

PgConnectionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Release(slot_);
}

pqxx::connection& PgConnectionPool::Lease::connection() {
  return *pool_->slots_[slot_].conn;
}

void PgConnectionPool::Lease::MarkBroken() {
  std::lock_guard<std::mutex> lock(pool_->mu_);
  pool_->slots_[slot_].conn.reset();
}

PgConnectionPool::PgConnectionPool(Options options,
                                   std::vector<PreparedStatement> statements)
    : options_(std::move(options)), statements_(std::move(statements)) {}

absl::StatusOr<std::unique_ptr<PgConnectionPool>> PgConnectionPool::Create(
    Options options, std::vector<PreparedStatement> statements) {
  if (options.size < 1) {
    return InputError("pool_size", std::to_string(options.size),
                      "the connection pool needs at least one connection");
  }
  std::unique_ptr<PgConnectionPool> pool(
      new PgConnectionPool(std::move(options), std::move(statements)));
  pool->slots_.resize(pool->options_.size);
  // One connection now, so that a wrong address or a statement that does not
  // prepare fails here; the rest open when concurrent calls first need them.
  // A process that rarely runs calls in parallel (a test, a quiet queue)
  // then never pays for connections it does not use, each of which is a
  // server process on the database host.
  Slot& first = pool->slots_.front();
  DROVER_ASSIGN_OR_RETURN(first.conn, pool->Open());
  first.plans_since = absl::Now();
  return pool;
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> PgConnectionPool::Open() {
  DROVER_ASSIGN_OR_RETURN(auto conn, pg::Connect(options_.connection_string));
  for (const auto& [name, value] : options_.session_variables) {
    try {
      conn->set_variable(name, value);
    } catch (...) {
      return pg::CurrentExceptionToStatus("setting " + name +
                                          " on a connection");
    }
  }
  for (const auto& statement : statements_) {
    try {
      conn->prepare(statement.name, statement.sql);
      // Prepare now, not on first use: a broken statement fails at startup
      // and the first real call pays no extra round trip.
      conn->prepare_now(statement.name);
    } catch (...) {
      return pg::CurrentExceptionToStatus(std::string("preparing statement ") +
                                          statement.name);
    }
  }
  return conn;
}

absl::StatusOr<PgConnectionPool::Lease> PgConnectionPool::Acquire() {
  size_t chosen = 0;
  bool needs_open = false;
  bool refresh_plans = false;
  const absl::Time now = absl::Now();
  {
    std::unique_lock<std::mutex> lock(mu_);
    // A free open connection if there is one; otherwise a free slot whose
    // connection is still to open (or was dropped when it broke).
    auto free_slot = [&]() -> bool {
      bool found = false;
      for (size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].in_use) continue;
        if (slots_[i].conn != nullptr) {
          chosen = i;
          return true;
        }
        if (!found) chosen = i;
        found = true;
      }
      return found;
    };
    if (!freed_.wait_for(lock,
                         absl::ToChronoMilliseconds(options_.acquire_timeout),
                         free_slot)) {
      return MakeError(ErrorCode::kInternalError,
                       "no database connection became free in time",
                       {{"pool_size", std::to_string(slots_.size())}});
    }
    slots_[chosen].in_use = true;
    Slot& slot = slots_[chosen];
    needs_open = slot.conn == nullptr;
    refresh_plans = !needs_open &&
                    options_.plan_refresh_interval > absl::ZeroDuration() &&
                    now - slot.plans_since >= options_.plan_refresh_interval;
    // A reopened connection starts without cached plans.
    if (needs_open || refresh_plans) slot.plans_since = now;
  }
  Lease lease(this, chosen);
  if (needs_open) {
    // Reconnect outside the lock; the slot is ours meanwhile.
    auto conn = Open();
    if (!conn.ok()) return conn.status();
    std::lock_guard<std::mutex> lock(mu_);
    slots_[chosen].conn = std::move(conn).value();
  } else if (refresh_plans) {
    try {
      pqxx::nontransaction txn(lease.connection());
      txn.exec0("DISCARD PLANS");
    } catch (...) {
      lease.MarkBroken();
      return pg::CurrentExceptionToStatus("discarding cached plans");
    }
  }
  return lease;
}

void PgConnectionPool::Release(size_t slot) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    slots_[slot].in_use = false;
  }
  freed_.notify_one();
}

absl::StatusOr<std::unique_ptr<PgConnectionPool>> OpenPool(
    const PgConnectionSettings& settings,
    std::vector<PreparedStatement> statements) {
  PgConnectionPool::Options options;
  options.connection_string = settings.connection_string;
  options.size = settings.pool_size;
  options.acquire_timeout = settings.acquire_timeout;
  return PgConnectionPool::Create(std::move(options), std::move(statements));
}

}  // namespace drover::queue::store
