#include "queue/store/migrations.h"

#include <map>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "queue/store/pg_util.h"

namespace drover::queue::store {
namespace {

// Serialises migrators across processes ("drover" in ASCII, then 1).
constexpr int64_t kMigrationLockKey = 0x64726f7665720001;

constexpr char kLockSql[] = "SELECT pg_advisory_lock($1)";
constexpr char kUnlockSql[] = "SELECT pg_advisory_unlock($1)";
constexpr char kCreateHistorySql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "  version int PRIMARY KEY,"
    "  name text NOT NULL,"
    "  applied timestamptz NOT NULL DEFAULT now())";
constexpr char kHistoryExistsSql[] =
    "SELECT to_regclass('schema_migrations') IS NOT NULL";
constexpr char kReadHistorySql[] =
    "SELECT version, name FROM schema_migrations ORDER BY version";
constexpr char kMaxVersionSql[] =
    "SELECT coalesce(max(version), 0) FROM schema_migrations";
constexpr char kRecordSql[] =
    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)";

std::string Label(int version, std::string_view name) {
  char number[16];
  std::snprintf(number, sizeof(number), "%04d", version);
  return absl::StrCat(number, "_", absl::string_view(name.data(), name.size()));
}

using History = std::map<int, std::string>;  // version -> name

// The applied history; empty when schema_migrations does not exist (and,
// with `create`, creates it).
absl::StatusOr<History> ReadHistory(pqxx::connection& conn, bool create) {
  try {
    pqxx::nontransaction txn(conn);
    if (create) {
      txn.exec(kCreateHistorySql);
    } else if (!txn.exec1(kHistoryExistsSql)[0].as<bool>()) {
      return History{};
    }
    History history;
    for (const auto& row : txn.exec(kReadHistorySql)) {
      history[row[0].as<int>()] = row[1].as<std::string>();
    }
    return history;
  } catch (...) {
    return pg::CurrentExceptionToStatus("reading schema_migrations");
  }
}

// Every applied migration must be one this binary carries, under the same
// name. One newer than all it carries means a newer binary migrated the
// database; any other stranger means two schemas share version numbers.
absl::Status CheckHistoryKnown(const History& history,
                               std::span<const EmbeddedMigration> migrations) {
  int known = migrations.empty() ? 0 : migrations.back().version;
  if (!history.empty() && history.rbegin()->first > known) {
    return CheckSchemaVersion(history.rbegin()->first, known);
  }
  for (const auto& [version, name] : history) {
    const EmbeddedMigration* match = nullptr;
    for (const auto& m : migrations) {
      if (m.version == version) match = &m;
    }
    if (match == nullptr || match->name != name) {
      return ConflictError(
          absl::StrCat(
              "schema_migrations records migration ", Label(version, name),
              " which this binary ",
              match == nullptr
                  ? "does not have"
                  : absl::StrCat("knows as ", Label(version, match->name))),
          {{"schema_version", std::to_string(version)},
           {"recorded_name", name}});
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyLocked(pqxx::connection& conn,
                         std::span<const EmbeddedMigration> migrations) {
  DROVER_ASSIGN_OR_RETURN(History history, ReadHistory(conn, true));
  DROVER_RETURN_IF_ERROR(CheckHistoryKnown(history, migrations));
  // Whatever is missing is applied in version order, including a version
  // below the newest applied: migration areas are numbered apart (core
  // 0001-0099, artifacts 0100, ...) and grow independently.
  for (const auto& m : migrations) {
    if (history.count(m.version) > 0) continue;
    try {
      pqxx::work txn(conn);
      txn.exec(std::string(m.sql));
      txn.exec_params(kRecordSql, m.version, std::string(m.name));
      txn.commit();
    } catch (...) {
      return pg::CurrentExceptionToStatus(
          absl::StrCat("applying migration ", Label(m.version, m.name)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int LatestKnownSchemaVersion() {
  auto all = EmbeddedMigrations();
  return all.empty() ? 0 : all.back().version;
}

absl::Status ApplyMigrations(const std::string& connection_string,
                             std::span<const EmbeddedMigration> migrations) {
  for (size_t i = 1; i < migrations.size(); ++i) {
    if (migrations[i].version <= migrations[i - 1].version) {
      return InternalError("embedded migrations are not sorted by version");
    }
  }
  DROVER_ASSIGN_OR_RETURN(auto conn, pg::Connect(connection_string));
  try {
    pqxx::nontransaction(*conn).exec_params(kLockSql, kMigrationLockKey);
  } catch (...) {
    return pg::CurrentExceptionToStatus("taking the migration lock");
  }
  absl::Status status = ApplyLocked(*conn, migrations);
  try {
    pqxx::nontransaction(*conn).exec_params(kUnlockSql, kMigrationLockKey);
  } catch (...) {
    // Closing the connection releases the lock anyway.
  }
  return status;
}

absl::Status Migrate(const std::string& connection_string) {
  return ApplyMigrations(connection_string, EmbeddedMigrations());
}

absl::StatusOr<int> SchemaVersion(const std::string& connection_string) {
  DROVER_ASSIGN_OR_RETURN(auto conn, pg::Connect(connection_string));
  try {
    pqxx::nontransaction txn(*conn);
    if (!txn.exec1(kHistoryExistsSql)[0].as<bool>()) return 0;
    return txn.exec1(kMaxVersionSql)[0].as<int>();
  } catch (...) {
    return pg::CurrentExceptionToStatus("reading the schema version");
  }
}

absl::Status CheckSchemaVersion(int database_version, int known_version) {
  ErrorDetails details = {
      {"schema_version", std::to_string(database_version)},
      {"binary_schema_version", std::to_string(known_version)}};
  if (database_version > known_version) {
    return ConflictError(
        absl::StrCat("database schema version ", database_version,
                     " is newer than this binary knows (", known_version,
                     "); upgrade drover-queue"),
        std::move(details));
  }
  if (database_version < known_version) {
    return ConflictError(
        absl::StrCat("database schema version ", database_version,
                     " is older than this binary needs (", known_version,
                     "); run `drover-queue migrate`"),
        std::move(details));
  }
  return absl::OkStatus();
}

absl::Status CheckSchema(const std::string& connection_string) {
  DROVER_ASSIGN_OR_RETURN(auto conn, pg::Connect(connection_string));
  DROVER_ASSIGN_OR_RETURN(History history, ReadHistory(*conn, false));
  auto migrations = EmbeddedMigrations();
  DROVER_RETURN_IF_ERROR(CheckHistoryKnown(history, migrations));
  std::vector<std::string> missing;
  for (const auto& m : migrations) {
    if (history.count(m.version) == 0)
      missing.push_back(Label(m.version, m.name));
  }
  if (!missing.empty()) {
    int newest = history.empty() ? 0 : history.rbegin()->first;
    return ConflictError(
        absl::StrCat("database schema (version ", newest,
                     ") lacks migrations this binary needs (",
                     absl::StrJoin(missing, ", "), "; newest known ",
                     LatestKnownSchemaVersion(),
                     "); run `drover-queue migrate`"),
        {{"schema_version", std::to_string(newest)},
         {"binary_schema_version", std::to_string(LatestKnownSchemaVersion())},
         {"missing", absl::StrJoin(missing, ",")}});
  }
  return absl::OkStatus();
}

}  // namespace drover::queue::store
