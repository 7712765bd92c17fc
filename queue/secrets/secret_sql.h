// The SQL of SecretsStore (table `secrets` of migrations/0200_auth.sql),
// one named constant per statement with $n parameters.
#ifndef DROVER_QUEUE_SECRETS_SECRET_SQL_H_
#define DROVER_QUEUE_SECRETS_SECRET_SQL_H_

#include <vector>

#include "queue/store/pg_pool.h"

namespace drover::queue::secrets::sql {

// $1 name, $2 value (ciphertext), $3 key_id, $4 expires (NULL: never),
// $5 now. Creates or replaces.
inline constexpr char kPutSecret[] =
    "INSERT INTO secrets (name, value, key_id, expires, created, "
    "last_modified) VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (name) DO "
    "UPDATE SET value = EXCLUDED.value, key_id = EXCLUDED.key_id, "
    "expires = EXCLUDED.expires, last_modified = EXCLUDED.last_modified";

// $1 name.
inline constexpr char kSelectSecret[] =
    "SELECT name, value, key_id, epoch_us(expires) AS expires_us, "
    "epoch_us(created) AS created_us, "
    "epoch_us(last_modified) AS last_modified_us FROM secrets WHERE name = $1";

// $1 name.
inline constexpr char kDeleteSecret[] =
    "DELETE FROM secrets WHERE name = $1 RETURNING name";

// $1 prefix, $2 after (exclusive), $3 now, $4 limit. Expired secrets are
// left out.
inline constexpr char kListSecretNames[] =
    "SELECT name FROM secrets WHERE starts_with(name, $1) AND name > $2 "
    "AND (expires IS NULL OR expires > $3) ORDER BY name LIMIT $4";

// $1 now, $2 batch; replicas share the work (SKIP LOCKED).
inline constexpr char kDeleteExpiredSecrets[] =
    "DELETE FROM secrets WHERE name IN (SELECT name FROM secrets "
    "WHERE expires IS NOT NULL AND expires <= $1 ORDER BY expires LIMIT $2 "
    "FOR UPDATE SKIP LOCKED) RETURNING name";

// Key rotation. $1 current key id, $2 after (exclusive), $3 batch.
inline constexpr char kSelectSecretsToRotate[] =
    "SELECT name, value FROM secrets WHERE key_id <> $1 AND name > $2 "
    "ORDER BY name LIMIT $3 FOR UPDATE SKIP LOCKED";
// $1 name, $2 new value, $3 new key id, $4 the value it replaces.
inline constexpr char kReplaceSecretCiphertext[] =
    "UPDATE secrets SET value = $2, key_id = $3 WHERE name = $1 AND value = $4";
inline constexpr char kCountSecretsByKeyId[] =
    "SELECT key_id, count(*) FROM secrets GROUP BY key_id ORDER BY key_id";

inline std::vector<store::PreparedStatement> AllStatements() {
  return {
      {"secrets_put", kPutSecret},
      {"secrets_select", kSelectSecret},
      {"secrets_delete", kDeleteSecret},
      {"secrets_list_names", kListSecretNames},
      {"secrets_delete_expired", kDeleteExpiredSecrets},
      {"secrets_select_to_rotate", kSelectSecretsToRotate},
      {"secrets_replace_ciphertext", kReplaceSecretCiphertext},
      {"secrets_count_by_key_id", kCountSecretsByKeyId},
  };
}

}  // namespace drover::queue::secrets::sql

#endif  // DROVER_QUEUE_SECRETS_SECRET_SQL_H_
