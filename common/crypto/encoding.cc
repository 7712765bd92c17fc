#include "common/crypto/encoding.h"

#include <sodium.h>

#include "common/status.h"

namespace drover::crypto {
namespace {

std::string Encode(std::string_view bytes, int variant) {
  const size_t size = sodium_base64_encoded_len(bytes.size(), variant);
  std::string out(size, '\0');
  sodium_bin2base64(out.data(), out.size(),
                    reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  // The encoded length includes the terminating NUL.
  out.resize(size - 1);
  return out;
}

std::optional<std::string> Decode(std::string_view text, int variant) {
  if (EnsureSodium() != absl::OkStatus()) return std::nullopt;
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()),
                        out.size(), text.data(), text.size(),
                        /*ignore=*/nullptr, &length, &end, variant) != 0) {
    return std::nullopt;
  }
  // libsodium stops at the first character outside the alphabet and reports
  // success; anything left over is garbage we must not silently accept.
  if (end != text.data() + text.size()) return std::nullopt;
  out.resize(length);
  return out;
}

}  // namespace

absl::Status EnsureSodium() {
  // sodium_init is itself thread-safe; the static only saves repeated calls.
  static const int result = sodium_init();
  if (result < 0) return InternalError("libsodium failed to initialise");
  return absl::OkStatus();
}

std::string Base64Encode(std::string_view bytes) {
  return Encode(bytes, sodium_base64_VARIANT_ORIGINAL);
}

std::optional<std::string> Base64Decode(std::string_view text) {
  return Decode(text, sodium_base64_VARIANT_ORIGINAL);
}

std::string Base64UrlEncode(std::string_view bytes) {
  return Encode(bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  return Decode(text, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

std::string HexEncode(std::string_view bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(),
                 reinterpret_cast<const unsigned char*>(bytes.data()),
                 bytes.size());
  out.resize(bytes.size() * 2);
  return out;
}

}  // namespace drover::crypto
