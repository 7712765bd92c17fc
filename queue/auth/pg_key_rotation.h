// The PostgreSQL side of key rotation (queue/auth/key_rotation.h), shared
// by every store that keeps KeyRing ciphertexts in a column (secrets.value,
// workers.reregistration_secret, ...): the batch loop behind
// EncryptedColumn::RotateBatch and the "rows per key id" count behind
// EncryptedColumn::CountByKeyId. A store describes what is its own (its
// statements, how a row names itself, its associated data) in a
// PgRotationColumn and forwards its EncryptedColumn methods here.
#ifndef DROVER_QUEUE_AUTH_PG_KEY_ROTATION_H_
#define DROVER_QUEUE_AUTH_PG_KEY_ROTATION_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common/crypto/keyring.h"
#include "pqxx/pqxx"
#include "queue/auth/key_rotation.h"
#include "queue/store/pg_pool.h"

namespace drover::queue::auth {

// One store's encrypted column, for one RotatePgBatch call. Every callback
// runs inside the rotation transaction; libpqxx exceptions they throw roll
// the whole batch back and come out as the store's InternalError.
struct PgRotationColumn {
  // Names the transaction in errors (e.g. "RotateSecrets").
  const char* operation = "";
  // Runs the store's selection: up to `batch` rows whose key id is not
  // `current_key_id`, after the caller's cursor, in primary-key order,
  // locked FOR UPDATE SKIP LOCKED so that rows being written are skipped.
  std::function<pqxx::result(pqxx::work& txn, const std::string& current_key_id,
                             int batch)>
      select_batch;
  // The row's primary key as RotationBatch reports it (last_key, failed).
  std::function<std::string(const pqxx::row& row)> row_key;
  // The row's stored ciphertext.
  std::function<std::string(const pqxx::row& row)> ciphertext;
  // The associated data the ciphertext was made with; it may point into
  // `row_key`, which outlives it.
  std::function<crypto::AssociatedData(const std::string& row_key)>
      associated_data;
  // Stores `replacement` under `current_key_id` in `row`, but only where the
  // row still holds `previous` (compare-and-swap on the ciphertext).
  std::function<void(
      pqxx::work& txn, const pqxx::row& row, const std::string& replacement,
      const std::string& current_key_id, const std::string& previous)>
      write_back;
};

// EncryptedColumn::RotateBatch for `column` on `pool`: one transaction that
// re-encrypts up to `batch` selected rows under keyring.current_key_id().
// Rows that fail to decrypt are listed in `failed` and left unchanged.
// Thread-safe as far as `pool` and the callbacks are. Errors: the
// transaction's (queue/store/pg_transaction.h); nothing changes then.
absl::StatusOr<RotationBatch> RotatePgBatch(store::PgConnectionPool& pool,
                                            const PgRotationColumn& column,
                                            const crypto::KeyRing& keyring,
                                            int batch);

// EncryptedColumn::CountByKeyId: runs the prepared `statement`, whose rows
// are (key id, row count), and collects them. Thread-safe. Errors: the
// transaction's, named `operation`.
absl::StatusOr<std::map<std::string, int64_t>> CountPgRowsByKeyId(
    store::PgConnectionPool& pool, const char* operation,
    const char* statement);

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_PG_KEY_ROTATION_H_
