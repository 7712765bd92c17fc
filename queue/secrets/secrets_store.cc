#include "queue/secrets/secrets_store.h"

#include <utility>

#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/auth/pg_key_rotation.h"
#include "queue/secrets/secret_sql.h"
#include "queue/store/pg_transaction.h"
#include "queue/store/pg_util.h"

namespace drover::queue::secrets {
namespace {

namespace pg = store::pg;

SecretRecord SecretFromRow(const pqxx::row& row) {
  SecretRecord s;
  s.name = row["name"].c_str();
  s.value = pqxx::binarystring(row["value"]).str();
  s.key_id = row["key_id"].c_str();
  s.expires = pg::OptionalTime(row["expires_us"]);
  s.created = pg::TimeFromMicros(row["created_us"].as<int64_t>());
  s.last_modified = pg::TimeFromMicros(row["last_modified_us"].as<int64_t>());
  return s;
}

}  // namespace

crypto::AssociatedData SecretValueAd(const std::string& name) {
  return {"secrets", "value", name};
}

absl::StatusOr<std::unique_ptr<SecretsStore>> SecretsStore::Open(
    const SecretsStoreOptions& options, const Clock* clock) {
  DROVER_ASSIGN_OR_RETURN(auto pool,
                          store::OpenPool(options, sql::AllStatements()));
  return std::unique_ptr<SecretsStore>(
      new SecretsStore(std::move(pool), clock));
}

absl::Time SecretsStore::Now() const {
  return absl::FromUnixMicros(absl::ToUnixMicros(clock_->Now()));
}

absl::Status SecretsStore::Put(const std::string& name,
                               const std::string& ciphertext,
                               const std::string& key_id,
                               std::optional<absl::Time> expires) {
  const absl::Time now = Now();
  const std::string expires_text =
      expires.has_value() ? pg::TimeParam(*expires) : std::string();
  const char* expires_param =
      expires.has_value() ? expires_text.c_str() : nullptr;
  return pg::RunTransaction<pqxx::work>(
      *pool_, "SetSecret", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::Status {
        txn.exec_prepared("secrets_put", name, pqxx::binarystring(ciphertext),
                          key_id, expires_param, pg::TimeParam(now));
        return absl::OkStatus();
      });
}

absl::StatusOr<SecretRecord> SecretsStore::Get(const std::string& name) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetSecret", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<SecretRecord> {
        pqxx::result rows = txn.exec_prepared("secrets_select", name);
        if (rows.empty()) return NotFoundError("secret", name);
        return SecretFromRow(rows[0]);
      });
}

absl::Status SecretsStore::Remove(const std::string& name) {
  return pg::RunTransaction<pqxx::work>(
      *pool_, "RemoveSecret", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::Status {
        if (txn.exec_prepared("secrets_delete", name).empty()) {
          return NotFoundError("secret", name);
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<store::Page<std::string>> SecretsStore::ListNames(
    const std::string& prefix, const std::string& after, int limit) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ListSecrets", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<store::Page<std::string>> {
        store::Page<std::string> page;
        for (const pqxx::row& row :
             txn.exec_prepared("secrets_list_names", prefix, after,
                               pg::TimeParam(now), limit)) {
          page.items.push_back(row[0].c_str());
        }
        if (static_cast<int>(page.items.size()) >= limit) {
          page.continuation_token = page.items.back();
        }
        return page;
      });
}

absl::StatusOr<int> SecretsStore::DeleteExpired(int batch) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "DeleteExpiredSecrets", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<int> {
        return static_cast<int>(txn.exec_prepared("secrets_delete_expired",
                                                  pg::TimeParam(now), batch)
                                    .size());
      });
}

absl::StatusOr<auth::RotationBatch> SecretsStore::RotateBatch(
    const crypto::KeyRing& keyring, const std::string& after, int batch) {
  auth::PgRotationColumn column;
  column.operation = "RotateSecrets";
  column.select_batch = [&](pqxx::work& txn, const std::string& current,
                            int limit) {
    return txn.exec_prepared("secrets_select_to_rotate", current, after, limit);
  };
  column.row_key = [](const pqxx::row& row) -> std::string {
    return row["name"].c_str();
  };
  column.ciphertext = [](const pqxx::row& row) {
    return pqxx::binarystring(row["value"]).str();
  };
  column.associated_data = SecretValueAd;
  column.write_back =
      [](pqxx::work& txn, const pqxx::row& row, const std::string& replacement,
         const std::string& current, const std::string& previous) {
        txn.exec_prepared("secrets_replace_ciphertext", row["name"].c_str(),
                          pqxx::binarystring(replacement), current,
                          pqxx::binarystring(previous));
      };
  return auth::RotatePgBatch(*pool_, column, keyring, batch);
}

absl::StatusOr<std::map<std::string, int64_t>> SecretsStore::CountByKeyId() {
  return auth::CountPgRowsByKeyId(*pool_, "CountSecretsByKeyId",
                                  "secrets_count_by_key_id");
}

}  // namespace drover::queue::secrets
