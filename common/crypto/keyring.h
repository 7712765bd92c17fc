// Encrypted columns: authenticated encryption of values stored in the
// database (secret values, worker re-registration secrets, ...) with
// libsodium's XChaCha20-Poly1305 (IETF), under keys that live only in
// configuration.
//
// A KeyRing holds one or more named 32-byte keys. The newest (last
// configured) key encrypts; any configured key decrypts, so keys can be
// rotated by appending a new key, re-encrypting every row (Reencrypt, driven
// by `drover-queue rotate-keys`), then removing the old key.
//
// Stored value layout (version 1), all of it authenticated:
//   byte 0       version (0x01)
//   byte 1       n = length of the key id (1..32)
//   bytes 2..    key id (n bytes, [A-Za-z0-9._-])
//   next 24      random nonce
//   rest         ciphertext followed by the 16-byte Poly1305 tag
// The associated data binds the value to its table, column and primary key,
// so a value copied to another row or column fails to decrypt instead of
// yielding someone else's secret.
#ifndef DROVER_COMMON_CRYPTO_KEYRING_H_
#define DROVER_COMMON_CRYPTO_KEYRING_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace drover::crypto {

// Where an encrypted value lives. All three parts are required; the primary
// key of a composite key should be joined unambiguously by the caller (e.g.
// "pool/group/id" where the parts cannot contain '/').
struct AssociatedData {
  std::string_view table;
  std::string_view column;
  std::string_view primary_key;
};

// Configuration of the key ring: exactly one of the two must be set.
struct KeyRingOptions {
  // "id:base64key" entries separated by commas, spaces or newlines.
  std::string keys;
  // A file (mode 0600) holding the same entries, one or more per line;
  // '#' starts a comment.
  std::string key_file;
};

// Registers --crypto-keys (env DROVER_CRYPTO_KEYS) and --crypto-key-file
// (env DROVER_CRYPTO_KEY_FILE) on `app`, storing into `options`, which must
// outlive parsing.
void AddKeyRingOptions(CLI::App& app, KeyRingOptions& options);

class KeyRing {
 public:
  static constexpr size_t kKeySize = 32;
  static constexpr size_t kMaxKeyIdLength = 32;
  static constexpr uint8_t kFormatVersion = 1;

  // Parses key entries. `source` names where the text came from (e.g. the
  // flag name) and prefixes the field of every error.
  // Errors: InputError naming the entry (field "crypto-keys[2]"; for a key
  // file loaded by Load, "/etc/drover/keys:3") and the key id (never the key
  // material) for a missing ':', an empty or invalid id (1..32 of
  // [A-Za-z0-9._-]), a duplicate id, base64 that does not decode, or a key that
  // is not 32 bytes; InputError when there are no entries at all.
  static absl::StatusOr<KeyRing> Parse(std::string_view text,
                                       std::string_view source);

  // Builds the ring from options: the inline keys or the key file (read with
  // ReadSecretFile, so it must not be group/world readable).
  // Errors: InputError when neither or both are set, plus Parse's and
  // ReadSecretFile's errors.
  static absl::StatusOr<KeyRing> Load(const KeyRingOptions& options);

  // A fresh random key as a configuration entry "id:base64key".
  // Errors: InputError when `id` is not a valid key id.
  static absl::StatusOr<std::string> GenerateEntry(std::string_view id);

  KeyRing(KeyRing&&) = default;
  KeyRing& operator=(KeyRing&&) = default;
  KeyRing(const KeyRing&) = delete;
  KeyRing& operator=(const KeyRing&) = delete;
  ~KeyRing() = default;

  // The id of the key that encrypts (the last configured).
  const std::string& current_key_id() const { return keys_.back().id; }
  // All configured ids, in configuration order.
  std::vector<std::string> key_ids() const;
  bool HasKey(std::string_view id) const { return Find(id) != nullptr; }

  // Encrypts under the current key with a fresh random nonce; the same
  // plaintext never encrypts to the same value twice.
  // Errors: InputError when a part of `ad` is empty. Thread-safe.
  absl::StatusOr<std::string> Encrypt(std::string_view plaintext,
                                      const AssociatedData& ad) const;

  // Verifies and decrypts a value made by Encrypt with the same associated
  // data. Never returns unauthenticated bytes.
  // Errors: InputError when a part of `ad` is empty; InternalError, with
  // table, column, primary_key and key_id in the details, when the value is
  // truncated or of an unknown format version, was encrypted under a key id
  // that is not configured, or fails authentication (a changed byte, a
  // different key under the same id, or a value moved from another row or
  // column). Thread-safe.
  absl::StatusOr<std::string> Decrypt(std::string_view ciphertext,
                                      const AssociatedData& ad) const;

  // For key rotation: decrypts `ciphertext` and, unless it is already under
  // the current key, encrypts it again under the current key. Returns
  // nullopt when nothing needs to change. Errors: Decrypt's. Thread-safe.
  absl::StatusOr<std::optional<std::string>> Reencrypt(
      std::string_view ciphertext, const AssociatedData& ad) const;

 private:
  struct Key {
    std::string id;
    std::array<unsigned char, kKeySize> bytes{};
    Key() = default;
    Key(Key&&) = default;
    Key& operator=(Key&&) = default;
    ~Key();
  };

  KeyRing() = default;
  // Parse, with errors naming "source:line" when `from_file`.
  static absl::StatusOr<KeyRing> ParseEntries(std::string_view text,
                                              std::string_view source,
                                              bool from_file);
  const Key* Find(std::string_view id) const;

  std::vector<Key> keys_;
};

// The key id a stored value was encrypted under, without decrypting it (the
// rotation command uses it to find rows still under an old key).
// Errors: InputError (field "ciphertext") when the value is truncated or of
// an unknown format version.
absl::StatusOr<std::string> KeyIdOf(std::string_view ciphertext);

// True when `id` is a valid key id: 1..32 characters of [A-Za-z0-9._-].
bool IsValidKeyId(std::string_view id);

}  // namespace drover::crypto

#endif  // DROVER_COMMON_CRYPTO_KEYRING_H_
