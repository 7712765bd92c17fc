// Queue server addresses: parsing the URL forms the client library and the
// CLI accept.
//
//   host:port              plaintext gRPC (loopback and trusted networks)
//   http://host:port       plaintext gRPC; port defaults to 80
//   https://host:port      gRPC over TLS; port defaults to 443
//
// IPv6 literals go in brackets: [::1]:50051. No path, query or user info.
#ifndef DROVER_CLIENT_ENDPOINT_H_
#define DROVER_CLIENT_ENDPOINT_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace drover::client {

// The address used when neither a flag nor DROVER_URL names one.
inline constexpr std::string_view kDefaultUrl = "127.0.0.1:50051";

struct Endpoint {
  // Host name or IP literal, without brackets.
  std::string host;
  int port = 0;
  bool tls = false;

  // The gRPC target, "host:port" ("[v6]:port" for IPv6 literals).
  std::string Target() const;
  // The canonical URL, "http://host:port" or "https://host:port".
  std::string Url() const;

  bool operator==(const Endpoint&) const = default;
};

// Parses one of the forms above. Pure and thread-safe.
// Errors: InputError on `field` naming the URL when the scheme is unknown,
// the host is empty, the port is missing/not a number/out of 1..65535, or
// the URL carries a path, query or user info.
absl::StatusOr<Endpoint> ParseUrl(std::string_view url,
                                  std::string_view field = "url");

}  // namespace drover::client

#endif  // DROVER_CLIENT_ENDPOINT_H_
