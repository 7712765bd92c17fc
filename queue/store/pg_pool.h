// PgConnectionPool: up to a fixed number of PostgreSQL connections, each
// with the store's statements prepared, handed out one caller at a time.
//
// The pool opens one connection at creation and the others when concurrent
// callers first need them, so idle connections only exist where there was
// concurrency to use them. A connection that breaks is dropped and reopened
// (with its statements) by a later Acquire, so a database restart costs the
// calls in flight, not the process.
//
// PgConnectionSettings and OpenPool: the database options the smaller
// stores (auth, secrets, worker manager, artifacts) share, and their pool.
#ifndef DROVER_QUEUE_STORE_PG_POOL_H_
#define DROVER_QUEUE_STORE_PG_POOL_H_

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "pqxx/pqxx"

namespace drover::queue::store {

// A named SQL statement with $n parameters.
struct PreparedStatement {
  const char* name;
  const char* sql;
};

class PgConnectionPool {
 public:
  struct Options {
    std::string connection_string;
    int size = 8;
    // Acquire gives up after waiting this long for a free connection.
    absl::Duration acquire_timeout = absl::Seconds(30);
    // Session settings (SET name = value) of every connection; libpqxx
    // restores them if it transparently re-establishes a connection.
    std::map<std::string, std::string> session_variables;
    // A connection's cached plans older than this are discarded (DISCARD
    // PLANS) when it is next leased, so that generic plans follow the
    // tables: a plan built while a table was nearly empty (a new database,
    // an idle queue) scans it whole once it has grown. Zero: never.
    absl::Duration plan_refresh_interval = absl::ZeroDuration();
  };

  // Exclusive use of one connection until destroyed.
  class Lease {
   public:
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), slot_(other.slot_) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    pqxx::connection& connection();
    // The connection is unusable (lost, or left in an unknown state); the
    // pool reopens it on next use.
    void MarkBroken();

   private:
    friend class PgConnectionPool;
    Lease(PgConnectionPool* pool, size_t slot) : pool_(pool), slot_(slot) {}
    PgConnectionPool* pool_;
    size_t slot_;
  };

  // Opens the first connection and prepares `statements` on it (the others
  // open on demand, with the same statements). Errors:
  // InputError (field "pool_size") for size < 1; InternalError when the
  // database cannot be reached or a statement does not prepare (naming it).
  static absl::StatusOr<std::unique_ptr<PgConnectionPool>> Create(
      Options options, std::vector<PreparedStatement> statements);

  // Waits for a free connection, preferring one already open; opens one
  // (a new slot's, or a broken one's replacement) when no open connection
  // is free. Thread-safe. Errors: InternalError when none frees up in time
  // or connecting fails.
  absl::StatusOr<Lease> Acquire();

  int size() const { return static_cast<int>(slots_.size()); }

 private:
  struct Slot {
    std::unique_ptr<pqxx::connection> conn;
    bool in_use = false;
    // When the connection's cached plans were last discarded (or it opened).
    absl::Time plans_since;
  };

  PgConnectionPool(Options options, std::vector<PreparedStatement> statements);
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Open();
  void Release(size_t slot);

  Options options_;
  std::vector<PreparedStatement> statements_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<Slot> slots_;  // Guarded by mu_ (the connections themselves
                             // belong to whoever holds the lease).
};

// Where a store's pool connects, how many connections it keeps and how long
// a call waits for one. The options of the stores that need nothing else
// from the pool inherit it, so they are set the same way everywhere.
struct PgConnectionSettings {
  // libpq connection string.
  std::string connection_string;
  // Most connections open at once; each call holds one for its duration.
  int pool_size = 4;
  // How long a call waits for a free connection before InternalError.
  absl::Duration acquire_timeout = absl::Seconds(30);
};

// Opens a pool per `settings` (the other PgConnectionPool::Options at their
// defaults) and prepares `statements` on each connection. Errors: as
// PgConnectionPool::Create.
absl::StatusOr<std::unique_ptr<PgConnectionPool>> OpenPool(
    const PgConnectionSettings& settings,
    std::vector<PreparedStatement> statements);

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_PG_POOL_H_
