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
// Where it listens is printed to `out`. Errors: from the database (the
// embedded cluster cannot start, the schema is newer than this binary,
// naming both versions) or a listener that cannot bind.
absl::Status Serve(const ServerConfig& config, const Clock* clock,
                   queue_service::Authorizer* authorizer,
                   ShutdownSignal* signal, std::ostream& out);

// Applies pending migrations and reports the schema version on `out`.
// Errors: as store::Migrate.
absl::Status MigrateDatabase(const ServerConfig& config, std::ostream& out);

}  // namespace drover::queue::server

#endif  // DROVER_QUEUE_SERVER_SERVE_H_
