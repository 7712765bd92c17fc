// The SQL of AuthStore (tables of migrations/0200_auth.sql), one named
// constant per statement, all with $n parameters. Every statement is
// prepared on each pooled connection under the name in AllStatements().
#ifndef DROVER_QUEUE_AUTH_AUTH_SQL_H_
#define DROVER_QUEUE_AUTH_AUTH_SQL_H_

#include <vector>

#include "queue/store/pg_pool.h"

namespace drover::queue::auth::sql {

// NOTIFY channel of role and client changes (payload: what changed, for
// logs only; listeners re-read auth_state).
inline constexpr char kAuthChannel[] = "drover_auth";

// The columns every client query returns, in ClientFromRow's terms.
#define DROVER_AUTH_CLIENT_COLUMNS                                        \
  "client_id, description, access_token_hash, scopes, "                   \
  "epoch_us(created) AS created_us, "                                     \
  "epoch_us(last_modified) AS last_modified_us, "                         \
  "epoch_us(last_rotated) AS last_rotated_us, "                           \
  "epoch_us(last_used) AS last_used_us, epoch_us(expires) AS expires_us, " \
  "disabled, delete_on_expiration, static"

#define DROVER_AUTH_ROLE_COLUMNS                                      \
  "role_id, description, scopes, epoch_us(created) AS created_us, " \
  "epoch_us(last_modified) AS last_modified_us"

// $1 client_id, $2 description, $3 access_token_hash, $4 scopes,
// $5 now (created = last_modified = last_rotated), $6 expires,
// $7 delete_on_expiration, $8 static. Returns nothing when the id exists.
inline constexpr char kInsertClient[] =
    "INSERT INTO clients (client_id, description, access_token_hash, scopes, "
    "created, last_modified, last_rotated, expires, delete_on_expiration, "
    "static) VALUES ($1, $2, $3, $4::text[], $5, $5, $5, $6, $7, $8) "
    "ON CONFLICT (client_id) DO NOTHING RETURNING " DROVER_AUTH_CLIENT_COLUMNS;

// $1 client_id.
inline constexpr char kSelectClient[] =
    "SELECT " DROVER_AUTH_CLIENT_COLUMNS " FROM clients WHERE client_id = $1";
inline constexpr char kSelectClientForUpdate[] =
    "SELECT " DROVER_AUTH_CLIENT_COLUMNS
    " FROM clients WHERE client_id = $1 FOR UPDATE";

// $1 client_id, $2 description, $3 scopes, $4 expires,
// $5 delete_on_expiration, $6 now.
inline constexpr char kUpdateClient[] =
    "UPDATE clients SET description = $2, scopes = $3::text[], expires = $4, "
    "delete_on_expiration = $5, last_modified = $6 WHERE client_id = $1 "
    "RETURNING " DROVER_AUTH_CLIENT_COLUMNS;

// $1 client_id, $2 access_token_hash, $3 now.
inline constexpr char kSetClientTokenHash[] =
    "UPDATE clients SET access_token_hash = $2, last_rotated = $3, "
    "last_modified = $3 WHERE client_id = $1 "
    "RETURNING " DROVER_AUTH_CLIENT_COLUMNS;

// $1 client_id, $2 disabled, $3 now.
inline constexpr char kSetClientDisabled[] =
    "UPDATE clients SET disabled = $2, last_modified = $3 WHERE client_id = $1 "
    "RETURNING " DROVER_AUTH_CLIENT_COLUMNS;

// $1 client_id.
inline constexpr char kDeleteClient[] =
    "DELETE FROM clients WHERE client_id = $1 RETURNING client_id";

// $1 prefix, $2 after (exclusive; "" for the first page), $3 limit.
inline constexpr char kListClients[] =
    "SELECT " DROVER_AUTH_CLIENT_COLUMNS
    " FROM clients WHERE starts_with(client_id, $1) AND client_id > $2 "
    "ORDER BY client_id LIMIT $3";

// $1 client_id, $2 now, $3 refresh when last_used is older than this.
// Changes nothing the caches care about, so no generation bump.
inline constexpr char kTouchClient[] =
    "UPDATE clients SET last_used = $2 WHERE client_id = $1 "
    "AND (last_used IS NULL OR last_used < $3)";

// Static clients: the ids currently stored, then an upsert per configured
// client and a delete of those no longer configured.
inline constexpr char kSelectStaticClientIds[] =
    "SELECT client_id FROM clients WHERE static ORDER BY client_id";
// $1 client_id, $2 description, $3 access_token_hash, $4 scopes, $5 now,
// $6 expires. Takes over an API-made client of the same id.
inline constexpr char kUpsertStaticClient[] =
    "INSERT INTO clients (client_id, description, access_token_hash, scopes, "
    "created, last_modified, last_rotated, expires, static) "
    "VALUES ($1, $2, $3, $4::text[], $5, $5, $5, $6, true) "
    "ON CONFLICT (client_id) DO UPDATE SET description = EXCLUDED.description, "
    "access_token_hash = EXCLUDED.access_token_hash, "
    "scopes = EXCLUDED.scopes, expires = EXCLUDED.expires, disabled = false, "
    "delete_on_expiration = false, static = true, "
    "last_modified = EXCLUDED.last_modified, "
    "last_rotated = CASE WHEN clients.access_token_hash = "
    "EXCLUDED.access_token_hash THEN clients.last_rotated "
    "ELSE EXCLUDED.last_rotated END";
// $1 client_id.
inline constexpr char kDeleteStaticClient[] =
    "DELETE FROM clients WHERE client_id = $1 AND static";

// $1 now, $2 batch. Expired clients that asked to be deleted; replicas
// share the work (SKIP LOCKED).
inline constexpr char kDeleteExpiredClients[] =
    "DELETE FROM clients WHERE client_id IN (SELECT client_id FROM clients "
    "WHERE delete_on_expiration AND expires < $1 ORDER BY expires LIMIT $2 "
    "FOR UPDATE SKIP LOCKED) RETURNING client_id";

// $1 the time of the bootstrap. One row when this caller bootstraps.
inline constexpr char kClaimBootstrap[] =
    "UPDATE auth_state SET bootstrapped = $1 WHERE bootstrapped IS NULL "
    "RETURNING 1";

// Generation counters; each bump notifies kAuthChannel.
inline constexpr char kBumpClientsGeneration[] =
    "WITH b AS (UPDATE auth_state SET clients_generation = "
    "clients_generation + 1 RETURNING clients_generation) "
    "SELECT pg_notify('drover_auth', 'clients ' || clients_generation) "
    "FROM b";
inline constexpr char kBumpRolesGeneration[] =
    "WITH b AS (UPDATE auth_state SET roles_generation = "
    "roles_generation + 1 RETURNING roles_generation) "
    "SELECT pg_notify('drover_auth', 'roles ' || roles_generation) FROM b";
inline constexpr char kSelectGenerations[] =
    "SELECT roles_generation, clients_generation FROM auth_state";
// Serialises role writers (see the migration).
inline constexpr char kLockRoles[] =
    "SELECT roles_generation FROM auth_state FOR UPDATE";

// Every role with the generation it belongs to, from one snapshot (a
// single statement); one row with NULL role_id when there are no roles.
inline constexpr char kSnapshotRoles[] =
    "SELECT g.roles_generation, r.role_id, r.scopes FROM auth_state g "
    "LEFT JOIN roles r ON true ORDER BY r.role_id";

// $1 role_id.
inline constexpr char kSelectRole[] =
    "SELECT " DROVER_AUTH_ROLE_COLUMNS " FROM roles WHERE role_id = $1";
// $1 role_id, $2 description, $3 scopes, $4 now. Nothing when it exists.
inline constexpr char kInsertRole[] =
    "INSERT INTO roles (role_id, description, scopes, created, last_modified) "
    "VALUES ($1, $2, $3::text[], $4, $4) ON CONFLICT (role_id) DO NOTHING "
    "RETURNING " DROVER_AUTH_ROLE_COLUMNS;
// $1 role_id, $2 description, $3 scopes, $4 now.
inline constexpr char kUpdateRole[] =
    "UPDATE roles SET description = $2, scopes = $3::text[], "
    "last_modified = $4 WHERE role_id = $1 RETURNING " DROVER_AUTH_ROLE_COLUMNS;
// $1 role_id.
inline constexpr char kDeleteRole[] =
    "DELETE FROM roles WHERE role_id = $1 RETURNING role_id";
// $1 prefix, $2 after (exclusive), $3 limit.
inline constexpr char kListRoles[] =
    "SELECT " DROVER_AUTH_ROLE_COLUMNS
    " FROM roles WHERE starts_with(role_id, $1) AND role_id > $2 "
    "ORDER BY role_id LIMIT $3";

#undef DROVER_AUTH_CLIENT_COLUMNS
#undef DROVER_AUTH_ROLE_COLUMNS

inline std::vector<store::PreparedStatement> AllStatements() {
  return {
      {"auth_insert_client", kInsertClient},
      {"auth_select_client", kSelectClient},
      {"auth_select_client_for_update", kSelectClientForUpdate},
      {"auth_update_client", kUpdateClient},
      {"auth_set_client_token_hash", kSetClientTokenHash},
      {"auth_set_client_disabled", kSetClientDisabled},
      {"auth_delete_client", kDeleteClient},
      {"auth_list_clients", kListClients},
      {"auth_touch_client", kTouchClient},
      {"auth_select_static_client_ids", kSelectStaticClientIds},
      {"auth_upsert_static_client", kUpsertStaticClient},
      {"auth_delete_static_client", kDeleteStaticClient},
      {"auth_delete_expired_clients", kDeleteExpiredClients},
      {"auth_claim_bootstrap", kClaimBootstrap},
      {"auth_bump_clients_generation", kBumpClientsGeneration},
      {"auth_bump_roles_generation", kBumpRolesGeneration},
      {"auth_select_generations", kSelectGenerations},
      {"auth_lock_roles", kLockRoles},
      {"auth_snapshot_roles", kSnapshotRoles},
      {"auth_select_role", kSelectRole},
      {"auth_insert_role", kInsertRole},
      {"auth_update_role", kUpdateRole},
      {"auth_delete_role", kDeleteRole},
      {"auth_list_roles", kListRoles},
  };
}

}  // namespace drover::queue::auth::sql

#endif  // DROVER_QUEUE_AUTH_AUTH_SQL_H_
