// Client credentials: who a caller is, and how that travels to the server.
//
// Two kinds (see docs/cli.md and the auth docs):
//   - a permanent client: client id + access token;
//   - temporary credentials: a certificate (base64url) signed by the server,
//     optionally with the client id it names.
// Either may carry authorized scopes, which narrow what one call may do.
//
// On the wire every call carries gRPC metadata: drover-client-id,
// drover-access-token, drover-certificate and drover-authorized-scopes (a
// JSON array), each only when set.
//
// Sources, highest precedence first (LoadCredentials):
//   1. an explicitly named credentials file (--credentials flag);
//   2. DROVER_CLIENT_ID / DROVER_ACCESS_TOKEN / DROVER_CERTIFICATE
//      (+ DROVER_AUTHORIZED_SCOPES, a JSON array);
//   3. the file named by DROVER_CREDENTIALS_FILE;
//   4. the default file $XDG_CONFIG_HOME/drover/credentials.json
//      (~/.config/drover/credentials.json), when it exists;
//   5. none: calls are anonymous.
// The file is a JSON object with the keys clientId, accessToken,
// certificate, authorizedScopes (array) and expires (RFC 3339, optional).
#ifndef DROVER_CLIENT_CREDENTIALS_H_
#define DROVER_CLIENT_CREDENTIALS_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/environment.h"

namespace grpc {
class ClientContext;
}

namespace drover::client {

inline constexpr std::string_view kClientIdHeader = "drover-client-id";
inline constexpr std::string_view kAccessTokenHeader = "drover-access-token";
inline constexpr std::string_view kCertificateHeader = "drover-certificate";
inline constexpr std::string_view kAuthorizedScopesHeader =
    "drover-authorized-scopes";

struct Credentials {
  std::string client_id;
  std::string access_token;
  // Temporary credentials: a server-signed certificate, base64url.
  std::string certificate;
  // When non-empty, narrows each call to these scopes.
  std::vector<std::string> authorized_scopes;
  // When the credentials stop working (informational; the server decides).
  std::optional<absl::Time> expires;
  // Where they came from, for messages: "environment", a file path, or "".
  std::string source;

  // True when no credentials are set: calls are anonymous.
  bool Anonymous() const {
    return client_id.empty() && access_token.empty() && certificate.empty();
  }
};

// Checks that a credential set is one of the two kinds. Errors: InputError
// naming the missing or conflicting field (clientId, accessToken,
// certificate) and `credentials.source`.
absl::Status ValidateCredentials(const Credentials& credentials);

// Parses the JSON credentials file format. `source` names the file in
// errors. Errors: InputError naming the offending key (e.g.
// "authorizedScopes[1]") for bad JSON, unknown keys or wrong types, and
// whatever ValidateCredentials reports.
absl::StatusOr<Credentials> ParseCredentialsJson(std::string_view text,
                                                 std::string_view source);

// Reads and parses a credentials file. Errors: InputError on field
// "credentials" when the file cannot be read; ParseCredentialsJson's errors.
absl::StatusOr<Credentials> ReadCredentialsFile(const std::string& path);

// Reads DROVER_CLIENT_ID, DROVER_ACCESS_TOKEN, DROVER_CERTIFICATE and
// DROVER_AUTHORIZED_SCOPES. Returns nullopt when none of the first three is
// set. Errors: InputError naming the variable for a malformed
// DROVER_AUTHORIZED_SCOPES or an incomplete set.
absl::StatusOr<std::optional<Credentials>> CredentialsFromEnvironment(
    const EnvLookup& env);

// $XDG_CONFIG_HOME/drover/credentials.json, else
// $HOME/.config/drover/credentials.json; empty when neither variable is set.
std::string DefaultCredentialsPath(const EnvLookup& env);

// Applies the precedence order above. `explicit_file` is the --credentials
// flag (empty when not given). Thread-safe. Errors: those of the sources
// consulted; a missing default file is not an error, a missing named one is.
absl::StatusOr<Credentials> LoadCredentials(const EnvLookup& env,
                                            std::string_view explicit_file);

// Adds the credentials' metadata to a call. Anonymous credentials add
// nothing. Thread-safe for distinct contexts.
void AttachCredentials(const Credentials& credentials,
                       grpc::ClientContext* context);

}  // namespace drover::client

#endif  // DROVER_CLIENT_CREDENTIALS_H_
