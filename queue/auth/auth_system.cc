#include "queue/auth/auth_system.h"

#include <filesystem>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "common/crypto/secret_file.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "queue/auth/key_rotation.h"
#include "spdlog/spdlog.h"

namespace drover::queue::auth {
namespace {

namespace fs = std::filesystem;

// The key id of a generated KeyRing; rotations append k2, k3, ...
constexpr char kFirstKeyId[] = "k1";

absl::Status EnsurePrivateDirectory(const std::string& path) {
  std::error_code ec;
  const bool existed = fs::exists(path, ec);
  fs::create_directories(path, ec);
  if (ec) {
    return InputError("data-dir", path,
                      "cannot create the directory: " + ec.message());
  }
  if (!existed) fs::permissions(path, fs::perms::owner_all, ec);
  return absl::OkStatus();
}

// Writes a generated secret unless someone else got there first (then
// their file wins and is read back by the caller).
absl::Status WriteGenerated(const std::string& path,
                            const std::string& contents) {
  DROVER_RETURN_IF_ERROR(
      EnsurePrivateDirectory(fs::path(path).parent_path().string()));
  absl::Status written = crypto::WriteSecretFile(path, contents, false);
  if (!written.ok() &&
      !HasErrorCode(written, ErrorCode::kRequestConflict)) {
    return written;
  }
  if (written.ok()) spdlog::info("generated {}", path);
  return absl::OkStatus();
}

absl::StatusOr<crypto::KeyRing> LoadKeyRing(const AuthConfig& config,
                                            const std::string& data_dir,
                                            bool generate) {
  if (!config.crypto_keys.keys.empty() ||
      !config.crypto_keys.key_file.empty()) {
    return crypto::KeyRing::Load(config.crypto_keys);
  }
  const std::string path = KeysDirectory(data_dir) + "/crypto-keys";
  if (!fs::exists(path)) {
    if (!generate) {
      return InputError("crypto-keys", "",
                        "no encryption keys are configured: set "
                        "DROVER_CRYPTO_KEYS or --crypto-key-file (or put "
                        "them in " +
                            path + ")");
    }
    DROVER_ASSIGN_OR_RETURN(std::string entry,
                            crypto::KeyRing::GenerateEntry(kFirstKeyId));
    DROVER_RETURN_IF_ERROR(WriteGenerated(
        path,
        "# Keys of drover-queue's encrypted columns, id:base64key, one per "
        "line.\n# The last one encrypts; append a new one to rotate, then "
        "run `drover-queue rotate-keys`.\n" +
            entry + "\n"));
  }
  crypto::KeyRingOptions from_file;
  from_file.key_file = path;
  return crypto::KeyRing::Load(from_file);
}

absl::StatusOr<std::shared_ptr<const crypto::SigningKey>> LoadSigningKey(
    const AuthConfig& config, const std::string& data_dir, bool generate) {
  const std::string path = config.signing_key_file.empty()
                               ? KeysDirectory(data_dir) + "/signing-key"
                               : config.signing_key_file;
  if (!fs::exists(path)) {
    if (!generate) {
      return InputError("signing-key-file", path,
                        "the signing key file does not exist; create one "
                        "(or run with --generate-keys=always once)");
    }
    crypto::SigningKey key = crypto::SigningKey::Generate();
    DROVER_RETURN_IF_ERROR(
        EnsurePrivateDirectory(fs::path(path).parent_path().string()));
    absl::Status saved = key.SaveToFile(path, false);
    if (!saved.ok() && !HasErrorCode(saved, ErrorCode::kRequestConflict)) {
      return saved;
    }
    if (saved.ok()) spdlog::info("generated {}", path);
  }
  DROVER_ASSIGN_OR_RETURN(crypto::SigningKey key,
                          crypto::SigningKey::LoadFromFile(path));
  return std::make_shared<const crypto::SigningKey>(std::move(key));
}

absl::StatusOr<crypto::TokenHasher> LoadTokenHasher(
    const AuthConfig& config, const std::string& data_dir, bool generate) {
  if (!config.token_hash_key.empty()) {
    return crypto::TokenHasher::FromBase64Key(config.token_hash_key,
                                              "token-hash-key");
  }
  const std::string path = config.token_hash_key_file.empty()
                               ? KeysDirectory(data_dir) + "/token-hash-key"
                               : config.token_hash_key_file;
  if (!fs::exists(path)) {
    if (!generate) {
      return InputError("token-hash-key-file", path,
                        "no token-hash key is configured: set "
                        "DROVER_TOKEN_HASH_KEY or --token-hash-key-file");
    }
    DROVER_RETURN_IF_ERROR(WriteGenerated(
        path, crypto::TokenHasher::Generate().KeyBase64() + "\n"));
  }
  DROVER_ASSIGN_OR_RETURN(std::string text, crypto::ReadSecretFile(path));
  // Debian's absl::string_view is not std::string_view.
  return crypto::TokenHasher::FromBase64Key(
      std::string(absl::StripAsciiWhitespace(text)), "token-hash-key-file");
}

// The static clients file: a JSON array of
// {"clientId", "accessToken", "scopes"?, "description"?}.
absl::StatusOr<std::vector<StaticClient>> ParseStaticClients(
    const std::string& text, const std::string& path,
    const crypto::TokenHasher& hasher) {
  const std::string field = "static-clients-file";
  nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_array()) {
    return InputError(field, path,
                      "must hold a JSON array of {clientId, accessToken, "
                      "scopes, description} objects");
  }
  std::vector<StaticClient> clients;
  std::set<std::string> seen;
  for (size_t i = 0; i < json.size(); ++i) {
    const std::string at = field + "[" + std::to_string(i) + "]";
    const nlohmann::json& entry = json[i];
    if (!entry.is_object()) return InputError(at, path, "must be an object");
    for (const auto& item : entry.items()) {
      if (item.key() != "clientId" && item.key() != "accessToken" &&
          item.key() != "scopes" && item.key() != "description") {
        return InputError(at + "." + item.key(), path, "unknown key");
      }
    }
    StaticClient client;
    if (!entry.contains("clientId") || !entry["clientId"].is_string()) {
      return InputError(at + ".clientId", path, "a string is required");
    }
    client.client_id = entry["clientId"].get<std::string>();
    DROVER_RETURN_IF_ERROR(ValidateClientId(at + ".clientId", client.client_id));
    if (!seen.insert(client.client_id).second) {
      return InputError(at + ".clientId", client.client_id,
                        "appears more than once");
    }
    if (!entry.contains("accessToken") || !entry["accessToken"].is_string()) {
      return InputError(at + ".accessToken", "", "a string is required");
    }
    const std::string token = entry["accessToken"].get<std::string>();
    // Never echo the token: the value detail names the client instead.
    if (token.size() < 22 || token.size() > 256) {
      return InputError(at + ".accessToken", client.client_id,
                        "must be 22..256 characters (at least 128 bits)");
    }
    for (char c : token) {
      if (c <= 0x20 || c > 0x7e) {
        return InputError(at + ".accessToken", client.client_id,
                          "must be printable ASCII without spaces");
      }
    }
    client.access_token_hash = hasher.Hash(client.client_id, token);
    if (entry.contains("scopes")) {
      if (!entry["scopes"].is_array()) {
        return InputError(at + ".scopes", path, "must be an array of scopes");
      }
      DROVER_ASSIGN_OR_RETURN(client.scopes,
                              ParseScopeList(entry["scopes"].dump(),
                                             at + ".scopes"));
    }
    if (entry.contains("description")) {
      if (!entry["description"].is_string()) {
        return InputError(at + ".description", path, "must be a string");
      }
      client.description = entry["description"].get<std::string>();
    }
    clients.push_back(std::move(client));
  }
  return clients;
}

}  // namespace

