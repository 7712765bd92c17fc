// RunTransaction: the one way the PostgreSQL-backed stores (PgStore, the
// auth, secrets, worker-manager and artifact stores) run a transaction on a
// pooled connection, with libpqxx's exceptions turned into statuses and the
// transactions PostgreSQL aborted to break a race retried.
#ifndef DROVER_QUEUE_STORE_PG_TRANSACTION_H_
#define DROVER_QUEUE_STORE_PG_TRANSACTION_H_

#include <type_traits>

#include "pqxx/pqxx"
#include "queue/store/pg_pool.h"
#include "queue/store/pg_util.h"

namespace drover::queue::store::pg {

// Attempts RunTransaction makes before it gives up on a retryable error.
inline constexpr int kMaxTransactionAttempts = 5;

// What RunTransaction does when a statement violates a unique key
// (pqxx::unique_violation, SQLSTATE 23505).
enum class UniqueViolation {
  // Run the transaction again from scratch. For stores whose inserts are
  // "create unless it exists": when two callers create the same new key at
  // once, the loser's retry finds the winner's row and answers as if it had
  // come second.
  kRetry,
  // Treat it like any other SQL error: InternalError at once. For stores
  // (PgStore) that settle the key conflicts they expect themselves, with ON
  // CONFLICT or a catch inside `fn`.
  kFail,
};

// Runs `fn(txn)` in a transaction of type Txn (pqxx::work,
// pqxx::read_transaction, or pqxx::nontransaction for single statements) on
// a connection leased from `pool`. `fn` returns an absl::Status or StatusOr,
// which RunTransaction returns.
//
// Commits only when `fn` returns OK; otherwise (and when anything throws)
// Txn's destructor rolls the transaction back (a nontransaction's
// statements take effect as they run). Deadlocks and serialization
// failures, and unique-key violations when `unique_violation` is kRetry,
// are retried from scratch with a new lease, up to kMaxTransactionAttempts
// attempts in all, since PostgreSQL rolled the loser of such a race back
// whole; so `fn` may run more than once (whatever it does outside `txn`
// happens again). A lost connection (pqxx::broken_connection) or a commit
// of unknown outcome (pqxx::in_doubt_error) marks the lease broken, so the
// pool reopens the connection, and is not retried: the work may or may not
// have happened.
//
// Errors: whatever `fn` returns; the pool's Acquire errors; InputError
// (details: operation, sqlstate) when the database rejected a value (a data
// exception or CHECK violation that got past validation); otherwise
// InternalError naming `operation` (and the SQLSTATE for SQL errors), also
// when the retries run out.
template <typename Txn, typename Fn>
std::invoke_result_t<Fn, Txn&> RunTransaction(PgConnectionPool& pool,
                                              const char* operation,
                                              UniqueViolation unique_violation,
                                              Fn&& fn) {
  for (int attempt = 1;; ++attempt) {
    auto lease = pool.Acquire();
    if (!lease.ok()) return lease.status();
    const bool last = attempt >= kMaxTransactionAttempts;
    try {
      Txn txn(lease->connection());
      auto result = fn(txn);
      if (result.ok()) txn.commit();
      return result;
    } catch (const pqxx::deadlock_detected&) {
      if (last) return CurrentExceptionToStatus(operation);
    } catch (const pqxx::serialization_failure&) {
      if (last) return CurrentExceptionToStatus(operation);
    } catch (const pqxx::unique_violation& e) {
      if (unique_violation == UniqueViolation::kFail) {
        return SqlErrorToStatus(e, operation);
      }
      if (last) return CurrentExceptionToStatus(operation);
    } catch (const pqxx::broken_connection&) {
      lease->MarkBroken();
      return CurrentExceptionToStatus(operation);
    } catch (const pqxx::in_doubt_error&) {
      lease->MarkBroken();
      return CurrentExceptionToStatus(operation);
    } catch (const pqxx::sql_error& e) {
      return SqlErrorToStatus(e, operation);
    } catch (...) {
      return CurrentExceptionToStatus(operation);
    }
  }
}

}  // namespace drover::queue::store::pg

#endif  // DROVER_QUEUE_STORE_PG_TRANSACTION_H_
