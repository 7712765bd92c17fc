// Schema migrations: the numbered SQL files of migrations/ are compiled into
// the binary (embed_migrations.cmake) and applied here, in order, each in its
// own transaction, recorded in schema_migrations(version, name, applied).
//
// Several replicas may call Migrate at once: a PostgreSQL advisory lock makes
// them take turns, and the later ones find nothing left to do. A binary
// refuses a schema newer than the newest migration it carries.
#ifndef DROVER_QUEUE_STORE_MIGRATIONS_H_
#define DROVER_QUEUE_STORE_MIGRATIONS_H_

#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace drover::queue::store {

struct EmbeddedMigration {
  int version;            // NNNN of NNNN_name.sql, > 0.
  std::string_view name;  // "initial"
  std::string_view sql;   // The whole file.
};

// The migrations compiled into this binary, sorted by version (generated).
std::span<const EmbeddedMigration> EmbeddedMigrations();

// The newest version in EmbeddedMigrations().
int LatestKnownSchemaVersion();

// Applies every embedded migration the database lacks, in version order
// (a missing version below the newest applied is applied too: areas of the
// schema are numbered apart, core 0001-0099, artifacts 0100, ...).
// Thread-safe and safe against concurrent callers in other processes.
// Errors: InternalError when the database cannot be reached or a migration
// fails (naming it; that migration's changes are rolled back),
// RequestConflict when the schema is newer than this binary knows or
// records a migration this binary does not carry under that name.
absl::Status Migrate(const std::string& connection_string);

// As Migrate, with an explicit list (sorted by version); for tests.
absl::Status ApplyMigrations(const std::string& connection_string,
                             std::span<const EmbeddedMigration> migrations);

// The newest applied version, 0 for a database never migrated. Errors:
// InternalError when the database cannot be reached.
absl::StatusOr<int> SchemaVersion(const std::string& connection_string);

// OK when the database has exactly the migrations this binary carries.
// Errors: RequestConflict naming both versions when the schema is newer
// (upgrade the binary), lacks migrations (run `drover-queue migrate`; the
// details list them) or records foreign ones; InternalError when the
// database cannot be reached.
absl::Status CheckSchema(const std::string& connection_string);

// The pure comparison behind CheckSchema.
absl::Status CheckSchemaVersion(int database_version, int known_version);

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_MIGRATIONS_H_
