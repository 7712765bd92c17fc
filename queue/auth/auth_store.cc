#include "queue/auth/auth_store.h"

#include <set>
#include <utility>

#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/auth/auth_sql.h"
#include "queue/store/pg_transaction.h"
#include "queue/store/pg_util.h"

namespace drover::queue::auth {
namespace {

namespace pg = store::pg;

ClientRecord ClientFromRow(const pqxx::row& row) {
  ClientRecord c;
  c.client_id = row["client_id"].c_str();
  c.description = row["description"].c_str();
  c.access_token_hash = pqxx::binarystring(row["access_token_hash"]).str();
  c.scopes = pg::TextArrayField(row["scopes"]);
  c.created = pg::TimeFromMicros(row["created_us"].as<int64_t>());
  c.last_modified = pg::TimeFromMicros(row["last_modified_us"].as<int64_t>());
  c.last_rotated = pg::TimeFromMicros(row["last_rotated_us"].as<int64_t>());
  c.last_used = pg::OptionalTime(row["last_used_us"]);
  c.expires = pg::TimeFromMicros(row["expires_us"].as<int64_t>());
  c.disabled = row["disabled"].as<bool>();
  c.delete_on_expiration = row["delete_on_expiration"].as<bool>();
  c.is_static = row["static"].as<bool>();
  return c;
}

RoleRecord RoleFromRow(const pqxx::row& row) {
  RoleRecord r;
  r.role_id = row["role_id"].c_str();
  r.description = row["description"].c_str();
  r.scopes = pg::TextArrayField(row["scopes"]);
  r.created = pg::TimeFromMicros(row["created_us"].as<int64_t>());
  r.last_modified = pg::TimeFromMicros(row["last_modified_us"].as<int64_t>());
  return r;
}

absl::Status StaticClientConflict(const std::string& client_id) {
  return ConflictError(
      "client " + client_id +
          " comes from the server's configuration (static client); change "
          "it there",
      {{"client_id", client_id}});
}

// Locks the client row; NotFound or, for a static client, RequestConflict.
absl::Status LockMutableClient(pqxx::work& txn, const std::string& client_id) {
  pqxx::result rows =
      txn.exec_prepared("auth_select_client_for_update", client_id);
  if (rows.empty()) return NotFoundError("client", client_id);
  if (rows[0]["static"].as<bool>()) return StaticClientConflict(client_id);
  return absl::OkStatus();
}

// Checks that the role table, with `changed` inserted or replaced (or
// removed when `remove`), still expands. The error names the field of the
// role being written.
absl::Status ValidateRoleTable(pqxx::work& txn, const RoleRecord& changed,
                               const RoleResolverOptions& limits) {
  std::vector<Role> roles;
  for (const pqxx::row& row : txn.exec_prepared("auth_snapshot_roles")) {
    if (row["role_id"].is_null()) continue;
    std::string id = row["role_id"].c_str();
    if (id == changed.role_id) continue;
    roles.push_back({std::move(id), pg::TextArrayField(row["scopes"])});
  }
  roles.push_back({changed.role_id, changed.scopes});
  auto built = RoleResolver::Build(std::move(roles), limits);
  if (built.ok()) return absl::OkStatus();
  ErrorInfo info = GetErrorInfo(built.status());
  ErrorDetails details = std::move(info.details);
  details["role_id"] = changed.role_id;
  return MakeError(ErrorCode::kInputError,
                   "the roles would no longer expand with role " +
                       changed.role_id + " changed: " + info.message,
                   std::move(details));
}

std::string TokenOf(const std::vector<std::string>& ids, int limit,
                    const std::string& last) {
  return static_cast<int>(ids.size()) >= limit ? last : std::string();
}

}  // namespace

absl::Time NeverExpires() {
  // 9999-12-31T00:00:00Z: far enough, and inside what both timestamptz and
  // google.protobuf.Timestamp represent.
  return absl::FromUnixSeconds(253402214400);
}

AuthStore::AuthStore(std::unique_ptr<store::PgConnectionPool> pool,
                     const Clock* clock, AuthStoreOptions options)
    : pool_(std::move(pool)),
      clock_(clock),
      options_(std::move(options)),
      connection_string_(options_.connection_string) {}

absl::StatusOr<std::unique_ptr<AuthStore>> AuthStore::Open(
    const AuthStoreOptions& options, const Clock* clock) {
  DROVER_ASSIGN_OR_RETURN(auto pool,
                          store::OpenPool(options, sql::AllStatements()));
  return std::unique_ptr<AuthStore>(
      new AuthStore(std::move(pool), clock, options));
}

absl::Time AuthStore::Now() const {
  return absl::FromUnixMicros(absl::ToUnixMicros(clock_->Now()));
}

absl::StatusOr<ClientRecord> AuthStore::CreateClient(
    const ClientRecord& client) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "CreateClient", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<ClientRecord> {
        pqxx::result rows = txn.exec_prepared(
            "auth_insert_client", client.client_id, client.description,
            pqxx::binarystring(client.access_token_hash),
            pg::TextArrayParam(client.scopes), pg::TimeParam(now),
            pg::TimeParam(client.expires), client.delete_on_expiration,
            client.is_static);
        if (rows.empty()) {
          return ConflictError("client " + client.client_id + " exists",
                               {{"client_id", client.client_id}});
        }
        // Other replicas may remember "no such client".
        txn.exec_prepared("auth_bump_clients_generation");
        return ClientFromRow(rows[0]);
      });
}

