#include "common/slugid.h"

#include <sodium.h>

#include <array>
#include <cstdint>

namespace drover {
namespace {
constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
}  // namespace

std::string NewSlugId() {
  std::array<uint8_t, 16> bytes;
  randombytes_buf(bytes.data(), bytes.size());
  // Clearing the top bit keeps the first character in A-f, never '-'.
  bytes[0] &= 0x7f;
  std::string out;
  out.reserve(22);
  uint32_t acc = 0;
  int bits = 0;
  for (uint8_t b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
    }
  }
  // 128 bits leave 2 bits, padded with zeros into a final sextet.
  out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
  return out;
}

bool IsValidSlugId(std::string_view id) {
  if (id.size() != 22) return false;
  for (char c : id) {
    if (kAlphabet.find(c) == std::string_view::npos) return false;
  }
  // The last sextet carries 2 data bits and 4 zero bits.
  return (kAlphabet.find(id.back()) & 0x0f) == 0;
}

}  // namespace drover
