#include "common/crypto/keyring.h"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>

#include "common/crypto/encoding.h"
#include "common/crypto/secret_file.h"
#include "common/status.h"

namespace drover::crypto {
namespace {

constexpr size_t kNonceSize = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagSize = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(KeyRing::kKeySize == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

// Separates our associated data from any other use of the same key.
constexpr std::string_view kAdContext = "drover-encrypted-column-v1";

// The parsed fixed part of a stored value.
struct Envelope {
  std::string_view header;  // version, id length and id: authenticated too.
  std::string_view key_id;
  std::string_view nonce;
  std::string_view sealed;  // ciphertext + tag
};

absl::StatusOr<Envelope> ParseEnvelope(std::string_view value,
                                       ErrorDetails details) {
  auto fail = [&](std::string message) {
    details["field"] = "ciphertext";
    return MakeError(ErrorCode::kInternalError, message, details);
  };
  if (value.size() < 2) return fail("encrypted value is truncated");
  if (static_cast<uint8_t>(value[0]) != KeyRing::kFormatVersion) {
    return fail("encrypted value has unknown format version " +
                std::to_string(static_cast<uint8_t>(value[0])));
  }
  const size_t id_length = static_cast<uint8_t>(value[1]);
  if (id_length == 0 || id_length > KeyRing::kMaxKeyIdLength) {
    return fail("encrypted value has an invalid key id length");
  }
  if (value.size() < 2 + id_length + kNonceSize + kTagSize) {
    return fail("encrypted value is truncated");
  }
  Envelope envelope;
  envelope.header = value.substr(0, 2 + id_length);
  envelope.key_id = value.substr(2, id_length);
  envelope.nonce = value.substr(2 + id_length, kNonceSize);
  envelope.sealed = value.substr(2 + id_length + kNonceSize);
  return envelope;
}

void AppendLengthPrefixed(std::string& out, std::string_view part) {
  const uint32_t n = static_cast<uint32_t>(part.size());
  out.push_back(static_cast<char>(n >> 24));
  out.push_back(static_cast<char>(n >> 16));
  out.push_back(static_cast<char>(n >> 8));
  out.push_back(static_cast<char>(n));
  out.append(part);
}

// Length prefixes make the encoding injective: ("ab","c") and ("a","bc")
// must not authenticate each other's values.
std::string BuildAssociatedData(std::string_view header,
                                const AssociatedData& ad) {
  std::string out;
  out.reserve(kAdContext.size() + header.size() + ad.table.size() +
              ad.column.size() + ad.primary_key.size() + 16);
  AppendLengthPrefixed(out, kAdContext);
  AppendLengthPrefixed(out, header);
  AppendLengthPrefixed(out, ad.table);
  AppendLengthPrefixed(out, ad.column);
  AppendLengthPrefixed(out, ad.primary_key);
  return out;
}

absl::Status CheckAssociatedData(const AssociatedData& ad) {
  if (ad.table.empty()) {
    return InputError("associated_data.table", "", "must not be empty");
  }
  if (ad.column.empty()) {
    return InputError("associated_data.column", "", "must not be empty");
  }
  if (ad.primary_key.empty()) {
    return InputError("associated_data.primary_key", "", "must not be empty");
  }
  return absl::OkStatus();
}

// Key ids read from a stored value are untrusted bytes; error details must
// stay printable (and valid UTF-8 for the JSON error payload).
std::string Printable(std::string_view bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      out.append(escaped);
    }
  }
  return out;
}

ErrorDetails DetailsOf(const AssociatedData& ad) {
  return {{"table", Printable(ad.table)},
          {"column", Printable(ad.column)},
          {"primary_key", Printable(ad.primary_key)}};
}

std::string Describe(const AssociatedData& ad) {
  return Printable(ad.table) + "." + Printable(ad.column) + " of row '" +
         Printable(ad.primary_key) + "'";
}

// One "id:key" token with the place it came from, for error messages.
struct Entry {
  std::string text;
  std::string field;
};

std::vector<Entry> SplitEntries(std::string_view text, std::string_view source,
                                bool from_file) {
  std::vector<Entry> entries;
  size_t line = 1;
  std::string current;
  auto flush = [&] {
    if (current.empty()) return;
    std::string field = from_file
                            ? std::string(source) + ":" + std::to_string(line)
                            : std::string(source) + "[" +
                                  std::to_string(entries.size() + 1) + "]";
    entries.push_back({std::move(current), std::move(field)});
    current.clear();
  };
  bool in_comment = false;
  for (char c : text) {
    if (c == '\n') {
      flush();
      in_comment = false;
      ++line;
      continue;
    }
    if (in_comment) continue;
    if (c == '#') {
      flush();
      in_comment = true;
    } else if (c == ',' || c == ' ' || c == '\t' || c == '\r') {
      flush();
    } else {
      current.push_back(c);
    }
  }
  flush();
  return entries;
}

}  // namespace

