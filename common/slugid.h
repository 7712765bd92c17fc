// Task ids: 22-character URL-safe base64 encodings of 128 random bits.
#ifndef DROVER_COMMON_SLUGID_H_
#define DROVER_COMMON_SLUGID_H_

#include <string>
#include <string_view>

namespace drover {

// A fresh random slug id. Never starts with '-' so it is safe as a
// command-line argument. Thread-safe.
std::string NewSlugId();

// True when `id` is a well-formed slug id: 22 characters of
// [A-Za-z0-9_-] whose last character encodes only the final two bits.
bool IsValidSlugId(std::string_view id);

}  // namespace drover

#endif  // DROVER_COMMON_SLUGID_H_
