#include "common/crypto/signing_key.h"

#include <sodium.h>

#include <algorithm>

#include "common/crypto/encoding.h"
#include "common/crypto/secret_file.h"
#include "common/status.h"

namespace drover::crypto {
namespace {

constexpr std::string_view kPublicPrefix = "ed25519:";
constexpr std::string_view kFileMagic = "drover-ed25519-seed-v1";
constexpr std::string_view kKeyIdContext = "drover-ed25519-key-id";
static_assert(VerifyKey::kSize == crypto_sign_PUBLICKEYBYTES);
static_assert(VerifyKey::kSignatureSize == crypto_sign_BYTES);
static_assert(SigningKey::kSeedSize == crypto_sign_SEEDBYTES);

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' ||
                        s.front() == '\n' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' ||
                        s.back() == '\n' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

}  // namespace

absl::StatusOr<VerifyKey> VerifyKey::FromBytes(std::string_view bytes,
                                               std::string_view field) {
  DROVER_RETURN_IF_ERROR(EnsureSodium());
  if (bytes.size() != kSize) {
    return InputError(field, "",
                      "Ed25519 public key must be 32 bytes, got " +
                          std::to_string(bytes.size()));
  }
  VerifyKey key;
  std::copy(bytes.begin(), bytes.end(), key.key_.begin());
  // Rejects small-order and non-canonical points, which would let many
  // signatures verify.
  if (crypto_core_ed25519_is_valid_point(key.key_.data()) != 1) {
    return InputError(field, Base64UrlEncode(bytes),
                      "not a valid Ed25519 public key");
  }
  unsigned char digest[crypto_generichash_BYTES];
  crypto_generichash_state state;
  crypto_generichash_init(&state, nullptr, 0, sizeof(digest));
  crypto_generichash_update(
      &state, reinterpret_cast<const unsigned char*>(kKeyIdContext.data()),
      kKeyIdContext.size());
  crypto_generichash_update(&state, key.key_.data(), key.key_.size());
  crypto_generichash_final(&state, digest, sizeof(digest));
  // 8 bytes is plenty to tell a handful of configured keys apart; it is not
  // a security boundary (the signature is).
  key.key_id_ =
      Base64UrlEncode(std::string_view(reinterpret_cast<char*>(digest), 8));
  return key;
}

absl::StatusOr<VerifyKey> VerifyKey::Parse(std::string_view text,
                                           std::string_view field) {
  text = Trim(text);
  if (text.substr(0, kPublicPrefix.size()) != kPublicPrefix) {
    return InputError(field, text,
                      "public key must look like ed25519:<base64url>");
  }
  std::optional<std::string> bytes =
      Base64UrlDecode(text.substr(kPublicPrefix.size()));
  if (!bytes.has_value()) {
    return InputError(field, text,
                      "public key is not valid unpadded base64url");
  }
  return FromBytes(*bytes, field);
}

std::string VerifyKey::ToString() const {
  return std::string(kPublicPrefix) + Base64UrlEncode(bytes());
}

bool VerifyKey::Verify(std::string_view message,
                       std::string_view signature) const {
  if (signature.size() != kSignatureSize) return false;
  return crypto_sign_verify_detached(
             reinterpret_cast<const unsigned char*>(signature.data()),
             reinterpret_cast<const unsigned char*>(message.data()),
             message.size(), key_.data()) == 0;
}

SigningKey SigningKey::Generate() {
  (void)EnsureSodium();
  std::array<unsigned char, kSeedSize> seed;
  randombytes_buf(seed.data(), seed.size());
  auto key = FromSeed(
      std::string_view(reinterpret_cast<char*>(seed.data()), seed.size()));
  sodium_memzero(seed.data(), seed.size());
  // A seed of the right size always yields a key pair.
  return std::move(key).value();
}

absl::StatusOr<SigningKey> SigningKey::FromSeed(std::string_view seed) {
  DROVER_RETURN_IF_ERROR(EnsureSodium());
  if (seed.size() != kSeedSize) {
    return InputError(
        "seed", "",
        "Ed25519 seed must be 32 bytes, got " + std::to_string(seed.size()));
  }
  std::array<unsigned char, kSeedSize> seed_bytes;
  std::copy(seed.begin(), seed.end(), seed_bytes.begin());
  std::array<unsigned char, crypto_sign_PUBLICKEYBYTES> public_key;
  std::array<unsigned char, crypto_sign_SECRETKEYBYTES> secret_key;
  crypto_sign_seed_keypair(public_key.data(), secret_key.data(),
                           seed_bytes.data());
  DROVER_ASSIGN_OR_RETURN(
      VerifyKey verify_key,
      VerifyKey::FromBytes(
          std::string_view(reinterpret_cast<char*>(public_key.data()),
                           public_key.size()),
          "seed"));
  SigningKey key(std::move(verify_key));
  key.seed_ = seed_bytes;
  key.secret_ = secret_key;
  sodium_memzero(seed_bytes.data(), seed_bytes.size());
  sodium_memzero(secret_key.data(), secret_key.size());
  return key;
}

absl::StatusOr<SigningKey> SigningKey::LoadFromFile(const std::string& path) {
  DROVER_ASSIGN_OR_RETURN(std::string contents, ReadSecretFile(path));
  std::string_view text = Trim(contents);
  absl::StatusOr<SigningKey> result =
      InputError("path", path,
                 "not a Drover signing key file (want \"" +
                     std::string(kFileMagic) + " <base64 seed>\")");
  if (text.substr(0, kFileMagic.size()) == kFileMagic &&
      text.size() > kFileMagic.size() && text[kFileMagic.size()] == ' ') {
    std::optional<std::string> seed =
        Base64Decode(Trim(text.substr(kFileMagic.size() + 1)));
    if (seed.has_value() && seed->size() == kSeedSize) {
      result = FromSeed(*seed);
    } else {
      result = InputError(
          "path", path, "signing key file does not hold a base64 32-byte seed");
    }
    if (seed.has_value()) sodium_memzero(seed->data(), seed->size());
  }
  sodium_memzero(contents.data(), contents.size());
  return result;
}

SigningKey::~SigningKey() {
  sodium_memzero(seed_.data(), seed_.size());
  sodium_memzero(secret_.data(), secret_.size());
}

absl::Status SigningKey::SaveToFile(const std::string& path,
                                    bool overwrite) const {
  std::string contents =
      std::string(kFileMagic) + " " +
      Base64Encode(std::string_view(reinterpret_cast<const char*>(seed_.data()),
                                    seed_.size())) +
      "\n";
  absl::Status status = WriteSecretFile(path, contents, overwrite);
  sodium_memzero(contents.data(), contents.size());
  return status;
}

std::string SigningKey::Sign(std::string_view message) const {
  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()),
                       nullptr,
                       reinterpret_cast<const unsigned char*>(message.data()),
                       message.size(), secret_.data());
  return signature;
}

}  // namespace drover::crypto
