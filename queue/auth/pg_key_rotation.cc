#include "queue/auth/pg_key_rotation.h"

#include <optional>

#include "queue/store/pg_transaction.h"

namespace drover::queue::auth {

absl::StatusOr<RotationBatch> RotatePgBatch(store::PgConnectionPool& pool,
                                            const PgRotationColumn& column,
                                            const crypto::KeyRing& keyring,
                                            int batch) {
  const std::string current = keyring.current_key_id();
  return store::pg::RunTransaction<pqxx::work>(
      pool, column.operation, store::pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<RotationBatch> {
        RotationBatch done;
        const pqxx::result rows = column.select_batch(txn, current, batch);
        // A short page means nothing under another key is left after the
        // cursor, except rows skipped as locked: their writers store them
        // under the current key anyway.
        done.done = static_cast<int>(rows.size()) < batch;
        for (const pqxx::row& row : rows) {
          const std::string key = column.row_key(row);
          const std::string value = column.ciphertext(row);
          done.last_key = key;
          absl::StatusOr<std::optional<std::string>> again =
              keyring.Reencrypt(value, column.associated_data(key));
          if (!again.ok()) {
            // Unknown key id or a value failing authentication: report it
            // and go on, so one bad row does not block the column.
            done.failed.push_back(key);
            continue;
          }
          // nullopt: the value is already under the current key and only
          // the key id column lagged behind; writing it back fixes that.
          const std::string& replacement = again->has_value() ? **again : value;
          // Compare-and-swap: the write-back matches only while the row
          // still holds `value`, so it never replaces a value other than
          // the one just re-encrypted.
          column.write_back(txn, row, replacement, current, value);
          ++done.reencrypted;
        }
        return done;
      });
}

absl::StatusOr<std::map<std::string, int64_t>> CountPgRowsByKeyId(
    store::PgConnectionPool& pool, const char* operation,
    const char* statement) {
  return store::pg::RunTransaction<pqxx::nontransaction>(
      pool, operation, store::pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<std::map<std::string, int64_t>> {
        std::map<std::string, int64_t> counts;
        for (const pqxx::row& row : txn.exec_prepared(statement)) {
          counts[row[0].c_str()] = row[1].as<int64_t>();
        }
        return counts;
      });
}

}  // namespace drover::queue::auth
