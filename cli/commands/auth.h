// Identity and access commands (drover.v1.Auth):
//
//   drover signin [--scope S]... [--expires 1d] [--name ID] [-o FILE]
//       mints temporary credentials from the current (permanent) ones and
//       prints shell exports, for `eval "$(drover signin ...)"`, or writes
//       them to FILE (mode 0600) in the credentials-file format
//       (DROVER_CREDENTIALS_FILE=FILE or --credentials FILE then uses them)
//   drover whoami
//   drover clients create|list|get|update|reset-token|disable|enable|delete
//   drover roles create|list|get|update|delete|expand
//
// Access tokens are printed only by `clients create` and
// `clients reset-token` (the server shows them once).
#ifndef DROVER_CLI_COMMANDS_AUTH_H_
#define DROVER_CLI_COMMANDS_AUTH_H_

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cli/context.h"
#include "client/auth_client.h"
#include "drover/v1/auth.pb.h"

namespace drover::cli::commands {

// Adds `signin`, `whoami`, `clients` and `roles` to `app`; commands run
// against `context`, which must outlive `app`'s parse.
void AddAuthCommands(CLI::App& app, Context& context);

// An AuthClient on the context's connection (same URL, credentials and
// timeout as every other command). Errors: the context's local ones.
absl::StatusOr<std::unique_ptr<client::AuthClient>> AuthClientFor(
    Context& context);

// `eval`-able shell lines exporting temporary credentials: sets
// DROVER_CLIENT_ID and DROVER_CERTIFICATE and unsets DROVER_ACCESS_TOKEN.
// Pure.
std::string FormatSigninExports(
    const v1::CreateTemporaryCredentialsResponse& credentials);

// The credentials file for temporary credentials (JSON: clientId,
// certificate, expires). Pure.
std::string FormatCredentialsFile(
    const v1::CreateTemporaryCredentialsResponse& credentials);

// Applies `clients update`/`roles update` edits to a scope list: `replace`
// (when non-empty) replaces it, then `add` are appended and `remove`
// dropped; the result keeps first occurrences in order. Pure.
std::vector<std::string> EditScopes(std::vector<std::string> current,
                                    const std::vector<std::string>& replace,
                                    const std::vector<std::string>& add,
                                    const std::vector<std::string>& remove);

// Human-readable forms. Pure.
std::string FormatClient(const v1::Client& client);
std::string FormatRole(const v1::Role& role);
std::string FormatCurrentScopes(const v1::CurrentScopesResponse& whoami);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_AUTH_H_
