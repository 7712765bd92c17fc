// Ed25519 key pairs (libsodium crypto_sign): the server signs temporary
// credentials with its SigningKey; every replica verifies them with the
// matching VerifyKeys, without a database read.
//
// A key pair is stored as its 32-byte seed in a 0600 file:
//   drover-ed25519-seed-v1 <standard base64 seed>
// A public key is written "ed25519:<unpadded URL-safe base64>" so old public
// keys can be listed in configuration while a signing key is rotated.
#ifndef DROVER_COMMON_CRYPTO_SIGNING_KEY_H_
#define DROVER_COMMON_CRYPTO_SIGNING_KEY_H_

#include <array>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace drover::crypto {

class VerifyKey {
 public:
  static constexpr size_t kSize = 32;
  static constexpr size_t kSignatureSize = 64;

  // From the raw 32 public-key bytes. Errors: InputError(field) for a wrong
  // length or a point that is not a valid Ed25519 public key.
  static absl::StatusOr<VerifyKey> FromBytes(std::string_view bytes,
                                             std::string_view field);
  // From "ed25519:<base64url>". Errors: InputError(field) for a wrong
  // prefix, bad base64 or FromBytes's errors.
  static absl::StatusOr<VerifyKey> Parse(std::string_view text,
                                         std::string_view field);

  // "ed25519:<base64url>".
  std::string ToString() const;
  // A short stable identifier of the key (11 characters of base64url of a
  // hash of it), carried in certificates to pick the verifying key.
  const std::string& key_id() const { return key_id_; }
  std::string_view bytes() const {
    return {reinterpret_cast<const char*>(key_.data()), key_.size()};
  }

  // True when `signature` is this key's Ed25519 signature of `message`.
  // Thread-safe.
  bool Verify(std::string_view message, std::string_view signature) const;

  bool operator==(const VerifyKey& other) const { return key_ == other.key_; }

 private:
  VerifyKey() = default;
  std::array<unsigned char, kSize> key_{};
  std::string key_id_;
};

class SigningKey {
 public:
  static constexpr size_t kSeedSize = 32;

  // A fresh random key pair.
  static SigningKey Generate();
  // Deterministic key pair from a 32-byte seed. Errors: InputError("seed")
  // for a wrong length.
  static absl::StatusOr<SigningKey> FromSeed(std::string_view seed);
  // Reads a key file written by SaveToFile. Errors: ReadSecretFile's
  // (ResourceNotFound, InputError for a group/world-accessible file) and
  // InputError("path") when the content is not a key file.
  static absl::StatusOr<SigningKey> LoadFromFile(const std::string& path);

  SigningKey(SigningKey&&) = default;
  SigningKey& operator=(SigningKey&&) = default;
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;
  ~SigningKey();

  // Writes the key file with mode 0600 (WriteSecretFile). With `overwrite`
  // false an existing file is a RequestConflict.
  absl::Status SaveToFile(const std::string& path, bool overwrite) const;

  const VerifyKey& verify_key() const { return verify_key_; }
  const std::string& key_id() const { return verify_key_.key_id(); }

  // The 64-byte detached Ed25519 signature of `message`. Thread-safe.
  std::string Sign(std::string_view message) const;

 private:
  explicit SigningKey(VerifyKey verify_key)
      : verify_key_(std::move(verify_key)) {}
  std::array<unsigned char, kSeedSize> seed_{};
  std::array<unsigned char, 64> secret_{};
  VerifyKey verify_key_;
};

}  // namespace drover::crypto

#endif  // DROVER_COMMON_CRYPTO_SIGNING_KEY_H_
