#include "client/endpoint.h"

#include <charconv>

#include "common/status.h"

namespace drover::client {

std::string Endpoint::Target() const {
  // A colon in the host can only be an IPv6 literal; gRPC wants brackets.
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

std::string Endpoint::Url() const {
  return std::string(tls ? "https://" : "http://") + Target();
}

absl::StatusOr<Endpoint> ParseUrl(std::string_view url,
                                  std::string_view field) {
  Endpoint endpoint;
  std::string_view rest = url;
  int default_port = 0;
  if (rest.empty()) return InputError(field, url, "the URL is empty");
  if (size_t scheme_end = rest.find("://"); scheme_end != rest.npos) {
    std::string_view scheme = rest.substr(0, scheme_end);
    if (scheme == "https") {
      endpoint.tls = true;
      default_port = 443;
    } else if (scheme == "http") {
      default_port = 80;
    } else {
      return InputError(field, url,
                        "unknown URL scheme '" + std::string(scheme) +
                            "'; use host:port, http:// or https://");
    }
    rest.remove_prefix(scheme_end + 3);
    // A single trailing slash is what people paste from browsers; anything
    // longer is a path the gRPC target cannot express.
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  }
  if (rest.find_first_of("/?#") != rest.npos) {
    return InputError(field, url, "the URL must not have a path or query");
  }
  if (rest.find('@') != rest.npos) {
    return InputError(field, url,
                      "the URL must not carry user info; use credentials");
  }

  std::string_view host;
  std::string_view port_text;
  bool has_port = false;
  if (!rest.empty() && rest.front() == '[') {
    size_t close = rest.find(']');
    if (close == rest.npos) {
      return InputError(field, url, "unterminated '[' in IPv6 host");
    }
    host = rest.substr(1, close - 1);
    std::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return InputError(field, url, "expected ':port' after ']'");
      }
      has_port = true;
      port_text = after.substr(1);
    }
  } else {
    size_t colon = rest.rfind(':');
    if (colon != rest.npos && rest.find(':') != colon) {
      return InputError(field, url, "IPv6 hosts must be written in brackets");
    }
    if (colon == rest.npos) {
      host = rest;
    } else {
      host = rest.substr(0, colon);
      has_port = true;
      port_text = rest.substr(colon + 1);
    }
  }
  if (host.empty()) return InputError(field, url, "the URL has no host");
  endpoint.host = std::string(host);

  if (!has_port) {
    if (default_port == 0) {
      return InputError(field, url,
                        "a port is required (host:port) without a scheme");
    }
    endpoint.port = default_port;
    return endpoint;
  }
  int port = 0;
  auto [end, ec] = std::from_chars(port_text.data(),
                                   port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() ||
      end != port_text.data() + port_text.size() || port < 1 || port > 65535) {
    return InputError(field, url,
                      "the port must be a number in 1..65535, got '" +
                          std::string(port_text) + "'");
  }
  endpoint.port = port;
  return endpoint;
}

}  // namespace drover::client
