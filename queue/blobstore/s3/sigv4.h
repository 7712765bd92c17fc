// AWS Signature Version 4: canonical request, string to sign, signing key
// and signature, for Authorization headers and for presigned (query-string)
// URLs. Built on libsodium's HMAC-SHA-256 and SHA-256 and verified against
// AWS's published test vectors (sigv4_test.cc).
//
// Paths are given decoded ("/my photo.jpg") and encoded here exactly once,
// as S3 expects; `normalize_path` additionally removes "." and ".." segments
// and repeated slashes, as every other AWS service expects.
//
// All functions are pure and thread-safe.
#ifndef DROVER_QUEUE_BLOBSTORE_S3_SIGV4_H_
#define DROVER_QUEUE_BLOBSTORE_S3_SIGV4_H_

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "queue/blobstore/sha256.h"

namespace drover::queue::blobstore::s3 {

inline constexpr std::string_view kSigV4Algorithm = "AWS4-HMAC-SHA256";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";
// SHA-256 of the empty string, the payload hash of body-less requests.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  // For temporary credentials; sent as X-Amz-Security-Token when set.
  std::string session_token;
};

// Where and when a signature is valid.
struct SigningScope {
  std::string region;   // "us-east-1"
  std::string service;  // "s3"
  absl::Time time;
};

using NameValues = std::vector<std::pair<std::string, std::string>>;

// A request as it will be sent. Header names are matched
// case-insensitively; every header listed is signed, so list only the
// headers the sender will send unchanged (always "host").
struct SigV4Request {
  std::string method;
  std::string path = "/";  // decoded
  NameValues query;        // decoded names and values, any order
  NameValues headers;
  // Lowercase hex SHA-256 of the body, or kUnsignedPayload.
  std::string payload_sha256 = std::string(kEmptyPayloadSha256);
  bool normalize_path = false;
};

// RFC 3986 percent-encoding as SigV4 defines it: unreserved characters
// (A-Z a-z 0-9 - . _ ~) stay, every other byte becomes %XX with uppercase
// hex; '/' stays when `keep_slash`.
std::string UriEncode(std::string_view value, bool keep_slash);

// "20150830T123600Z" and "20150830".
std::string AmzDate(absl::Time time);
std::string DateStamp(absl::Time time);

// "<date>/<region>/<service>/aws4_request".
std::string CredentialScope(const SigningScope& scope);

// The pieces of a canonical request.
std::string CanonicalUri(std::string_view path, bool normalize);
std::string CanonicalQueryString(const NameValues& query);
// "name:value\n" lines sorted by lowercase name, values trimmed with inner
// runs of spaces collapsed, repeated headers joined with ',' in order.
std::string CanonicalHeaders(const NameValues& headers);
// "host;x-amz-date": the sorted lowercase names.
std::string SignedHeaders(const NameValues& headers);
std::string CanonicalRequest(const SigV4Request& request);

std::string StringToSign(const SigningScope& scope,
                         std::string_view canonical_request);

// kSecret = HMAC chain over date, region, service and "aws4_request".
Sha256Digest SigningKey(std::string_view secret_access_key,
                        const SigningScope& scope);

// Lowercase hex HMAC-SHA-256 of `string_to_sign`.
std::string Signature(const Sha256Digest& signing_key,
                      std::string_view string_to_sign);

// Signs `request` (whose headers must already include host and
// x-amz-date, plus x-amz-content-sha256 / x-amz-security-token when the
// service wants them) and returns the Authorization header value:
// "AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...".
std::string AuthorizationHeader(const SigV4Request& request,
                                const Credentials& credentials,
                                const SigningScope& scope);

// Presigns `request` for `expires_in` (whole seconds): adds X-Amz-Algorithm,
// -Credential, -Date, -Expires, -SignedHeaders (and -Security-Token) to its
// query and returns the complete encoded query string in canonical order,
// X-Amz-Signature last. The payload hash is used as given; S3 wants
// kUnsignedPayload for presigned URLs.
std::string PresignedQueryString(SigV4Request request,
                                 const Credentials& credentials,
                                 const SigningScope& scope,
                                 absl::Duration expires_in);

}  // namespace drover::queue::blobstore::s3

#endif  // DROVER_QUEUE_BLOBSTORE_S3_SIGV4_H_