std::string KeysDirectory(const std::string& data_dir) {
  return (fs::path(data_dir) / "keys").string();
}

std::string DefaultRootCredentialsFile(const std::string& data_dir) {
  return (fs::path(data_dir) / "root-credentials.json").string();
}

absl::StatusOr<ServerKeys> LoadServerKeys(const AuthConfig& config,
                                          const std::string& data_dir,
                                          bool generate) {
  DROVER_ASSIGN_OR_RETURN(crypto::KeyRing keyring,
                          LoadKeyRing(config, data_dir, generate));
  DROVER_ASSIGN_OR_RETURN(auto signing_key,
                          LoadSigningKey(config, data_dir, generate));
  std::vector<crypto::VerifyKey> verify_keys = {signing_key->verify_key()};
  for (size_t i = 0; i < config.trusted_verify_keys.size(); ++i) {
    DROVER_ASSIGN_OR_RETURN(
        crypto::VerifyKey key,
        crypto::VerifyKey::Parse(
            config.trusted_verify_keys[i],
            "trusted-verify-key[" + std::to_string(i) + "]"));
    verify_keys.push_back(std::move(key));
  }
  DROVER_ASSIGN_OR_RETURN(crypto::TokenHasher hasher,
                          LoadTokenHasher(config, data_dir, generate));
  return ServerKeys{std::move(keyring), std::move(signing_key),
                    std::move(verify_keys), std::move(hasher)};
}

AuthSystem::AuthSystem(AuthSystemOptions options, ServerKeys keys,
                       const Clock* clock)
    : options_(std::move(options)), keys_(std::move(keys)), clock_(clock) {}

