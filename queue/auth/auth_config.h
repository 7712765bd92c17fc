// AuthConfig: drover-queue's settings for authentication, encryption keys,
// bootstrap and TLS, with their command-line flags (each also settable as
// DROVER_<NAME> in the environment or in the JSON config file).
//
// Keys (none of them ever stored in the database):
//   --crypto-keys / DROVER_CRYPTO_KEYS, or --crypto-key-file: the KeyRing
//       of encrypted columns ("id:base64key" entries; the last encrypts);
//   --signing-key-file: the Ed25519 key signing temporary credentials;
//       --trusted-verify-key (repeatable, "ed25519:...") adds old public
//       keys still accepted while a signing key is rotated;
//   --token-hash-key / DROVER_TOKEN_HASH_KEY, or --token-hash-key-file:
//       the key of the access-token hashes.
// Unset keys are read from <data-dir>/keys/, and generated there (mode
// 0600) when missing if --generate-keys allows: "auto" (the default) does
// so only with the embedded PostgreSQL, because replicas sharing a
// database must share their keys.
//
// Bootstrap: the first server on a database creates the client
// --root-client-id (scopes "*") and writes its credentials, in the CLI's
// credentials-file format, to --root-credentials-file (default
// <data-dir>/root-credentials.json, mode 0600). --static-clients-file names
// a JSON file (mode 0600) of clients the server keeps exactly as
// configured: [{"clientId", "accessToken", "scopes", "description"}].
//
// TLS: --tls-cert and --tls-key (PEM) serve gRPC over TLS; --tls-client-ca
// additionally requires client certificates signed by that CA.
#ifndef DROVER_QUEUE_AUTH_AUTH_CONFIG_H_
#define DROVER_QUEUE_AUTH_AUTH_CONFIG_H_

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/crypto/keyring.h"
#include "grpcpp/security/server_credentials.h"

namespace drover::queue::auth {

enum class KeyGeneration { kAuto, kAlways, kNever };

struct AuthConfig {
  crypto::KeyRingOptions crypto_keys;
  std::string signing_key_file;
  std::vector<std::string> trusted_verify_keys;
  std::string token_hash_key;
  std::string token_hash_key_file;
  KeyGeneration generate_keys = KeyGeneration::kAuto;

  std::string root_client_id = "root";
  std::string root_credentials_file;
  std::string static_clients_file;

  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;

  // How often each replica re-reads the auth generation counters (role and
  // client changes from other replicas are normally noticed at once
  // through NOTIFY; this bounds the delay when a notification is lost).
  absl::Duration refresh_interval = absl::Seconds(1);
  // How often expired secrets and expired clients are deleted.
  absl::Duration sweep_interval = absl::Minutes(5);
  // Rows per transaction for rotate-keys and the sweeper.
  int batch = 100;
};

// Binds `config`'s flags on `app`; call ResolveAuthFlags after parsing.
class AuthFlags {
 public:
  AuthFlags(CLI::App& app, AuthConfig* config);
  // Converts the textual settings. Errors: InputError naming the flag.
  absl::Status Resolve();

 private:
  AuthConfig* config_;
  std::string generate_keys_ = "auto";
  std::string refresh_interval_ = "1s";
  std::string sweep_interval_ = "5m";
};

// The gRPC listener's credentials: TLS when tls_cert/tls_key are set
// (requiring client certificates when tls_client_ca is), else plaintext.
// Errors: InputError naming the flag when only one of cert/key is given, a
// client CA without them, or a file that cannot be read or is empty.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const AuthConfig& config);

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_AUTH_CONFIG_H_
