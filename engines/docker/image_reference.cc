#include "engines/docker/image_reference.h"

#include <cctype>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/status.h"

namespace drover::engines::docker {
namespace {

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxTagLength = 128;

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)); }
bool IsWordChar(char c) { return IsAlnum(c) || c == '_'; }
bool IsHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

absl::Status Malformed(std::string_view field, std::string_view value,
                       std::string_view why) {
  return MakeError(ErrorCode::kMalformedPayload,
                   std::string("invalid image reference: ") + std::string(why),
                   {{"field", std::string(field)},
                    {"value", std::string(value.substr(0, 300))}});
}

// [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool IsPathComponent(std::string_view c) {
  size_t i = 0;
  auto alnum_run = [&] {
    size_t start = i;
    while (i < c.size() && IsLowerAlnum(c[i])) ++i;
    return i > start;
  };
  if (!alnum_run()) return false;
  while (i < c.size()) {
    if (c[i] == '.') {
      ++i;
    } else if (c[i] == '_') {
      ++i;
      if (i < c.size() && c[i] == '_') ++i;
    } else if (c[i] == '-') {
      while (i < c.size() && c[i] == '-') ++i;
    } else {
      return false;
    }
    if (!alnum_run()) return false;
  }
  return true;
}

// host components ([a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])
// joined by '.', then an optional ":port".
bool IsDomain(std::string_view d) {
  std::string_view host = d;
  if (size_t colon = d.find(':'); colon != std::string_view::npos) {
    host = d.substr(0, colon);
    std::string_view port = d.substr(colon + 1);
    if (port.empty() || port.size() > 5) return false;
    for (char ch : port) {
      if (ch < '0' || ch > '9') return false;
    }
  }
  if (host.empty()) return false;
  for (absl::string_view piece :
       absl::StrSplit(absl::string_view(host.data(), host.size()), '.')) {
    std::string_view part(piece.data(), piece.size());
    if (part.empty() || !IsAlnum(part.front()) || !IsAlnum(part.back())) {
      return false;
    }
    for (char ch : part) {
      if (!IsAlnum(ch) && ch != '-') return false;
    }
  }
  return true;
}

bool LooksLikeDomain(std::string_view first) {
  if (first == "localhost") return true;
  for (char ch : first) {
    if (ch == '.' || ch == ':' || std::isupper(static_cast<unsigned char>(ch)))
      return true;
  }
  return false;
}

}  // namespace

std::string ImageReference::Repository() const {
  return domain.empty() ? path : domain + "/" + path;
}

std::string ImageReference::PullTag() const {
  if (!digest.empty()) return digest;
  return tag.empty() ? "latest" : tag;
}

std::string ImageReference::Canonical() const {
  if (!digest.empty()) return Repository() + "@" + digest;
  return Repository() + ":" + (tag.empty() ? "latest" : tag);
}

std::string ImageReference::Registry() const {
  return domain.empty() ? "docker.io" : domain;
}

absl::StatusOr<ImageReference> ParseImageReference(std::string_view text,
                                                   std::string_view field) {
  if (text.empty()) return Malformed(field, text, "it is empty");
  ImageReference ref;
  std::string_view rest = text;

  if (size_t at = rest.find('@'); at != std::string_view::npos) {
    std::string_view digest = rest.substr(at + 1);
    rest = rest.substr(0, at);
    size_t colon = digest.find(':');
    if (colon == std::string_view::npos) {
      return Malformed(field, text, "digest must be <algorithm>:<hex>");
    }
    std::string_view algorithm = digest.substr(0, colon);
    std::string_view hex = digest.substr(colon + 1);
    size_t want = 0;
    if (algorithm == "sha256") {
      want = 64;
    } else if (algorithm == "sha512") {
      want = 128;
    } else {
      return Malformed(field, text,
                       "digest algorithm must be sha256 or sha512");
    }
    if (hex.size() != want) {
      return Malformed(
          field, text,
          "digest must have " + std::to_string(want) + " lowercase hex digits");
    }
    for (char ch : hex) {
      if (!IsHex(ch)) {
        return Malformed(field, text, "digest must be lowercase hex");
      }
    }
    ref.digest = std::string(digest);
  }

  // A ':' after the last '/' starts the tag; one before it is a port.
  size_t last_slash = rest.rfind('/');
  size_t last_colon = rest.rfind(':');
  if (last_colon != std::string_view::npos &&
      (last_slash == std::string_view::npos || last_colon > last_slash)) {
    std::string_view tag = rest.substr(last_colon + 1);
    rest = rest.substr(0, last_colon);
    if (tag.empty() || tag.size() > kMaxTagLength || !IsWordChar(tag[0])) {
      return Malformed(field, text,
                       "tag must be 1-128 characters of [A-Za-z0-9_.-] not "
                       "starting with '.' or '-'");
    }
    for (char ch : tag) {
      if (!IsWordChar(ch) && ch != '.' && ch != '-') {
        return Malformed(field, text,
                         "tag must be 1-128 characters of [A-Za-z0-9_.-] not "
                         "starting with '.' or '-'");
      }
    }
    ref.tag = std::string(tag);
  }

  if (rest.empty()) return Malformed(field, text, "repository name is empty");
  if (rest.size() > kMaxNameLength) {
    return Malformed(field, text,
                     "repository name is longer than 255 characters");
  }
  std::vector<std::string_view> parts;
  for (absl::string_view part :
       absl::StrSplit(absl::string_view(rest.data(), rest.size()), '/')) {
    parts.emplace_back(part.data(), part.size());
  }
  size_t first_path = 0;
  if (parts.size() > 1 && LooksLikeDomain(parts[0])) {
    if (!IsDomain(parts[0])) {
      return Malformed(field, text,
                       "registry must be host[:port] with alphanumeric "
                       "host labels");
    }
    ref.domain = std::string(parts[0]);
    first_path = 1;
  }
  for (size_t i = first_path; i < parts.size(); ++i) {
    if (!IsPathComponent(parts[i])) {
      bool upper = false;
      for (char ch : parts[i]) {
        upper |= std::isupper(static_cast<unsigned char>(ch)) != 0;
      }
      return Malformed(field, text,
                       upper ? "repository name must be lowercase"
                             : "repository path components must be "
                               "[a-z0-9] separated by '.', '_', '__' or '-'");
    }
    if (!ref.path.empty()) ref.path += '/';
    ref.path += std::string(parts[i]);
  }
  return ref;
}

}  // namespace drover::engines::docker
