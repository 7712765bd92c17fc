#include "queue/secrets/secrets_store.h"

#include <utility>

#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/auth/pg_transaction.h"
#include "queue/secrets/secret_sql.h"
#include "queue/store/pg_util.h"

namespace drover::queue::secrets {
namespace {

namespace pg = store::pg;
using auth::RunTransaction;

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
  store::PgConnectionPool::Options pool_options;
  pool_options.connection_string = options.connection_string;
  pool_options.size = options.pool_size;
  pool_options.acquire_timeout = options.acquire_timeout;
  DROVER_ASSIGN_OR_RETURN(auto pool,
                          store::PgConnectionPool::Create(
                              std::move(pool_options), sql::AllStatements()));
  return std::unique_ptr<SecretsStore>(new SecretsStore(std::move(pool), clock));
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
  const char* expires_param = expires.has_value() ? expires_text.c_str()
                                                  : nullptr;
  return RunTransaction<pqxx::work>(
      *pool_, "SetSecret", [&](pqxx::work& txn) -> absl::Status {
        txn.exec_prepared("secrets_put", name, pqxx::binarystring(ciphertext),
                          key_id, expires_param, pg::TimeParam(now));
        return absl::OkStatus();
      });
}

absl::StatusOr<SecretRecord> SecretsStore::Get(const std::string& name) {
  return RunTransaction<pqxx::nontransaction>(
      *pool_, "GetSecret",
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<SecretRecord> {
        pqxx::result rows = txn.exec_prepared("secrets_select", name);
        if (rows.empty()) return NotFoundError("secret", name);
        return SecretFromRow(rows[0]);
      });
}

absl::Status SecretsStore::Remove(const std::string& name) {
  return RunTransaction<pqxx::work>(
      *pool_, "RemoveSecret", [&](pqxx::work& txn) -> absl::Status {
        if (txn.exec_prepared("secrets_delete", name).empty()) {
          return NotFoundError("secret", name);
        }
        return absl::OkStatus();
      });
}

absl::StatusOr<store::Page<std::string>> SecretsStore::ListNames(
    const std::string& prefix, const std::string& after, int limit) {
  const absl::Time now = Now();
  return RunTransaction<pqxx::nontransaction>(
      *pool_, "ListSecrets",
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
  return RunTransaction<pqxx::work>(
      *pool_, "DeleteExpiredSecrets", [&](pqxx::work& txn) -> absl::StatusOr<int> {
        return static_cast<int>(
            txn.exec_prepared("secrets_delete_expired", pg::TimeParam(now),
                              batch)
                .size());
      });
}

absl::StatusOr<auth::RotationBatch> SecretsStore::RotateBatch(
    const crypto::KeyRing& keyring, const std::string& after, int batch) {
  const std::string current = keyring.current_key_id();
  return RunTransaction<pqxx::work>(
      *pool_, "RotateSecrets",
      [&](pqxx::work& txn) -> absl::StatusOr<auth::RotationBatch> {
        auth::RotationBatch done;
        pqxx::result rows = txn.exec_prepared("secrets_select_to_rotate",
                                              current, after, batch);
        done.done = static_cast<int>(rows.size()) < batch;
        for (const pqxx::row& row : rows) {
          const std::string name = row["name"].c_str();
          const std::string value = pqxx::binarystring(row["value"]).str();
          done.last_key = name;
          absl::StatusOr<std::optional<std::string>> again =
              keyring.Reencrypt(value, SecretValueAd(name));
          if (!again.ok()) {
            done.failed.push_back(name);
            continue;
          }
          // nullopt: the value is already under the current key and only
          // the key_id column lagged behind.
          const std::string& replacement = again->has_value() ? **again : value;
          txn.exec_prepared("secrets_replace_ciphertext", name,
                            pqxx::binarystring(replacement), current,
                            pqxx::binarystring(value));
          ++done.reencrypted;
        }
        return done;
      });
}

absl::StatusOr<std::map<std::string, int64_t>> SecretsStore::CountByKeyId() {
  return RunTransaction<pqxx::nontransaction>(
      *pool_, "CountSecretsByKeyId",
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<std::map<std::string, int64_t>> {
        std::map<std::string, int64_t> counts;
        for (const pqxx::row& row :
             txn.exec_prepared("secrets_count_by_key_id")) {
          counts[row[0].c_str()] = row[1].as<int64_t>();
        }
        return counts;
      });
}

}  // namespace drover::queue::secrets
