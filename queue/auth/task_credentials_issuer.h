// ServerTaskCredentialsIssuer: the task credentials ClaimWork and
// ReclaimTask hand out, as temporary credentials signed with the server's
// key (certificate.h): client id TaskCredentialClientId(...), issuer
// "drover-queue", scopes TaskCredentialScopes(...) (the task's scopes plus
// reclaim/resolve/create-artifact for exactly that run), valid from now
// until the claim's taken_until (capped at the certificate lifetime limit).
#ifndef DROVER_QUEUE_AUTH_TASK_CREDENTIALS_ISSUER_H_
#define DROVER_QUEUE_AUTH_TASK_CREDENTIALS_ISSUER_H_

#include "common/clock.h"
#include "queue/auth/certificate.h"
#include "queue/queue_service/task_credentials.h"

namespace drover::queue::auth {

class ServerTaskCredentialsIssuer final
    : public queue_service::TaskCredentialsIssuer {
 public:
  // Both must outlive this object.
  ServerTaskCredentialsIssuer(const CertificateIssuer* certificates,
                              const Clock* clock)
      : certificates_(certificates), clock_(clock) {}

  // Errors: CertificateIssuer::Issue's (InputError), e.g. a claim that has
  // already ended or scopes too large for a certificate. Thread-safe.
  absl::StatusOr<v1::TaskCredentials> Issue(
      const queue_service::TaskCredentialsRequest& request) const override;

 private:
  const CertificateIssuer* const certificates_;
  const Clock* const clock_;
};

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_TASK_CREDENTIALS_ISSUER_H_
