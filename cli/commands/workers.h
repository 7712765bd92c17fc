// `drover pools ...` and `drover workers ...` (drover.v1.WorkerManager):
//
//   drover pools                       capacity of every pool (a table)
//   drover pools create POOL --owner O [--description D] [--min N] [--max N]
//       [--registration-timeout 1d] [--reregistration-timeout 96h]
//       [--inactivity-timeout 2h] [--sunset T] [--worker-config JSON]
//   drover pools update POOL [same flags; unset ones keep their value]
//   drover pools delete POOL
//   drover pools get POOL              configuration and capacity
//   drover pools list                  ids, owners, providers
//   drover pools registration-secret POOL [--remove]
//                                      prints the new secret once
//   drover workers create POOL GROUP ID [--capacity N]
//                                      prints the static secret once
//   drover workers list POOL [--state S|all]
//   drover workers get POOL GROUP ID
//   drover workers quarantine POOL GROUP ID --until T --reason R
//   drover workers quarantine POOL GROUP ID --lift
//   drover workers remove POOL GROUP ID
//
// --json prints the responses in the protobuf JSON mapping.
#ifndef DROVER_CLI_COMMANDS_WORKERS_H_
#define DROVER_CLI_COMMANDS_WORKERS_H_

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/context.h"
#include "client/worker_manager_client.h"

namespace drover::cli::commands {

// Adds the `pools` and `workers` command groups to `app`; commands run
// against `context`, which must outlive `app`'s parse.
void AddWorkerManagerCommands(CLI::App& app, Context& context);

// A WorkerManagerClient on the context's connection. Errors: the
// context's local ones.
absl::StatusOr<std::unique_ptr<client::WorkerManagerClient>>
WorkerManagerClientFor(Context& context);

// "96h", "1d", "30m", "1h30m" or plain seconds, as whole seconds.
// Errors: InputError on `field`. Pure.
absl::StatusOr<int64_t> ParseTimeoutSeconds(const std::string& text,
                                            const std::string& field);

// The `drover pools` table. Pure.
std::string FormatPoolStats(const std::vector<v1::WorkerPoolStats>& stats);
// The `drover workers list` table, ages relative to `now`. Pure.
std::string FormatWorkers(const std::vector<v1::Worker>& workers,
                          absl::Time now);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_WORKERS_H_
