// Byte-string encodings used by the crypto module and its callers: standard
// base64 (key configuration), unpadded URL-safe base64 (tokens and
// certificates, which travel in gRPC metadata and shell variables) and hex.
//
// Decoders are strict: they reject padding or alphabet mismatches and
// trailing garbage, so two different strings never decode to the same bytes
// by accident.
#ifndef DROVER_COMMON_CRYPTO_ENCODING_H_
#define DROVER_COMMON_CRYPTO_ENCODING_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace drover::crypto {

// Initialises libsodium once per process. Thread-safe; cheap after the first
// call. Every public entry point of this module calls it, so callers need not.
// Returns InternalError if libsodium cannot initialise (no entropy source).
absl::Status EnsureSodium();

// Standard alphabet with '=' padding ("openssl rand -base64 32").
std::string Base64Encode(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

// URL-safe alphabet ('-', '_') without padding.
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);

// Lower-case hex.
std::string HexEncode(std::string_view bytes);

}  // namespace drover::crypto

#endif  // DROVER_COMMON_CRYPTO_ENCODING_H_
