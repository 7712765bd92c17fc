// Docker image references ("name[:tag][@digest]"): parsing, validation and
// the pieces the Engine API's image calls need.
//
// Follows the grammar of the distribution project's reference package:
// an optional registry domain (a first component containing '.' or ':', or
// "localhost"), lowercase path components joined by '/', an optional tag of
// up to 128 word characters, and an optional digest "algorithm:hex".
#ifndef DROVER_ENGINES_DOCKER_IMAGE_REFERENCE_H_
#define DROVER_ENGINES_DOCKER_IMAGE_REFERENCE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace drover::engines::docker {

struct ImageReference {
  // The registry host[:port], empty when the reference names none (Docker
  // Hub).
  std::string domain;
  // The repository path without the domain ("library/busybox" is written
  // as given: "busybox").
  std::string path;
  // Empty when absent.
  std::string tag;
  // "sha256:<hex>", empty when absent.
  std::string digest;

  // domain/path, as the Engine API's fromImage parameter wants it.
  std::string Repository() const;
  // What to pass as the Engine API's `tag` parameter when pulling: the
  // digest when present, else the tag, else "latest".
  std::string PullTag() const;
  // The full reference to create a container from: repository plus
  // "@digest" or ":tag" (":latest" when neither was given).
  std::string Canonical() const;
  // The registry whose credentials apply: the domain, or "docker.io".
  std::string Registry() const;
};

// Parses and validates `text`. Errors: MalformedPayload naming `field` and
// the offending value, with a message saying which rule it breaks.
absl::StatusOr<ImageReference> ParseImageReference(std::string_view text,
                                                   std::string_view field);

}  // namespace drover::engines::docker

#endif  // DROVER_ENGINES_DOCKER_IMAGE_REFERENCE_H_
