// The drover-queue commands: `drover-queue` (serve) and
// `drover-queue migrate`. Each finds its database (the configured URL, or
// an embedded PostgreSQL cluster under --data-dir), brings the schema up
// to date and, for serve, runs a QueueServer until a shutdown signal.
#ifndef DROVER_QUEUE_SERVER_SERVE_H_
#define DROVER_QUEUE_SERVER_SERVE_H_

#include <ostream>

#include "absl/status/status.h"
#include "common/clock.h"
#include "queue/queue_service/authorizer.h"
#include "queue/server/server_config.h"
#include "queue/server/shutdown_signal.h"

namespace drover::queue::server {

// Serves until `signal` fires, then shuts down gracefully (stop accepting,
// finish in-flight calls, stop resolvers, stop the embedded cluster).
// Where it listens is printed to `out`, and, on a database's first start,
// where the root client's credentials were written. Every service checks
// credentials and scopes with the auth system's ScopeAuthorizer;
// `authorizer`, when not null, replaces it for the Queue service only
// (tests). Errors: from the database (the embedded cluster cannot start,
// the schema is newer than this binary, naming both versions), the keys
// (queue/auth/auth_system.h) or a listener that cannot bind.
absl::Status Serve(const ServerConfig& config, const Clock* clock,
                   queue_service::Authorizer* authorizer,
                   ShutdownSignal* signal, std::ostream& out);

// `drover-queue rotate-keys`: re-encrypts every encrypted column under the
// newest configured key (queue/auth/key_rotation.h). Errors: as
// auth::RotateKeysCommand, plus the database's.
absl::Status RotateKeys(const ServerConfig& config, const Clock* clock,
                        std::ostream& out);

// Applies pending migrations and reports the schema version on `out`.
// Errors: as store::Migrate.
absl::Status MigrateDatabase(const ServerConfig& config, std::ostream& out);

}  // namespace drover::queue::server

#endif  // DROVER_QUEUE_SERVER_SERVE_H_
