// AuthStore: the PostgreSQL side of authentication (tables of
// migrations/0200_auth.sql): permanent clients, roles, the generation
// counters replicas watch, and the one-time bootstrap.
//
// It keeps a connection pool of its own (the queue store's pool type) with
// the statements of auth_sql.h prepared. Every method is one short
// transaction; none waits on the network. Changes that affect what a
// cached client or role means bump the matching generation in the same
// transaction and NOTIFY drover_auth, so other replicas refresh (see
// AuthState). Time comes from the injected Clock.
//
// Input is validated by the caller (the Auth service); the store checks
// only what needs the database: existence, static clients, and that a new
// role table still expands (RoleResolver::Build).
//
// Thread-safe: every method may be called from any thread.
#ifndef DROVER_QUEUE_AUTH_AUTH_STORE_H_
#define DROVER_QUEUE_AUTH_AUTH_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "queue/auth/role_resolver.h"
#include "queue/store/pg_pool.h"
#include "queue/store/types.h"

namespace drover::queue::auth {

// The expiry given to clients that never expire (static clients, root).
absl::Time NeverExpires();

struct ClientRecord {
  std::string client_id;
  std::string description;
  // Raw bytes of TokenHasher::Hash(client_id, token).
  std::string access_token_hash;
  std::vector<std::string> scopes;
  absl::Time created;
  absl::Time last_modified;
  absl::Time last_rotated;
  std::optional<absl::Time> last_used;
  absl::Time expires;
  bool disabled = false;
  bool delete_on_expiration = false;
  // Managed by the server's configuration; the API refuses to change it.
  bool is_static = false;
};

// What UpdateClient replaces.
struct ClientUpdate {
  std::string client_id;
  std::string description;
  std::vector<std::string> scopes;
  // Unset: keep the current expiry.
  std::optional<absl::Time> expires;
  bool delete_on_expiration = false;
};

// A client from the server's configuration.
struct StaticClient {
  std::string client_id;
  std::string description;
  std::string access_token_hash;
  std::vector<std::string> scopes;
};

struct RoleRecord {
  std::string role_id;
  std::string description;
  std::vector<std::string> scopes;
  absl::Time created;
  absl::Time last_modified;
};

// One consistent version of the role table.
struct RoleSnapshot {
  int64_t generation = 0;
  std::vector<Role> roles;
};

struct AuthGenerations {
  int64_t roles = 0;
  int64_t clients = 0;
};

struct AuthStoreOptions : store::PgConnectionSettings {
  // Options of the resolver built to validate role changes.
  RoleResolverOptions role_limits;
};

class AuthStore {
 public:
  // Opens the pool. `clock` must outlive the store. Errors: as
  // store::PgConnectionPool::Create.
  static absl::StatusOr<std::unique_ptr<AuthStore>> Open(
      const AuthStoreOptions& options, const Clock* clock);

  // ---- clients ----------------------------------------------------------

  // Inserts a client; created/last_modified/last_rotated are set to now.
  // Errors: RequestConflict when the id exists.
  absl::StatusOr<ClientRecord> CreateClient(const ClientRecord& client);
  // Errors: ResourceNotFound.
  absl::StatusOr<ClientRecord> GetClient(const std::string& client_id);
  // Errors: ResourceNotFound; RequestConflict for a static client.
  absl::StatusOr<ClientRecord> UpdateClient(const ClientUpdate& update);
  // Replaces the token hash (the old token stops working at once).
  // Errors: ResourceNotFound; RequestConflict for a static client.
  absl::StatusOr<ClientRecord> SetAccessTokenHash(const std::string& client_id,
                                                  const std::string& hash);
  // Errors: ResourceNotFound; RequestConflict for a static client.
  absl::StatusOr<ClientRecord> SetDisabled(const std::string& client_id,
                                           bool disabled);
  // Errors: ResourceNotFound; RequestConflict for a static client.
  absl::Status DeleteClient(const std::string& client_id);
  // Clients whose id starts with `prefix`, ordered by id, after the client
  // id `after` ("" for the first page). The continuation token of the page
  // is the last id when the page is full.
  absl::StatusOr<store::Page<ClientRecord>> ListClients(
      const std::string& prefix, const std::string& after, int limit);
  // Sets last_used = now when it is unset or older than now - granularity.
  absl::Status TouchClient(const std::string& client_id,
                           absl::Duration granularity);
  // Makes the static clients exactly `clients`: upserts each (taking over
  // an API-made client of the same id) and deletes static clients no
  // longer listed. Returns how many were removed.
  absl::StatusOr<int> ReplaceStaticClients(
      const std::vector<StaticClient>& clients);
  // Deletes up to `batch` expired clients that have delete_on_expiration.
  absl::StatusOr<int> DeleteExpiredClients(int batch);

  // Creates `root` (a fresh client) the first time any replica calls this
  // on the database, and returns true; false when the database was
  // bootstrapped before (even if that client was deleted since).
  // `before_commit` runs inside the transaction after the insert (it
  // writes the credentials file); its error rolls everything back.
  // Errors: its error; RequestConflict when a client of that id exists.
  absl::StatusOr<bool> Bootstrap(const ClientRecord& root,
                                 const std::function<absl::Status()>&
                                     before_commit);

  // ---- roles ------------------------------------------------------------

  // Errors: RequestConflict when the id exists; InputError (fields
  // "role_id"/"scopes") when the resulting role table cannot be expanded.
  absl::StatusOr<RoleRecord> CreateRole(const RoleRecord& role);
  // Replaces description and scopes. Errors: ResourceNotFound; InputError
  // as CreateRole.
  absl::StatusOr<RoleRecord> UpdateRole(const RoleRecord& role);
  // Errors: ResourceNotFound.
  absl::Status DeleteRole(const std::string& role_id);
  // Errors: ResourceNotFound.
  absl::StatusOr<RoleRecord> GetRole(const std::string& role_id);
  absl::StatusOr<store::Page<RoleRecord>> ListRoles(const std::string& prefix,
                                                    const std::string& after,
                                                    int limit);
  absl::StatusOr<RoleSnapshot> LoadRoles();

  // The current generation counters (one single-row read).
  absl::StatusOr<AuthGenerations> Generations();

  const std::string& connection_string() const { return connection_string_; }

 private:
  AuthStore(std::unique_ptr<store::PgConnectionPool> pool, const Clock* clock,
            AuthStoreOptions options);

  // The clock's now at the database's precision (microseconds).
  absl::Time Now() const;

  std::unique_ptr<store::PgConnectionPool> pool_;
  const Clock* clock_;
  AuthStoreOptions options_;
  std::string connection_string_;
};

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_AUTH_STORE_H_