absl::StatusOr<ClientRecord> AuthStore::GetClient(
    const std::string& client_id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetClient", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<ClientRecord> {
        pqxx::result rows = txn.exec_prepared("auth_select_client", client_id);
        if (rows.empty()) return NotFoundError("client", client_id);
        return ClientFromRow(rows[0]);
      });
}

absl::StatusOr<ClientRecord> AuthStore::UpdateClient(
    const ClientUpdate& update) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "UpdateClient", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<ClientRecord> {
        pqxx::result current =
            txn.exec_prepared("auth_select_client_for_update",
                              update.client_id);
        if (current.empty()) return NotFoundError("client", update.client_id);
        ClientRecord before = ClientFromRow(current[0]);
        if (before.is_static) return StaticClientConflict(update.client_id);
        pqxx::result rows = txn.exec_prepared(
            "auth_update_client", update.client_id, update.description,
            pg::TextArrayParam(update.scopes),
            pg::TimeParam(update.expires.value_or(before.expires)),
            update.delete_on_expiration, pg::TimeParam(now));
        txn.exec_prepared("auth_bump_clients_generation");
        return ClientFromRow(rows[0]);
      });
}

absl::StatusOr<ClientRecord> AuthStore::SetAccessTokenHash(
    const std::string& client_id, const std::string& hash) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "ResetAccessToken", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<ClientRecord> {
        DROVER_RETURN_IF_ERROR(LockMutableClient(txn, client_id));
        pqxx::result rows =
            txn.exec_prepared("auth_set_client_token_hash", client_id,
                              pqxx::binarystring(hash), pg::TimeParam(now));
        txn.exec_prepared("auth_bump_clients_generation");
        return ClientFromRow(rows[0]);
      });
}

absl::StatusOr<ClientRecord> AuthStore::SetDisabled(
    const std::string& client_id, bool disabled) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, disabled ? "DisableClient" : "EnableClient",
      pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<ClientRecord> {
        DROVER_RETURN_IF_ERROR(LockMutableClient(txn, client_id));
        pqxx::result rows = txn.exec_prepared(
            "auth_set_client_disabled", client_id, disabled,
            pg::TimeParam(now));
        txn.exec_prepared("auth_bump_clients_generation");
        return ClientFromRow(rows[0]);
      });
}

