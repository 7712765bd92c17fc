#include "queue/auth/auth_config.h"

#include <fstream>
#include <sstream>

#include "absl/time/time.h"
#include "common/config.h"
#include "common/status.h"

namespace drover::queue::auth {
namespace {

template <typename T>
CLI::Option* Option(CLI::App& app, const std::string& name, T& value,
                    const std::string& help) {
  return app.add_option("--" + name, value, help)->envname(EnvName(name));
}

absl::StatusOr<absl::Duration> ParseInterval(std::string_view field,
                                             const std::string& text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d < absl::Milliseconds(10)) {
    return InputError(field, text,
                      "must be a duration of at least 10ms, e.g. 1s, 5m");
  }
  return d;
}

absl::StatusOr<std::string> ReadPem(std::string_view field,
                                    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return InputError(field, path, "cannot read this PEM file (or it is empty)");
  }
  return text.str();
}

}  // namespace

AuthFlags::AuthFlags(CLI::App& app, AuthConfig* config) : config_(config) {
  crypto::AddKeyRingOptions(app, config->crypto_keys);
  Option(app, "signing-key-file", config->signing_key_file,
         "Ed25519 key signing temporary credentials (default: "
         "<data-dir>/keys/signing-key)");
  Option(app, "trusted-verify-key", config->trusted_verify_keys,
         "Extra public keys (ed25519:...) whose certificates are still "
         "accepted, for signing-key rotation (repeatable)");
  Option(app, "token-hash-key", config->token_hash_key,
         "Base64 32-byte key of the access-token hashes (default: "
         "--token-hash-key-file)");
  Option(app, "token-hash-key-file", config->token_hash_key_file,
         "File (mode 0600) holding the token-hash key (default: "
         "<data-dir>/keys/token-hash-key)");
  Option(app, "generate-keys", generate_keys_,
         "Generate missing keys into <data-dir>/keys: auto (only with the "
         "embedded PostgreSQL), always or never")
      ->capture_default_str();
  Option(app, "root-client-id", config->root_client_id,
         "Client created with scopes * when a database is first used")
      ->capture_default_str();
  Option(app, "root-credentials-file", config->root_credentials_file,
         "Where the bootstrap writes the root client's credentials "
         "(default: <data-dir>/root-credentials.json)");
  Option(app, "static-clients-file", config->static_clients_file,
         "JSON file (mode 0600) of clients kept as configured: "
         "[{clientId, accessToken, scopes, description}]");
  Option(app, "tls-cert", config->tls_cert,
         "PEM certificate chain of the gRPC listener (enables TLS)");
  Option(app, "tls-key", config->tls_key, "PEM private key for --tls-cert");
  Option(app, "tls-client-ca", config->tls_client_ca,
         "PEM CA certificates; clients must present a certificate they sign");
  Option(app, "auth-refresh-interval", refresh_interval_,
         "How often cached roles and clients are checked against the "
         "database")
      ->capture_default_str();
  Option(app, "sweep-interval", sweep_interval_,
         "How often expired secrets and clients are deleted")
      ->capture_default_str();
  Option(app, "auth-batch", config->batch,
         "Rows per transaction for rotate-keys and the expiry sweeper")
      ->capture_default_str();
}

absl::Status AuthFlags::Resolve() {
  if (generate_keys_ == "auto") {
    config_->generate_keys = KeyGeneration::kAuto;
  } else if (generate_keys_ == "always") {
    config_->generate_keys = KeyGeneration::kAlways;
  } else if (generate_keys_ == "never") {
    config_->generate_keys = KeyGeneration::kNever;
  } else {
    return InputError("generate-keys", generate_keys_,
                      "must be auto, always or never");
  }
  DROVER_ASSIGN_OR_RETURN(
      config_->refresh_interval,
      ParseInterval("auth-refresh-interval", refresh_interval_));
  DROVER_ASSIGN_OR_RETURN(config_->sweep_interval,
                          ParseInterval("sweep-interval", sweep_interval_));
  if (config_->batch < 1 || config_->batch > 10000) {
    return InputError("auth-batch", std::to_string(config_->batch),
                      "must be within 1..10000");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const AuthConfig& config) {
  if (config.tls_cert.empty() != config.tls_key.empty()) {
    return config.tls_cert.empty()
               ? InputError("tls-cert", "",
                            "--tls-key needs --tls-cert as well")
               : InputError("tls-key", "",
                            "--tls-cert needs --tls-key as well");
  }
  if (config.tls_cert.empty()) {
    if (!config.tls_client_ca.empty()) {
      return InputError("tls-client-ca", config.tls_client_ca,
                        "client certificates need TLS: set --tls-cert and "
                        "--tls-key");
    }
    return grpc::InsecureServerCredentials();
  }
  grpc::SslServerCredentialsOptions ssl(
      config.tls_client_ca.empty()
          ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
          : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  DROVER_ASSIGN_OR_RETURN(pair.cert_chain, ReadPem("tls-cert", config.tls_cert));
  DROVER_ASSIGN_OR_RETURN(pair.private_key, ReadPem("tls-key", config.tls_key));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!config.tls_client_ca.empty()) {
    DROVER_ASSIGN_OR_RETURN(ssl.pem_root_certs,
                            ReadPem("tls-client-ca", config.tls_client_ca));
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace drover::queue::auth