absl::StatusOr<std::unique_ptr<AuthSystem>> AuthSystem::Open(
    AuthSystemOptions options, store::Store* tasks, const Clock* clock,
    std::ostream& out) {
  const AuthConfig& config = options.config;
  const bool generate =
      config.generate_keys == KeyGeneration::kAlways ||
      (config.generate_keys == KeyGeneration::kAuto &&
       options.embedded_database);
  DROVER_ASSIGN_OR_RETURN(ServerKeys keys,
                          LoadServerKeys(config, options.data_dir, generate));
  std::unique_ptr<AuthSystem> system(
      new AuthSystem(std::move(options), std::move(keys), clock));
  AuthSystem& s = *system;
  const AuthSystemOptions& o = s.options_;
  s.root_file_ = o.config.root_credentials_file.empty()
                     ? DefaultRootCredentialsFile(o.data_dir)
                     : o.config.root_credentials_file;
  DROVER_ASSIGN_OR_RETURN(s.server_credentials_, ServerCredentials(o.config));

  AuthStoreOptions store_options;
  store_options.connection_string = o.connection_string;
  store_options.pool_size = o.pool_size;
  DROVER_ASSIGN_OR_RETURN(s.store_, AuthStore::Open(store_options, clock));
  secrets::SecretsStoreOptions secrets_options;
  secrets_options.connection_string = o.connection_string;
  secrets_options.pool_size = o.pool_size;
  DROVER_ASSIGN_OR_RETURN(s.secrets_store_,
                          secrets::SecretsStore::Open(secrets_options, clock));

  AuthStateOptions state_options;
  state_options.listen_connection_string = o.connection_string;
  state_options.poll_interval = o.config.refresh_interval;
  s.state_ = std::make_unique<AuthState>(s.store_.get(), state_options);
  DROVER_RETURN_IF_ERROR(s.state_->Start());

  s.verifier_ =
      std::make_unique<CertificateVerifier>(s.keys_.verify_keys, *clock);
  s.issuer_ =
      std::make_unique<CertificateIssuer>(s.keys_.signing_key, *clock);
  s.authorizer_ = std::make_unique<ScopeAuthorizer>(
      s.state_.get(), s.store_.get(), s.verifier_.get(), s.keys_.token_hasher,
      tasks, clock);
  s.task_credentials_ =
      std::make_unique<ServerTaskCredentialsIssuer>(s.issuer_.get(), clock);
  s.executor_ = std::make_unique<queue_service::BoundedExecutor>(
      o.rpc_threads, o.rpc_queue);
  s.auth_service_ = std::make_unique<AuthService>(
      s.store_.get(), s.state_.get(), s.authorizer_.get(), s.issuer_.get(),
      s.keys_.token_hasher, clock, s.executor_.get());
  s.secrets_service_ = std::make_unique<secrets::SecretsService>(
      s.secrets_store_.get(), &s.keys_.keyring, s.authorizer_.get(), clock,
      s.executor_.get());

  DROVER_RETURN_IF_ERROR(s.ApplyStaticClients());
  DROVER_RETURN_IF_ERROR(s.Bootstrap(out));
  DROVER_RETURN_IF_ERROR(s.state_->Refresh());
  if (o.run_sweeper) s.sweeper_ = std::thread([&s] { s.SweepLoop(); });
  return system;
}

AuthSystem::~AuthSystem() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (sweeper_.joinable()) sweeper_.join();
  if (executor_ != nullptr) executor_->Shutdown();
  if (state_ != nullptr) state_->Stop();
}

absl::Status AuthSystem::ApplyStaticClients() {
  std::vector<StaticClient> clients;
  if (!options_.config.static_clients_file.empty()) {
    const std::string& path = options_.config.static_clients_file;
    absl::StatusOr<std::string> text = crypto::ReadSecretFile(path);
    if (!text.ok()) {
      ErrorInfo info = GetErrorInfo(text.status());
      return MakeError(info.code == ErrorCode::kResourceNotFound
                           ? ErrorCode::kInputError
                           : info.code,
                       "static-clients-file: " + info.message,
                       {{"field", "static-clients-file"}, {"value", path}});
    }
    DROVER_ASSIGN_OR_RETURN(
        clients, ParseStaticClients(*text, path, keys_.token_hasher));
  }
  DROVER_ASSIGN_OR_RETURN(int removed, store_->ReplaceStaticClients(clients));
  if (!clients.empty() || removed > 0) {
    spdlog::info("static clients: {} configured, {} removed", clients.size(),
                 removed);
  }
  state_->ClientsChanged();
  return absl::OkStatus();
}