KeyRing::Key::~Key() { sodium_memzero(bytes.data(), bytes.size()); }

bool IsValidKeyId(std::string_view id) {
  if (id.empty() || id.size() > KeyRing::kMaxKeyIdLength) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
  });
}

void AddKeyRingOptions(CLI::App& app, KeyRingOptions& options) {
  app.add_option("--crypto-keys", options.keys,
                 "Encryption keys for encrypted columns: comma-separated "
                 "id:base64key entries (32-byte keys); the last one encrypts")
      ->envname("DROVER_CRYPTO_KEYS");
  app.add_option("--crypto-key-file", options.key_file,
                 "File (mode 0600) with the encryption key entries, one per "
                 "line; the last one encrypts")
      ->envname("DROVER_CRYPTO_KEY_FILE");
}

absl::StatusOr<KeyRing> KeyRing::Parse(std::string_view text,
                                       std::string_view source) {
  return ParseEntries(text, source, /*from_file=*/false);
}

absl::StatusOr<KeyRing> KeyRing::ParseEntries(std::string_view text,
                                              std::string_view source,
                                              bool from_file) {
  DROVER_RETURN_IF_ERROR(EnsureSodium());
  std::vector<Entry> entries = SplitEntries(text, source, from_file);
  if (entries.empty()) {
    return InputError(source, "",
                      "contains no key entries (want id:base64key)");
  }
  KeyRing ring;
  for (Entry& entry : entries) {
    const size_t colon = entry.text.find(':');
    if (colon == std::string::npos) {
      // The entry may be a bare key; do not echo it.
      return InputError(entry.field, "",
                        "key entry has no ':'; want id:base64key");
    }
    std::string_view id = std::string_view(entry.text).substr(0, colon);
    std::string_view encoded = std::string_view(entry.text).substr(colon + 1);
    if (!IsValidKeyId(id)) {
      return InputError(entry.field, id,
                        "invalid key id; want 1..32 characters of "
                        "[A-Za-z0-9._-]");
    }
    if (ring.HasKey(id)) {
      return InputError(entry.field, id, "duplicate key id");
    }
    std::optional<std::string> decoded = Base64Decode(encoded);
    if (!decoded.has_value()) {
      return InputError(entry.field, id,
                        "key is not valid standard base64 (with padding)");
    }
    if (decoded->size() != kKeySize) {
      std::string message =
          "key must be 32 bytes, got " + std::to_string(decoded->size());
      sodium_memzero(decoded->data(), decoded->size());
      return InputError(entry.field, id, message);
    }
    Key key;
    key.id = std::string(id);
    std::copy(decoded->begin(), decoded->end(), key.bytes.begin());
    sodium_memzero(decoded->data(), decoded->size());
    sodium_memzero(entry.text.data(), entry.text.size());
    ring.keys_.push_back(std::move(key));
  }
  return ring;
}

absl::StatusOr<KeyRing> KeyRing::Load(const KeyRingOptions& options) {
  if (!options.keys.empty() && !options.key_file.empty()) {
    return InputError("crypto-key-file", options.key_file,
                      "set either --crypto-keys (DROVER_CRYPTO_KEYS) or "
                      "--crypto-key-file, not both");
  }
  if (!options.key_file.empty()) {
    DROVER_ASSIGN_OR_RETURN(std::string text, ReadSecretFile(options.key_file));
    auto ring = ParseEntries(text, options.key_file, /*from_file=*/true);
    sodium_memzero(text.data(), text.size());
    return ring;
  }
  if (!options.keys.empty()) return Parse(options.keys, "crypto-keys");
  return InputError("crypto-keys", "",
                    "no encryption keys configured: set DROVER_CRYPTO_KEYS "
                    "or --crypto-key-file");
}

absl::StatusOr<std::string> KeyRing::GenerateEntry(std::string_view id) {
  DROVER_RETURN_IF_ERROR(EnsureSodium());
  if (!IsValidKeyId(id)) {
    return InputError("id", id,
                      "invalid key id; want 1..32 characters of "
                      "[A-Za-z0-9._-]");
  }
  std::array<unsigned char, kKeySize> key;
  crypto_aead_xchacha20poly1305_ietf_keygen(key.data());
  std::string entry = std::string(id) + ":" +
                      Base64Encode(std::string_view(
                          reinterpret_cast<char*>(key.data()), key.size()));
  sodium_memzero(key.data(), key.size());
  return entry;
}

std::vector<std::string> KeyRing::key_ids() const {
  std::vector<std::string> ids;
  ids.reserve(keys_.size());
  for (const Key& key : keys_) ids.push_back(key.id);
  return ids;
}

