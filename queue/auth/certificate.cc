#include "queue/auth/certificate.h"

#include <sodium.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/crypto/encoding.h"
#include "common/status.h"
#include "drover/v1/auth.pb.h"
#include "queue/auth/scopes.h"

namespace drover::queue::auth {
namespace {

constexpr std::string_view kSignatureContext("drover-certificate-v1\0", 22);
constexpr size_t kNonceSize = 16;

std::string SignedMessage(std::string_view claims) {
  std::string message(kSignatureContext);
  message.append(claims);
  return message;
}

void ToProto(absl::Time time, google::protobuf::Timestamp* out) {
  const int64_t seconds = absl::ToUnixSeconds(time);
  out->set_seconds(seconds);
  out->set_nanos(static_cast<int32_t>((time - absl::FromUnixSeconds(seconds)) /
                                      absl::Nanoseconds(1)));
}

std::optional<absl::Time> FromProto(const google::protobuf::Timestamp& ts) {
  // The range google.protobuf.Timestamp allows: 0001-01-01 .. 9999-12-31.
  if (ts.seconds() < -62135596800LL || ts.seconds() > 253402300799LL ||
      ts.nanos() < 0 || ts.nanos() > 999999999) {
    return std::nullopt;
  }
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

absl::Status Unauthenticated(std::string message, ErrorDetails details = {}) {
  return MakeError(ErrorCode::kAuthenticationFailed,
                   "temporary credentials rejected: " + message,
                   std::move(details));
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace

absl::Status ValidateClientId(std::string_view field,
                              std::string_view client_id) {
  if (client_id.empty())
    return InputError(field, client_id, "must not be empty");
  if (client_id.size() > kMaxClientIdLength) {
    return InputError(
        field, client_id,
        "is longer than " + std::to_string(kMaxClientIdLength) + " characters");
  }
  for (char c : client_id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
        (c >= '0' && c <= '9') ||
        std::string_view("!@/:.+|_-").find(c) != std::string_view::npos;
    if (!ok) {
      return InputError(field, client_id,
                        "may only contain letters, digits and !@/:.+|_-");
    }
  }
  return absl::OkStatus();
}

CertificateIssuer::CertificateIssuer(
    std::shared_ptr<const crypto::SigningKey> key, const Clock& clock)
    : key_(std::move(key)), clock_(clock) {}

absl::StatusOr<std::string> CertificateIssuer::Issue(
    const CertificateRequest& request) const {
  DROVER_RETURN_IF_ERROR(ValidateClientId("client_id", request.client_id));
  DROVER_RETURN_IF_ERROR(ValidateClientId("issuer", request.issuer));
  DROVER_RETURN_IF_ERROR(ValidateScopes("scopes", request.scopes));
  if (request.expiry <= request.start) {
    return InputError("expiry", Rfc3339(request.expiry),
                      "must be after start (" + Rfc3339(request.start) + ")");
  }
  if (request.expiry - request.start > kMaxCertificateLifetime) {
    return InputError("expiry", Rfc3339(request.expiry),
                      "temporary credentials may last at most 31 days; "
                      "start is " +
                          Rfc3339(request.start));
  }
  if (request.expiry <= clock_.Now()) {
    return InputError("expiry", Rfc3339(request.expiry), "is in the past");
  }
  DROVER_RETURN_IF_ERROR(crypto::EnsureSodium());

  drover::v1::CertificateClaims claims;
  claims.set_version(1);
  claims.set_client_id(request.client_id);
  claims.set_issuer(request.issuer);
  for (const std::string& scope : request.scopes) claims.add_scopes(scope);
  ToProto(request.start, claims.mutable_start());
  ToProto(request.expiry, claims.mutable_expiry());
  std::string nonce(kNonceSize, '\0');
  randombytes_buf(nonce.data(), nonce.size());
  claims.set_nonce(nonce);

  drover::v1::SignedCertificate signed_certificate;
  if (!claims.SerializeToString(signed_certificate.mutable_claims())) {
    return InternalError("cannot serialize certificate claims");
  }
  signed_certificate.set_key_id(key_->key_id());
  signed_certificate.set_signature(
      key_->Sign(SignedMessage(signed_certificate.claims())));
  std::string encoded;
  if (!signed_certificate.SerializeToString(&encoded)) {
    return InternalError("cannot serialize certificate");
  }
  std::string certificate = crypto::Base64UrlEncode(encoded);
  if (certificate.size() > kMaxCertificateSize) {
    return InputError(
        "scopes", std::to_string(request.scopes.size()) + " scopes",
        "certificate would be " + std::to_string(certificate.size()) +
            " bytes, more than the limit of " +
            std::to_string(kMaxCertificateSize));
  }
  return certificate;
}

CertificateVerifier::CertificateVerifier(std::vector<crypto::VerifyKey> keys,
                                         const Clock& clock)
    : keys_(std::move(keys)), clock_(clock) {}

absl::StatusOr<CertificateClaims> CertificateVerifier::Verify(
    std::string_view certificate) const {
  // A worker or task sends the same certificate on every call; verifying the
  // signature again each time would cost more than the rest of the check.
  // The cache holds only certificates that verified under this verifier's
  // fixed key set, keyed by their exact bytes, so a hit proves the same
  // thing; the validity window is still checked against the clock per call.
  std::optional<CertificateClaims> cached;
  {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(std::string(certificate));
    if (it != cache_.end()) cached = it->second;
  }
  if (cached.has_value()) {
    DROVER_RETURN_IF_ERROR(CheckWindow(*cached));
    return *std::move(cached);
  }
  DROVER_ASSIGN_OR_RETURN(CertificateClaims claims,
                          VerifyUncached(certificate));
  std::lock_guard<std::mutex> lock(cache_mu_);
  if (cache_bytes_ + certificate.size() > kVerifiedCacheBytes) {
    cache_.clear();
    cache_bytes_ = 0;
  }
  if (cache_.emplace(std::string(certificate), claims).second) {
    cache_bytes_ += certificate.size();
  }
  return claims;
}

absl::Status CertificateVerifier::CheckWindow(
    const CertificateClaims& claims) const {
  const absl::Time now = clock_.Now();
  ErrorDetails details = {{"client_id", claims.client_id},
                          {"start", Rfc3339(claims.start)},
                          {"expiry", Rfc3339(claims.expiry)},
                          {"now", Rfc3339(now)}};
  if (now < claims.start - kCertificateClockSkew) {
    return Unauthenticated("certificate is not valid until " +
                               Rfc3339(claims.start) + " (server time is " +
                               Rfc3339(now) + ")",
                           std::move(details));
  }
  if (now > claims.expiry) {
    return Unauthenticated("certificate expired at " + Rfc3339(claims.expiry) +
                               " (server time is " + Rfc3339(now) + ")",
                           std::move(details));
  }
  return absl::OkStatus();
}

absl::StatusOr<CertificateClaims> CertificateVerifier::VerifyUncached(
    std::string_view certificate) const {
  if (certificate.empty()) return Unauthenticated("certificate is empty");
  if (certificate.size() > kMaxCertificateSize) {
    return Unauthenticated("certificate is larger than " +
                           std::to_string(kMaxCertificateSize) + " bytes");
  }
  std::optional<std::string> decoded = crypto::Base64UrlDecode(certificate);
  if (!decoded.has_value()) {
    return Unauthenticated("certificate is not unpadded base64url");
  }
  drover::v1::SignedCertificate signed_certificate;
  if (!signed_certificate.ParseFromString(*decoded) ||
      signed_certificate.claims().empty() ||
      signed_certificate.signature().empty()) {
    return Unauthenticated("certificate is not a signed Drover certificate");
  }
  const crypto::VerifyKey* key = nullptr;
  for (const crypto::VerifyKey& candidate : keys_) {
    if (candidate.key_id() == signed_certificate.key_id()) key = &candidate;
  }
  if (key == nullptr) {
    // The key id is attacker-controlled; quote it only if it looks like one.
    std::string key_id = signed_certificate.key_id();
    bool printable = key_id.size() <= 64 &&
                     std::all_of(key_id.begin(), key_id.end(),
                                 [](char c) { return c > 0x20 && c < 0x7f; });
    return Unauthenticated(
        "certificate is signed by a key this server does not trust",
        {{"key_id", printable ? key_id : std::string("(unprintable)")}});
  }
  if (!key->Verify(SignedMessage(signed_certificate.claims()),
                   signed_certificate.signature())) {
    return Unauthenticated("certificate signature does not verify",
                           {{"key_id", key->key_id()}});
  }

  drover::v1::CertificateClaims proto;
  if (!proto.ParseFromString(signed_certificate.claims())) {
    return Unauthenticated("certificate claims are malformed");
  }
  if (proto.version() != 1) {
    return Unauthenticated("certificate version " +
                           std::to_string(proto.version()) +
                           " is not supported");
  }
  std::optional<absl::Time> start = FromProto(proto.start());
  std::optional<absl::Time> expiry = FromProto(proto.expiry());
  if (!proto.has_start() || !proto.has_expiry() || !start || !expiry ||
      *expiry <= *start || *expiry - *start > kMaxCertificateLifetime) {
    return Unauthenticated("certificate validity window is malformed");
  }
  // Signed by us, so these hold unless the signing key was misused; checked
  // anyway because everything downstream assumes them.
  std::vector<std::string> scopes(proto.scopes().begin(), proto.scopes().end());
  if (!ValidateClientId("client_id", proto.client_id()).ok() ||
      !ValidateClientId("issuer", proto.issuer()).ok() ||
      !ValidateScopes("scopes", scopes).ok()) {
    return Unauthenticated("certificate claims are malformed");
  }
  CertificateClaims claims;
  claims.version = proto.version();
  claims.client_id = proto.client_id();
  claims.issuer = proto.issuer();
  claims.scopes = std::move(scopes);
  claims.start = *start;
  claims.expiry = *expiry;
  claims.nonce = proto.nonce();
  claims.key_id = key->key_id();
  DROVER_RETURN_IF_ERROR(CheckWindow(claims));
  return claims;
}

}  // namespace drover::queue::auth
