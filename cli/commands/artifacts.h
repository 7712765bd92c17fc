// `drover artifacts ...`: list a task's artifacts, download one.
//
//   drover artifacts list TASK [--run N] [--page-size N]
//   drover artifacts get TASK NAME [--run N] [-o FILE]
//
// Without --run both use the task's latest run. `get` writes the bytes
// (gunzipped when stored gzip-encoded) to stdout or FILE, with a progress
// line on stderr for large files written to FILE; an error artifact prints
// its reason and message and exits 1.
#ifndef DROVER_CLI_COMMANDS_ARTIFACTS_H_
#define DROVER_CLI_COMMANDS_ARTIFACTS_H_

#include <memory>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cli/context.h"
#include "client/artifacts_client.h"
#include "drover/v1/artifacts.pb.h"

namespace drover::cli::commands {

// Adds the `artifacts` command group to `app`; commands run against
// `context`, which must outlive `app`'s parse.
void AddArtifactCommands(CLI::App& app, Context& context);

// An ArtifactsClient on the context's connection (same URL, credentials
// and timeout as every other command). Errors: the context's local ones.
absl::StatusOr<std::unique_ptr<client::ArtifactsClient>> ArtifactsClientFor(
    Context& context);

// The `artifacts list` table: NAME, KIND, SIZE or TARGET, CONTENT-TYPE,
// EXPIRES. Pure.
std::string FormatArtifacts(const v1::ListArtifactsResponse& listing);

// "12.0 MiB / 100.0 MiB (12%)" (total < 0: "12.0 MiB"). Pure.
std::string FormatProgress(int64_t done, int64_t total);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_ARTIFACTS_H_
