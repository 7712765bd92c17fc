#include "common/crypto/token_hash.h"

#include <sodium.h>

#include <algorithm>

#include "common/crypto/encoding.h"
#include "common/status.h"

namespace drover::crypto {
namespace {
constexpr std::string_view kContext = "drover-access-token-v1";
constexpr size_t kTokenBytes = 32;
}  // namespace

absl::StatusOr<TokenHasher> TokenHasher::FromBase64Key(std::string_view key,
                                                       std::string_view field) {
  DROVER_RETURN_IF_ERROR(EnsureSodium());
  std::optional<std::string> decoded = Base64Decode(key);
  if (!decoded.has_value()) {
    return InputError(field, "", "token hash key is not valid base64");
  }
  if (decoded->size() != kKeySize) {
    std::string message = "token hash key must be 32 bytes, got " +
                          std::to_string(decoded->size());
    sodium_memzero(decoded->data(), decoded->size());
    return InputError(field, "", message);
  }
  TokenHasher hasher;
  std::copy(decoded->begin(), decoded->end(), hasher.key_.begin());
  sodium_memzero(decoded->data(), decoded->size());
  return hasher;
}

TokenHasher TokenHasher::Generate() {
  (void)EnsureSodium();
  TokenHasher hasher;
  crypto_generichash_keygen(hasher.key_.data());
  return hasher;
}

TokenHasher::~TokenHasher() { sodium_memzero(key_.data(), key_.size()); }

std::string TokenHasher::KeyBase64() const {
  return Base64Encode(std::string_view(
      reinterpret_cast<const char*>(key_.data()), key_.size()));
}

std::string TokenHasher::Hash(std::string_view client_id,
                              std::string_view token) const {
  crypto_generichash_state state;
  crypto_generichash_init(&state, key_.data(), key_.size(), kHashSize);
  // Each part is preceded by its length so no two (client, token) pairs
  // feed the same bytes to the hash.
  auto update = [&state](std::string_view part) {
    const uint64_t n = part.size();
    unsigned char length[8];
    for (int i = 0; i < 8; ++i)
      length[i] = static_cast<unsigned char>(n >> (8 * i));
    crypto_generichash_update(&state, length, sizeof(length));
    crypto_generichash_update(
        &state, reinterpret_cast<const unsigned char*>(part.data()),
        part.size());
  };
  update(kContext);
  update(client_id);
  update(token);
  std::string out(kHashSize, '\0');
  crypto_generichash_final(&state, reinterpret_cast<unsigned char*>(out.data()),
                           out.size());
  return out;
}

bool TokenHasher::Verify(std::string_view client_id, std::string_view token,
                         std::string_view stored_hash) const {
  return ConstantTimeEquals(Hash(client_id, token), stored_hash);
}

std::string GenerateAccessToken() {
  (void)EnsureSodium();
  unsigned char bytes[kTokenBytes];
  randombytes_buf(bytes, sizeof(bytes));
  std::string token = Base64UrlEncode(
      std::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
  sodium_memzero(bytes, sizeof(bytes));
  return token;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace drover::crypto
