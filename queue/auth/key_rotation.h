// Key rotation of encrypted columns (common/crypto/keyring.h), driven by
// `drover-queue rotate-keys`.
//
// Every table column holding KeyRing ciphertexts implements
// EncryptedColumn (the secrets store for secrets.value, later the worker
// manager for re-registration secrets, ...). RotateKeys walks each column
// in primary-key order, in batches of short transactions: rows whose
// key id is not the ring's current one are decrypted and encrypted again
// under it. The server keeps serving meanwhile (rows being written are
// skipped, not waited for: they are written under the current key anyway
// by a server configured with it). Interrupted, it simply runs again:
// finished rows no longer match.
//
// Procedure: add the new key as the LAST entry of every replica's key
// configuration and restart them (new values now use it), run
// `drover-queue rotate-keys`, then remove the old key once it reports no
// row left under it.
#ifndef DROVER_QUEUE_AUTH_KEY_ROTATION_H_
#define DROVER_QUEUE_AUTH_KEY_ROTATION_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/crypto/keyring.h"

namespace drover::queue::auth {

struct RotationBatch {
  // Rows now under the current key.
  int reencrypted = 0;
  // Primary keys of rows that could not be decrypted (unknown key id or a
  // value that fails authentication); left unchanged.
  std::vector<std::string> failed;
  // Primary key of the last row looked at; the next batch starts after it.
  std::string last_key;
  // No rows under other keys after `after` remain (the batch was short).
  bool done = false;
};

class EncryptedColumn {
 public:
  virtual ~EncryptedColumn() = default;

  // "table.column", for reports.
  virtual std::string_view column_name() const = 0;

  // Re-encrypts up to `batch` rows, with primary key greater than `after`
  // ("" to start), whose key id is not keyring.current_key_id(). One
  // transaction; rows locked by writers are skipped. Errors: the store's
  // InternalError (nothing in the batch changes).
  virtual absl::StatusOr<RotationBatch> RotateBatch(
      const crypto::KeyRing& keyring, const std::string& after, int batch) = 0;

  // How many rows are under each key id.
  virtual absl::StatusOr<std::map<std::string, int64_t>> CountByKeyId() = 0;
};

struct ColumnRotation {
  std::string column;
  int64_t reencrypted = 0;
  std::vector<std::string> failed;
  // After the walk: rows per key id.
  std::map<std::string, int64_t> by_key_id;
};

// Rotates every column, printing progress to `progress` (may be null).
// Returns the per-column report; callers treat rows left under another key
// id (or failures) as incomplete. Errors: InputError("batch") for
// batch < 1; the columns' errors.
absl::StatusOr<std::vector<ColumnRotation>> RotateKeys(
    const std::vector<EncryptedColumn*>& columns,
    const crypto::KeyRing& keyring, int batch, std::ostream* progress);

// Rows of `report` still under a key other than `current_key_id`.
int64_t RowsUnderOldKeys(const std::vector<ColumnRotation>& report,
                         const std::string& current_key_id);

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_KEY_ROTATION_H_
