#include "queue/blobstore/s3/sigv4.h"

#include <sodium.h>

#include <algorithm>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace drover::queue::blobstore::s3 {
namespace {

Sha256Digest HmacSha256(const void* key, size_t key_size,
                        std::string_view message) {
  crypto_auth_hmacsha256_state state;
  crypto_auth_hmacsha256_init(&state, static_cast<const unsigned char*>(key),
                              key_size);
  crypto_auth_hmacsha256_update(
      &state, reinterpret_cast<const unsigned char*>(message.data()),
      message.size());
  Sha256Digest mac;
  crypto_auth_hmacsha256_final(&state, mac.data());
  return mac;
}

Sha256Digest HmacSha256(const Sha256Digest& key, std::string_view message) {
  return HmacSha256(key.data(), key.size(), message);
}

std::string Lower(std::string_view s) {
  std::string out(s);
  absl::AsciiStrToLower(&out);
  return out;
}

// Trims the value and turns every run of spaces into one space.
std::string CanonicalHeaderValue(std::string_view value) {
  std::string out;
  bool in_space = false;
  for (char c : value) {
    bool space = c == ' ' || c == '\t';
    if (space) {
      in_space = true;
      continue;
    }
    if (in_space && !out.empty()) out.push_back(' ');
    in_space = false;
    out.push_back(c);
  }
  return out;
}

// Lowercase name -> values in the order given.
std::map<std::string, std::vector<std::string>> GroupHeaders(
    const NameValues& headers) {
  std::map<std::string, std::vector<std::string>> grouped;
  for (const auto& [name, value] : headers) {
    grouped[Lower(name)].push_back(CanonicalHeaderValue(value));
  }
  return grouped;
}

// Removes "." and ".." segments and empty segments, keeping a trailing
// slash, as RFC 3986 section 5.2.4 and the SigV4 test suite want.
std::string NormalizePath(std::string_view path) {
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    std::string_view segment = path.substr(start, end - start);
    if (segment == "..") {
      if (!segments.empty()) segments.pop_back();
    } else if (!segment.empty() && segment != ".") {
      segments.emplace_back(segment);
    }
    start = end + 1;
  }
  std::string out = "/" + absl::StrJoin(segments, "/");
  bool trailing =
      !path.empty() &&
      (path.back() == '/' || path.ends_with("/.") || path.ends_with("/.."));
  if (trailing && out.size() > 1) out.push_back('/');
  return out;
}

}  // namespace

std::string UriEncode(std::string_view value, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                      (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                      c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kDigits[u >> 4]);
      out.push_back(kDigits[u & 0xf]);
    }
  }
  return out;
}

std::string AmzDate(absl::Time time) {
  return absl::FormatTime("%Y%m%dT%H%M%SZ", time, absl::UTCTimeZone());
}

std::string DateStamp(absl::Time time) {
  return absl::FormatTime("%Y%m%d", time, absl::UTCTimeZone());
}

std::string CredentialScope(const SigningScope& scope) {
  return absl::StrCat(DateStamp(scope.time), "/", scope.region, "/",
                      scope.service, "/aws4_request");
}

std::string CanonicalUri(std::string_view path, bool normalize) {
  if (path.empty()) return "/";
  if (normalize) return UriEncode(NormalizePath(path), /*keep_slash=*/true);
  return UriEncode(path, /*keep_slash=*/true);
}

std::string CanonicalQueryString(const NameValues& query) {
  std::vector<std::pair<std::string, std::string>> encoded;
  encoded.reserve(query.size());
  for (const auto& [name, value] : query) {
    encoded.emplace_back(UriEncode(name, false), UriEncode(value, false));
  }
  // Byte order of the encoded forms: by name, then by value.
  std::sort(encoded.begin(), encoded.end());
  std::string out;
  for (const auto& [name, value] : encoded) {
    if (!out.empty()) out.push_back('&');
    absl::StrAppend(&out, name, "=", value);
  }
  return out;
}

std::string CanonicalHeaders(const NameValues& headers) {
  std::string out;
  for (const auto& [name, values] : GroupHeaders(headers)) {
    absl::StrAppend(&out, name, ":", absl::StrJoin(values, ","), "\n");
  }
  return out;
}

std::string SignedHeaders(const NameValues& headers) {
  std::vector<std::string> names;
  for (const auto& [name, values] : GroupHeaders(headers)) {
    names.push_back(name);
  }
  return absl::StrJoin(names, ";");
}

std::string CanonicalRequest(const SigV4Request& request) {
  return absl::StrCat(
      request.method, "\n", CanonicalUri(request.path, request.normalize_path),
      "\n", CanonicalQueryString(request.query), "\n",
      CanonicalHeaders(request.headers), "\n", SignedHeaders(request.headers),
      "\n", request.payload_sha256);
}

std::string StringToSign(const SigningScope& scope,
                         std::string_view canonical_request) {
  return absl::StrCat(std::string(kSigV4Algorithm), "\n", AmzDate(scope.time),
                      "\n", CredentialScope(scope), "\n",
                      HexEncode(Sha256Of(canonical_request)));
}

Sha256Digest SigningKey(std::string_view secret_access_key,
                        const SigningScope& scope) {
  std::string secret = "AWS4" + std::string(secret_access_key);
  Sha256Digest date_key =
      HmacSha256(secret.data(), secret.size(), DateStamp(scope.time));
  sodium_memzero(secret.data(), secret.size());
  Sha256Digest region_key = HmacSha256(date_key, scope.region);
  Sha256Digest service_key = HmacSha256(region_key, scope.service);
  return HmacSha256(service_key, "aws4_request");
}

std::string Signature(const Sha256Digest& signing_key,
                      std::string_view string_to_sign) {
  return HexEncode(HmacSha256(signing_key, string_to_sign));
}

std::string AuthorizationHeader(const SigV4Request& request,
                                const Credentials& credentials,
                                const SigningScope& scope) {
  std::string string_to_sign = StringToSign(scope, CanonicalRequest(request));
  std::string signature = Signature(
      SigningKey(credentials.secret_access_key, scope), string_to_sign);
  return absl::StrCat(std::string(kSigV4Algorithm),
                      " Credential=", credentials.access_key_id, "/",
                      CredentialScope(scope),
                      ", SignedHeaders=", SignedHeaders(request.headers),
                      ", Signature=", signature);
}

std::string PresignedQueryString(SigV4Request request,
                                 const Credentials& credentials,
                                 const SigningScope& scope,
                                 absl::Duration expires_in) {
  request.query.emplace_back("X-Amz-Algorithm", std::string(kSigV4Algorithm));
  request.query.emplace_back(
      "X-Amz-Credential",
      absl::StrCat(credentials.access_key_id, "/", CredentialScope(scope)));
  request.query.emplace_back("X-Amz-Date", AmzDate(scope.time));
  request.query.emplace_back("X-Amz-Expires",
                             absl::StrCat(absl::ToInt64Seconds(expires_in)));
  if (!credentials.session_token.empty()) {
    request.query.emplace_back("X-Amz-Security-Token",
                               credentials.session_token);
  }
  request.query.emplace_back("X-Amz-SignedHeaders",
                             SignedHeaders(request.headers));
  std::string string_to_sign = StringToSign(scope, CanonicalRequest(request));
  std::string signature = Signature(
      SigningKey(credentials.secret_access_key, scope), string_to_sign);
  return absl::StrCat(CanonicalQueryString(request.query),
                      "&X-Amz-Signature=", signature);
}

}  // namespace drover::queue::blobstore::s3