absl::Status AuthStore::DeleteClient(const std::string& client_id) {
  return pg::RunTransaction<pqxx::work>(
      *pool_, "DeleteClient", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::Status {
        DROVER_RETURN_IF_ERROR(LockMutableClient(txn, client_id));
        txn.exec_prepared("auth_delete_client", client_id);
        txn.exec_prepared("auth_bump_clients_generation");
        return absl::OkStatus();
      });
}

absl::StatusOr<store::Page<ClientRecord>> AuthStore::ListClients(
    const std::string& prefix, const std::string& after, int limit) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ListClients", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<store::Page<ClientRecord>> {
        store::Page<ClientRecord> page;
        std::vector<std::string> ids;
        for (const pqxx::row& row :
             txn.exec_prepared("auth_list_clients", prefix, after, limit)) {
          page.items.push_back(ClientFromRow(row));
          ids.push_back(page.items.back().client_id);
        }
        page.continuation_token =
            TokenOf(ids, limit, ids.empty() ? "" : ids.back());
        return page;
      });
}

absl::Status AuthStore::TouchClient(const std::string& client_id,
                                    absl::Duration granularity) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "TouchClient", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::Status {
        txn.exec_prepared("auth_touch_client", client_id, pg::TimeParam(now),
                          pg::TimeParam(now - granularity));
        return absl::OkStatus();
      });
}

absl::StatusOr<int> AuthStore::ReplaceStaticClients(
    const std::vector<StaticClient>& clients) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "ReplaceStaticClients", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<int> {
        std::set<std::string> wanted;
        for (const StaticClient& c : clients) {
          wanted.insert(c.client_id);
          txn.exec_prepared("auth_upsert_static_client", c.client_id,
                            c.description,
                            pqxx::binarystring(c.access_token_hash),
                            pg::TextArrayParam(c.scopes), pg::TimeParam(now),
                            pg::TimeParam(NeverExpires()));
        }
        int removed = 0;
        for (const pqxx::row& row :
             txn.exec_prepared("auth_select_static_client_ids")) {
          std::string id = row[0].c_str();
          if (wanted.count(id) == 0) {
            txn.exec_prepared("auth_delete_static_client", id);
            ++removed;
          }
        }
        txn.exec_prepared("auth_bump_clients_generation");
        return removed;
      });
}

absl::StatusOr<int> AuthStore::DeleteExpiredClients(int batch) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "DeleteExpiredClients", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<int> {
        pqxx::result rows = txn.exec_prepared("auth_delete_expired_clients",
                                              pg::TimeParam(now), batch);
        if (!rows.empty()) txn.exec_prepared("auth_bump_clients_generation");
        return static_cast<int>(rows.size());
      });
}

absl::StatusOr<bool> AuthStore::Bootstrap(
    const ClientRecord& root,
    const std::function<absl::Status()>& before_commit) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "Bootstrap", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<bool> {
        if (txn.exec_prepared("auth_claim_bootstrap", pg::TimeParam(now))
                .empty()) {
          return false;
        }
        pqxx::result rows = txn.exec_prepared(
            "auth_insert_client", root.client_id, root.description,
            pqxx::binarystring(root.access_token_hash),
            pg::TextArrayParam(root.scopes), pg::TimeParam(now),
            pg::TimeParam(root.expires), root.delete_on_expiration,
            root.is_static);
        if (rows.empty()) {
          return ConflictError(
              "cannot bootstrap: a client named " + root.client_id +
                  " exists already",
              {{"client_id", root.client_id}});
        }
        txn.exec_prepared("auth_bump_clients_generation");
        DROVER_RETURN_IF_ERROR(before_commit());
        return true;
      });
}

absl::StatusOr<RoleRecord> AuthStore::CreateRole(const RoleRecord& role) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "CreateRole", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<RoleRecord> {
        txn.exec_prepared("auth_lock_roles");
        if (!txn.exec_prepared("auth_select_role", role.role_id).empty()) {
          return ConflictError("role " + role.role_id + " exists",
                               {{"role_id", role.role_id}});
        }
        DROVER_RETURN_IF_ERROR(
            ValidateRoleTable(txn, role, options_.role_limits));
        pqxx::result rows = txn.exec_prepared(
            "auth_insert_role", role.role_id, role.description,
            pg::TextArrayParam(role.scopes), pg::TimeParam(now));
        txn.exec_prepared("auth_bump_roles_generation");
        return RoleFromRow(rows[0]);
      });
}

