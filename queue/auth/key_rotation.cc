#include "queue/auth/key_rotation.h"

#include <utility>

#include "common/status.h"

namespace drover::queue::auth {

absl::StatusOr<std::vector<ColumnRotation>> RotateKeys(
    const std::vector<EncryptedColumn*>& columns,
    const crypto::KeyRing& keyring, int batch, std::ostream* progress) {
  if (batch < 1) {
    return InputError("batch", std::to_string(batch),
                      "the rotation batch size must be at least 1");
  }
  std::vector<ColumnRotation> report;
  for (EncryptedColumn* column : columns) {
    ColumnRotation rotation;
    rotation.column = std::string(column->column_name());
    std::string after;
    while (true) {
      DROVER_ASSIGN_OR_RETURN(RotationBatch done,
                              column->RotateBatch(keyring, after, batch));
      rotation.reencrypted += done.reencrypted;
      for (std::string& key : done.failed) {
        rotation.failed.push_back(std::move(key));
      }
      if (progress != nullptr && done.reencrypted > 0) {
        *progress << rotation.column << ": " << rotation.reencrypted
                  << " rows re-encrypted under key "
                  << keyring.current_key_id() << std::endl;
      }
      if (done.done || done.last_key.empty()) break;
      after = std::move(done.last_key);
    }
    DROVER_ASSIGN_OR_RETURN(rotation.by_key_id, column->CountByKeyId());
    report.push_back(std::move(rotation));
  }
  return report;
}

int64_t RowsUnderOldKeys(const std::vector<ColumnRotation>& report,
                         const std::string& current_key_id) {
  int64_t rows = 0;
  for (const ColumnRotation& column : report) {
    for (const auto& [key_id, count] : column.by_key_id) {
      if (key_id != current_key_id) rows += count;
    }
  }
  return rows;
}

}  // namespace drover::queue::auth
