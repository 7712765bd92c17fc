// Temporary credentials: a certificate naming a client id, its issuer, its
// scopes and a validity window, signed with the server's Ed25519 key, sent
// as the `drover-certificate` gRPC metadata value and verified by any
// replica without a database read.
//
// Wire form: unpadded base64url of a drover.v1.SignedCertificate whose
// `claims` are a serialized drover.v1.CertificateClaims and whose signature
// covers "drover-certificate-v1" + a zero byte + those exact claim bytes.
// The verifier checks the signature over the bytes it received and only then
// parses them, so the encoding never has to be re-created canonically.
//
// Validity: at most kMaxCertificateLifetime (31 days) from start to expiry;
// a certificate is accepted from start - kCertificateClockSkew (5 minutes,
// for clients whose clocks run ahead of ours) until expiry, with no grace
// after expiry. A certificate cannot be revoked before it expires, which is
// why lifetimes are bounded and task credentials expire with their claim.
#ifndef DROVER_QUEUE_AUTH_CERTIFICATE_H_
#define DROVER_QUEUE_AUTH_CERTIFICATE_H_

#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/crypto/signing_key.h"

namespace drover::queue::auth {

inline constexpr absl::Duration kMaxCertificateLifetime = absl::Hours(24 * 31);
inline constexpr absl::Duration kCertificateClockSkew = absl::Minutes(5);
// Encoded size limit; gRPC servers must allow metadata at least this large
// (GRPC_ARG_MAX_METADATA_SIZE) for certificates with many scopes.
inline constexpr size_t kMaxCertificateSize = 64 * 1024;
inline constexpr size_t kMaxClientIdLength = 256;

// Client ids (and certificate issuers): 1..256 characters of
// [A-Za-z0-9!@/:.+|_-], as TaskCluster. Errors: InputError(field).
absl::Status ValidateClientId(std::string_view field,
                              std::string_view client_id);

// What a certificate asserts.
struct CertificateClaims {
  uint32_t version = 1;
  std::string client_id;
  // Who minted it: the client that called CreateTemporaryCredentials, or
  // "drover-queue" for task credentials.
  std::string issuer;
  std::vector<std::string> scopes;
  absl::Time start;
  absl::Time expiry;
  // 16 random bytes making each certificate unique (audit logs).
  std::string nonce;
  // Filled by Verify: the id of the public key that verified it.
  std::string key_id;
};

struct CertificateRequest {
  std::string client_id;
  std::string issuer;
  std::vector<std::string> scopes;
  absl::Time start;
  absl::Time expiry;
};

// Signs certificates with the server's key. Thread-safe.
class CertificateIssuer {
 public:
  CertificateIssuer(std::shared_ptr<const crypto::SigningKey> key,
                    const Clock& clock);

  // The encoded certificate.
  // Errors: InputError naming the field for an invalid client_id or issuer
  // (ValidateClientId), an invalid scope ("scopes[<i>]"), expiry not after
  // start, expiry - start longer than 31 days ("expiry"), an expiry already
  // in the past, or an encoding longer than kMaxCertificateSize.
  absl::StatusOr<std::string> Issue(const CertificateRequest& request) const;

 private:
  std::shared_ptr<const crypto::SigningKey> key_;
  const Clock& clock_;
};

// Verifies certificates against the configured public keys (the current
// signing key plus any still-trusted older ones). Thread-safe; no I/O.
class CertificateVerifier {
 public:
  CertificateVerifier(std::vector<crypto::VerifyKey> keys, const Clock& clock);

  // The verified claims. Errors (all AuthenticationFailed, which travels as
  // UNAUTHENTICATED; the message says which check failed): too large, not
  // base64url, not a signed certificate, unknown key id, bad signature,
  // malformed or unsupported claims, not yet valid (now < start - 5 min),
  // expired (now > expiry).
  // Thread-safe; certificates that verified are remembered (up to
  // kVerifiedCacheBytes of them) so a repeated one costs a lookup and the
  // validity-window check, not another signature verification.
  absl::StatusOr<CertificateClaims> Verify(std::string_view certificate) const;

 private:
  static constexpr size_t kVerifiedCacheBytes = 16 << 20;

  absl::StatusOr<CertificateClaims> VerifyUncached(
      std::string_view certificate) const;
  // Not yet valid (beyond the clock skew) or expired: AuthenticationFailed.
  absl::Status CheckWindow(const CertificateClaims& claims) const;

  std::vector<crypto::VerifyKey> keys_;
  const Clock& clock_;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, CertificateClaims> cache_;
  mutable size_t cache_bytes_ = 0;
};

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_CERTIFICATE_H_