absl::StatusOr<RoleRecord> AuthStore::UpdateRole(const RoleRecord& role) {
  const absl::Time now = Now();
  return pg::RunTransaction<pqxx::work>(
      *pool_, "UpdateRole", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::StatusOr<RoleRecord> {
        txn.exec_prepared("auth_lock_roles");
        if (txn.exec_prepared("auth_select_role", role.role_id).empty()) {
          return NotFoundError("role", role.role_id);
        }
        DROVER_RETURN_IF_ERROR(
            ValidateRoleTable(txn, role, options_.role_limits));
        pqxx::result rows = txn.exec_prepared(
            "auth_update_role", role.role_id, role.description,
            pg::TextArrayParam(role.scopes), pg::TimeParam(now));
        txn.exec_prepared("auth_bump_roles_generation");
        return RoleFromRow(rows[0]);
      });
}

absl::Status AuthStore::DeleteRole(const std::string& role_id) {
  return pg::RunTransaction<pqxx::work>(
      *pool_, "DeleteRole", pg::UniqueViolation::kRetry,
      [&](pqxx::work& txn) -> absl::Status {
        txn.exec_prepared("auth_lock_roles");
        if (txn.exec_prepared("auth_delete_role", role_id).empty()) {
          return NotFoundError("role", role_id);
        }
        txn.exec_prepared("auth_bump_roles_generation");
        return absl::OkStatus();
      });
}

absl::StatusOr<RoleRecord> AuthStore::GetRole(const std::string& role_id) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "GetRole", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<RoleRecord> {
        pqxx::result rows = txn.exec_prepared("auth_select_role", role_id);
        if (rows.empty()) return NotFoundError("role", role_id);
        return RoleFromRow(rows[0]);
      });
}

absl::StatusOr<store::Page<RoleRecord>> AuthStore::ListRoles(
    const std::string& prefix, const std::string& after, int limit) {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "ListRoles", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn)
          -> absl::StatusOr<store::Page<RoleRecord>> {
        store::Page<RoleRecord> page;
        std::vector<std::string> ids;
        for (const pqxx::row& row :
             txn.exec_prepared("auth_list_roles", prefix, after, limit)) {
          page.items.push_back(RoleFromRow(row));
          ids.push_back(page.items.back().role_id);
        }
        page.continuation_token =
            TokenOf(ids, limit, ids.empty() ? "" : ids.back());
        return page;
      });
}

absl::StatusOr<RoleSnapshot> AuthStore::LoadRoles() {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "LoadRoles", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<RoleSnapshot> {
        RoleSnapshot snapshot;
        for (const pqxx::row& row : txn.exec_prepared("auth_snapshot_roles")) {
          snapshot.generation = row[0].as<int64_t>();
          if (row["role_id"].is_null()) continue;
          snapshot.roles.push_back(
              {row["role_id"].c_str(), pg::TextArrayField(row["scopes"])});
        }
        return snapshot;
      });
}

absl::StatusOr<AuthGenerations> AuthStore::Generations() {
  return pg::RunTransaction<pqxx::nontransaction>(
      *pool_, "AuthGenerations", pg::UniqueViolation::kRetry,
      [&](pqxx::nontransaction& txn) -> absl::StatusOr<AuthGenerations> {
        pqxx::result rows = txn.exec_prepared("auth_select_generations");
        if (rows.empty()) {
          return InternalError("auth_state has no row; is the schema migrated?");
        }
        return AuthGenerations{rows[0][0].as<int64_t>(),
                               rows[0][1].as<int64_t>()};
      });
}

}  // namespace drover::queue::auth
