#include "queue/auth/task_credentials_issuer.h"

#include <algorithm>

#include "common/status.h"
#include "queue/auth/rpc_scopes.h"

namespace drover::queue::auth {

absl::StatusOr<v1::TaskCredentials> ServerTaskCredentialsIssuer::Issue(
    const queue_service::TaskCredentialsRequest& request) const {
  const absl::Time now = clock_->Now();
  CertificateRequest certificate;
  certificate.client_id = TaskCredentialClientId(
      request.task_id, request.run_id, request.worker_group,
      request.worker_id, absl::ToUnixSeconds(request.taken_until));
  certificate.issuer = std::string(kServerIssuer);
  certificate.scopes = TaskCredentialScopes(request.task_id, request.run_id,
                                            request.task_scopes);
  certificate.start = now;
  // A claim longer than a certificate may live is renewed by reclaiming
  // anyway; the credentials simply end first.
  certificate.expiry =
      std::min(request.taken_until, now + kMaxCertificateLifetime);
  DROVER_ASSIGN_OR_RETURN(std::string encoded,
                          certificates_->Issue(certificate));
  v1::TaskCredentials credentials;
  credentials.set_client_id(certificate.client_id);
  credentials.set_certificate(std::move(encoded));
  return credentials;
}

}  // namespace drover::queue::auth
