// `drover secrets ...` (drover.v1.Secrets):
//
//   drover secrets set NAME [VALUE|-] [--string] [--expires T]
//       VALUE is JSON (read from stdin when "-" or omitted); --string
//       stores the text as a JSON string instead
//   drover secrets get NAME      prints the JSON value (--json: the
//                                whole response)
//   drover secrets remove NAME
//   drover secrets list [--prefix P]   names only
#ifndef DROVER_CLI_COMMANDS_SECRETS_H_
#define DROVER_CLI_COMMANDS_SECRETS_H_

#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "cli/context.h"
#include "client/secrets_client.h"

namespace drover::cli::commands {

// Adds the `secrets` command group to `app`; commands run against
// `context`, which must outlive `app`'s parse.
void AddSecretsCommands(CLI::App& app, Context& context);

// A SecretsClient on the context's connection. Errors: the context's
// local ones.
absl::StatusOr<std::unique_ptr<client::SecretsClient>> SecretsClientFor(
    Context& context);

// The value to store: `text` as given when it is JSON, or as a JSON string
// with `as_string`. Errors: InputError("VALUE") for text that is not JSON
// (the text itself is not echoed: it is a secret). Pure.
absl::StatusOr<std::string> SecretValue(const std::string& text,
                                        bool as_string);

}  // namespace drover::cli::commands

#endif  // DROVER_CLI_COMMANDS_SECRETS_H_
