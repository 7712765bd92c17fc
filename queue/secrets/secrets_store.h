// SecretsStore: the `secrets` table (migrations/0200_auth.sql) on
// PostgreSQL. It stores ciphertexts only: the Secrets service encrypts
// with the KeyRing before Put and decrypts after Get, with the associated
// data SecretValueAd(name), so a value moved to another row fails to
// decrypt. The store is also the EncryptedColumn of secrets.value for key
// rotation.
//
// Own connection pool (the queue store's pool type). Every method is one
// short transaction. Thread-safe.
#ifndef DROVER_QUEUE_SECRETS_SECRETS_STORE_H_
#define DROVER_QUEUE_SECRETS_SECRETS_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/keyring.h"
#include "queue/auth/key_rotation.h"
#include "queue/store/pg_pool.h"
#include "queue/store/types.h"

namespace drover::queue::secrets {

// Where a secret's value lives: ("secrets", "value", name). The returned
// view points into `name`, which must outlive it.
crypto::AssociatedData SecretValueAd(const std::string& name);

struct SecretRecord {
  std::string name;
  // KeyRing ciphertext.
  std::string value;
  std::string key_id;
  std::optional<absl::Time> expires;
  absl::Time created;
  absl::Time last_modified;
};

struct SecretsStoreOptions : store::PgConnectionSettings {};

class SecretsStore final : public auth::EncryptedColumn {
 public:
  // `clock` must outlive the store. Errors: as PgConnectionPool::Create.
  static absl::StatusOr<std::unique_ptr<SecretsStore>> Open(
      const SecretsStoreOptions& options, const Clock* clock);

  // Creates or replaces a secret. `ciphertext` must be under `key_id`.
  absl::Status Put(const std::string& name, const std::string& ciphertext,
                   const std::string& key_id,
                   std::optional<absl::Time> expires);
  // Errors: ResourceNotFound. Expired secrets are returned (the caller
  // decides; the sweeper deletes them eventually).
  absl::StatusOr<SecretRecord> Get(const std::string& name);
  // Errors: ResourceNotFound.
  absl::Status Remove(const std::string& name);
  // Names starting with `prefix` after `after`, not expired, in byte
  // order; the continuation token is the last name of a full page.
  absl::StatusOr<store::Page<std::string>> ListNames(const std::string& prefix,
                                                     const std::string& after,
                                                     int limit);
  // Deletes up to `batch` expired secrets; returns how many.
  absl::StatusOr<int> DeleteExpired(int batch);

  // auth::EncryptedColumn.
  std::string_view column_name() const override { return "secrets.value"; }
  absl::StatusOr<auth::RotationBatch> RotateBatch(
      const crypto::KeyRing& keyring, const std::string& after,
      int batch) override;
  absl::StatusOr<std::map<std::string, int64_t>> CountByKeyId() override;

 private:
  SecretsStore(std::unique_ptr<store::PgConnectionPool> pool,
               const Clock* clock)
      : pool_(std::move(pool)), clock_(clock) {}
  absl::Time Now() const;

  std::unique_ptr<store::PgConnectionPool> pool_;
  const Clock* clock_;
};

}  // namespace drover::queue::secrets

#endif  // DROVER_QUEUE_SECRETS_SECRETS_STORE_H_