const KeyRing::Key* KeyRing::Find(std::string_view id) const {
  for (const Key& key : keys_) {
    if (key.id == id) return &key;
  }
  return nullptr;
}

absl::StatusOr<std::string> KeyRing::Encrypt(std::string_view plaintext,
                                             const AssociatedData& ad) const {
  DROVER_RETURN_IF_ERROR(EnsureSodium());
  DROVER_RETURN_IF_ERROR(CheckAssociatedData(ad));
  const Key& key = keys_.back();
  std::string out;
  out.reserve(2 + key.id.size() + kNonceSize + plaintext.size() + kTagSize);
  out.push_back(static_cast<char>(kFormatVersion));
  out.push_back(static_cast<char>(key.id.size()));
  out.append(key.id);
  const size_t header_size = out.size();
  out.resize(header_size + kNonceSize);
  // 192-bit random nonces: collisions are negligible even for billions of
  // values under one key, which is why XChaCha20 rather than ChaCha20.
  randombytes_buf(out.data() + header_size, kNonceSize);
  const std::string aad =
      BuildAssociatedData(std::string_view(out).substr(0, header_size), ad);
  const size_t sealed_offset = out.size();
  out.resize(sealed_offset + plaintext.size() + kTagSize);
  unsigned long long sealed_length = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      reinterpret_cast<unsigned char*>(out.data() + sealed_offset),
      &sealed_length, reinterpret_cast<const unsigned char*>(plaintext.data()),
      plaintext.size(), reinterpret_cast<const unsigned char*>(aad.data()),
      aad.size(), /*nsec=*/nullptr,
      reinterpret_cast<const unsigned char*>(out.data() + header_size),
      key.bytes.data());
  out.resize(sealed_offset + sealed_length);
  return out;
}

absl::StatusOr<std::string> KeyRing::Decrypt(std::string_view ciphertext,
                                             const AssociatedData& ad) const {
  DROVER_RETURN_IF_ERROR(EnsureSodium());
  DROVER_RETURN_IF_ERROR(CheckAssociatedData(ad));
  ErrorDetails details = DetailsOf(ad);
  DROVER_ASSIGN_OR_RETURN(Envelope envelope,
                          ParseEnvelope(ciphertext, details));
  const std::string key_id = Printable(envelope.key_id);
  details["key_id"] = key_id;
  const Key* key = Find(envelope.key_id);
  if (key == nullptr) {
    return MakeError(ErrorCode::kInternalError,
                     "cannot decrypt " + Describe(ad) +
                         ": it was encrypted "
                         "under key id '" +
                         key_id + "', which is not configured",
                     details);
  }
  const std::string aad = BuildAssociatedData(envelope.header, ad);
  std::string plaintext(envelope.sealed.size() - kTagSize, '\0');
  unsigned long long length = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          reinterpret_cast<unsigned char*>(plaintext.data()), &length,
          /*nsec=*/nullptr,
          reinterpret_cast<const unsigned char*>(envelope.sealed.data()),
          envelope.sealed.size(),
          reinterpret_cast<const unsigned char*>(aad.data()), aad.size(),
          reinterpret_cast<const unsigned char*>(envelope.nonce.data()),
          key->bytes.data()) != 0) {
    return MakeError(ErrorCode::kInternalError,
                     "cannot decrypt " + Describe(ad) +
                         ": authentication failed (the value was altered, "
                         "key '" +
                         key_id +
                         "' differs from the one that encrypted it, or the "
                         "value was copied from another row or column)",
                     details);
  }
  plaintext.resize(length);
  return plaintext;
}

absl::StatusOr<std::optional<std::string>> KeyRing::Reencrypt(
    std::string_view ciphertext, const AssociatedData& ad) const {
  DROVER_ASSIGN_OR_RETURN(std::string plaintext, Decrypt(ciphertext, ad));
  // Decrypt succeeded, so the envelope parses.
  const size_t id_length = static_cast<uint8_t>(ciphertext[1]);
  if (ciphertext.substr(2, id_length) == current_key_id()) {
    sodium_memzero(plaintext.data(), plaintext.size());
    return std::optional<std::string>();
  }
  auto result = Encrypt(plaintext, ad);
  sodium_memzero(plaintext.data(), plaintext.size());
  if (!result.ok()) return result.status();
  return std::optional<std::string>(std::move(result).value());
}

absl::StatusOr<std::string> KeyIdOf(std::string_view ciphertext) {
  auto envelope = ParseEnvelope(ciphertext, {});
  if (!envelope.ok()) {
    return InputError("ciphertext", "",
                      std::string(envelope.status().message()));
  }
  return std::string(envelope->key_id);
}

}  // namespace drover::crypto
