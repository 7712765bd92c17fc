// RunTransaction: one scoped transaction on a pooled PostgreSQL connection
// for the auth and secrets stores, with libpqxx's exceptions turned into
// statuses.
//
// `fn(txn)` returns an absl::Status or StatusOr; the transaction commits
// only when it is OK and is rolled back otherwise (the Txn destructor).
// Deadlocks, serialization failures and unique-key races are retried from
// scratch a few times, since the loser of such a race is rolled back whole;
// a broken connection is handed back to the pool for reopening.
#ifndef DROVER_QUEUE_AUTH_PG_TRANSACTION_H_
#define DROVER_QUEUE_AUTH_PG_TRANSACTION_H_

#include <string>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/store/pg_pool.h"
#include "queue/store/pg_util.h"

namespace drover::queue::auth {

inline constexpr int kMaxTransactionAttempts = 5;

template <typename Txn, typename Fn>
std::invoke_result_t<Fn, Txn&> RunTransaction(store::PgConnectionPool& pool,
                                              const char* operation, Fn&& fn) {
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
      if (last) return store::pg::CurrentExceptionToStatus(operation);
    } catch (const pqxx::serialization_failure&) {
      if (last) return store::pg::CurrentExceptionToStatus(operation);
    } catch (const pqxx::unique_violation&) {
      if (last) return store::pg::CurrentExceptionToStatus(operation);
    } catch (const pqxx::broken_connection&) {
      lease->MarkBroken();
      return store::pg::CurrentExceptionToStatus(operation);
    } catch (const pqxx::in_doubt_error&) {
      lease->MarkBroken();
      return store::pg::CurrentExceptionToStatus(operation);
    } catch (const pqxx::sql_error& e) {
      const std::string state = e.sqlstate();
      // Data exceptions and CHECK violations: a value that got past
      // validation. Say so instead of blaming the server.
      if (state.rfind("22", 0) == 0 || state == "23514") {
        return MakeError(
            ErrorCode::kInputError,
            absl::StrCat(operation, ": the database rejected a value: ",
                         e.what()),
            {{"operation", operation}, {"sqlstate", state}});
      }
      return store::pg::CurrentExceptionToStatus(operation);
    } catch (...) {
      return store::pg::CurrentExceptionToStatus(operation);
    }
  }
}

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_PG_TRANSACTION_H_