absl::Status AuthSystem::Bootstrap(std::ostream& out) {
  const std::string& client_id = options_.config.root_client_id;
  DROVER_RETURN_IF_ERROR(ValidateClientId("root-client-id", client_id));
  const std::string token = crypto::GenerateAccessToken();
  ClientRecord root;
  root.client_id = client_id;
  root.description =
      "Created when drover-queue first started on this database; holds every "
      "scope. Use it to create clients for people and workers.";
  root.access_token_hash = keys_.token_hasher.Hash(client_id, token);
  root.scopes = {"*"};
  root.expires = NeverExpires();
  nlohmann::json credentials = {{"clientId", client_id},
                                {"accessToken", token}};
  DROVER_ASSIGN_OR_RETURN(
      bootstrapped_, store_->Bootstrap(root, [&]() -> absl::Status {
        // Written before the commit: if the commit fails, the next start
        // bootstraps again and overwrites this file.
        DROVER_RETURN_IF_ERROR(EnsurePrivateDirectory(
            fs::path(root_file_).parent_path().string()));
        return crypto::WriteSecretFile(root_file_, credentials.dump(2) + "\n",
                                       /*overwrite=*/true);
      }));
  if (bootstrapped_) {
    state_->ClientsChanged();
    out << "drover-queue: created client " << client_id
        << " (scopes: *); its credentials are in " << root_file_
        << " (mode 0600). Use them with: DROVER_CREDENTIALS_FILE="
        << root_file_ << " drover whoami" << std::endl;
    spdlog::info("bootstrapped client {}; credentials written to {}",
                 client_id, root_file_);
  }
  return absl::OkStatus();
}

absl::StatusOr<int> AuthSystem::SweepOnce() {
  int total = 0;
  const int batch = options_.config.batch;
  while (true) {
    DROVER_ASSIGN_OR_RETURN(int n, secrets_store_->DeleteExpired(batch));
    total += n;
    if (n < batch) break;
  }
  while (true) {
    DROVER_ASSIGN_OR_RETURN(int n, store_->DeleteExpiredClients(batch));
    total += n;
    if (n > 0) state_->ClientsChanged();
    if (n < batch) break;
  }
  return total;
}

void AuthSystem::SweepLoop() {
  const auto interval =
      absl::ToChronoMilliseconds(options_.config.sweep_interval);
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (stop_cv_.wait_for(lock, interval, [this] { return stop_; })) return;
    }
    absl::StatusOr<int> swept = SweepOnce();
    if (!swept.ok()) {
      spdlog::warn("sweeping expired secrets and clients: {}",
                   swept.status().ToString());
    } else if (*swept > 0) {
      spdlog::info("deleted {} expired secrets and clients", *swept);
    }
  }
}

absl::Status RotateKeysCommand(
    const AuthConfig& config, const std::string& data_dir,
    const std::string& connection_string, const Clock* clock, std::ostream& out,
    const std::vector<EncryptedColumn*>& more_columns) {
  DROVER_ASSIGN_OR_RETURN(crypto::KeyRing keyring,
                          LoadKeyRing(config, data_dir, /*generate=*/false));
  secrets::SecretsStoreOptions options;
  options.connection_string = connection_string;
  options.pool_size = 1;
  DROVER_ASSIGN_OR_RETURN(auto secrets,
                          secrets::SecretsStore::Open(options, clock));
  std::vector<EncryptedColumn*> columns = {secrets.get()};
  columns.insert(columns.end(), more_columns.begin(), more_columns.end());
  out << "drover-queue rotate-keys: re-encrypting under key "
      << keyring.current_key_id() << std::endl;
  DROVER_ASSIGN_OR_RETURN(std::vector<ColumnRotation> report,
                          RotateKeys(columns, keyring, config.batch, &out));
  std::vector<std::string> failed;
  for (const ColumnRotation& column : report) {
    out << column.column << ": " << column.reencrypted << " re-encrypted;";
    for (const auto& [key_id, count] : column.by_key_id) {
      out << " " << count << " under " << key_id;
    }
    out << std::endl;
    for (const std::string& key : column.failed) {
      failed.push_back(column.column + " " + key);
    }
  }
  const int64_t left = RowsUnderOldKeys(report, keyring.current_key_id());
  if (!failed.empty()) {
    std::string names;
    for (size_t i = 0; i < failed.size() && i < 10; ++i) {
      names += (i > 0 ? ", " : "") + failed[i];
    }
    return ConflictError(
        std::to_string(failed.size()) +
            " rows could not be decrypted with the configured keys (" + names +
            "); they keep their old key",
        {{"failed", std::to_string(failed.size())}});
  }
  if (left > 0) {
    return ConflictError(std::to_string(left) +
                             " rows are still under older keys (written "
                             "concurrently?); run rotate-keys again",
                         {{"remaining", std::to_string(left)}});
  }
  out << "drover-queue rotate-keys: every encrypted value is under key "
      << keyring.current_key_id()
      << "; older keys may now be removed from the configuration"
      << std::endl;
  return absl::OkStatus();
}

}  // namespace drover::queue::auth
