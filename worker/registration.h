// Registration of drover-worker with the worker manager: the worker proves
// its identity (RegisterWorker with the static or pool registration secret
// from registration.secret_file), works with the temporary credentials it
// receives, and re-registers (ReregisterWorker with the single-use secret of
// the previous registration) when a configured fraction of their lifetime
// has passed and after an authentication failure. Every new secret is
// persisted to the state file (temp file + fsync + rename, mode 0600)
// before it is used, so a restarted worker continues the chain; when the
// saved state is stale (expired, replayed) it falls back to the proof.
//
// Timers use the wall clock (absl::Now(), checked at least every few
// seconds), so a host that slept re-registers as soon as it wakes instead
// of finishing a monotonic sleep with expired credentials. While the queue
// is unreachable every step is retried with exponential backoff and jitter;
// the worker never gives up.
//
// A heartbeat (WorkerHeartbeat) every heartbeat_interval keeps last_seen
// fresh and tells the worker when an operator removed it.
#ifndef DROVER_WORKER_REGISTRATION_H_
#define DROVER_WORKER_REGISTRATION_H_

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "client/credentials.h"
#include "drover/v1/worker_manager.pb.h"
#include "worker/queue_api.h"

namespace drover::worker {

// What survives a restart.
struct RegistrationState {
  std::string worker_pool_id;
  std::string worker_group;
  std::string worker_id;
  std::string client_id;
  std::string certificate;
  absl::Time issued;
  absl::Time expires;
  std::string reregistration_secret;
};

// nullopt when the file does not exist. Errors: InputError naming the file
// when it cannot be read or parsed.
absl::StatusOr<std::optional<RegistrationState>> LoadRegistrationState(
    const std::string& path);
// Writes `path` atomically (a temporary file in the same directory,
// fsync, rename), mode 0600. Errors: InternalError naming the path.
absl::Status SaveRegistrationState(const std::string& path,
                                   const RegistrationState& state);

struct RegistrarOptions {
  std::vector<std::string> queue_urls;
  std::string tls_ca_file;
  std::string worker_pool_id;
  std::string worker_group;
  std::string worker_id;
  int capacity = 1;
  // The registration proof (contents of registration.secret_file).
  std::string proof;
  std::string state_file;
  double reregister_fraction = 0.75;
  absl::Duration heartbeat_interval = absl::Seconds(60);
  v1::WorkerFacts facts;
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);
  // Longest sleep between wall-clock checks.
  absl::Duration max_tick = absl::Seconds(5);
};

// Facts about this host for RegisterWorker (host name, OS, boot time).
v1::WorkerFacts HostFacts(const std::string& engine);

class Registrar {
 public:
  using CredentialsCallback =
      std::function<void(const client::Credentials& credentials)>;

  explicit Registrar(RegistrarOptions options);
  // Stops the background thread (without announcing shutdown).
  ~Registrar();

  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  // Registers, or re-registers from the saved state, retrying with backoff
  // until it succeeds. Errors: Unavailable (absl) when Stop() was called
  // first.
  absl::StatusOr<client::Credentials> RegisterAtStart();

  // Starts the thread that re-registers before expiry and sends
  // heartbeats. `on_credentials` gets every new set of credentials;
  // `on_stop_requested` is called once when the worker manager says this
  // worker was removed. Call after RegisterAtStart succeeded.
  void Start(CredentialsCallback on_credentials,
             std::function<void()> on_stop_requested);

  // Re-register as soon as possible (an authentication failure). Thread-safe.
  void RenewSoon();

  // Stops the thread; with `announce`, tells the worker manager the worker
  // is shutting down (WorkerShutdown; best effort). Idempotent.
  void Stop(bool announce);

  // Current credentials' expiry and how many times they were renewed.
  absl::Time credentials_expire() const;
  // Until when the worker manager quarantines this worker (from the last
  // heartbeat); InfinitePast when it does not.
  absl::Time quarantine_until() const;
  int renewals() const { return renewals_.load(); }

 private:
  // One RegisterWorker / ReregisterWorker call on the current address.
  absl::StatusOr<v1::RegisterWorkerResponse> CallRegister();
  absl::StatusOr<v1::RegisterWorkerResponse> CallReregister(
      const RegistrationState& state);
  // Persists and adopts a response; returns the credentials.
  absl::StatusOr<client::Credentials> Adopt(
      const v1::RegisterWorkerResponse& response);
  // Reregister, falling back to Register unless the queue is unreachable.
  absl::StatusOr<client::Credentials> Renew();
  void Heartbeat();
  void Loop();
  // Sleeps up to `d` or until woken; false when stopping.
  bool Sleep(absl::Duration d);
  absl::StatusOr<std::shared_ptr<const client::Connection>> Connect(
      const client::Credentials& credentials);
  void NoteUnavailable(const absl::Status& status);
  client::Credentials CurrentCredentials() const;

  const RegistrarOptions options_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                                   // guarded by mu_
  bool renew_requested_ = false;                        // guarded by mu_
  std::optional<RegistrationState> state_;              // guarded by mu_
  size_t url_index_ = 0;                                // guarded by mu_
  absl::Time quarantine_until_ = absl::InfinitePast();  // guarded by mu_
  CredentialsCallback on_credentials_;
  std::function<void()> on_stop_requested_;
  bool stop_requested_sent_ = false;
  std::atomic<int> renewals_{0};
  std::thread thread_;
};

// A QueueApi that asks the Registrar to re-register when a claim fails
// authentication (expired or revoked credentials), then passes the error
// on so the worker's own backoff applies. While the worker manager
// quarantines the worker, claims wait (up to a long-poll's length, or
// until CancelClaims) and return nothing.
class ReregisteringQueueApi final : public QueueApi {
 public:
  ReregisteringQueueApi(QueueApi* inner, Registrar* registrar)
      : inner_(inner), registrar_(registrar) {}

  absl::StatusOr<std::vector<v1::ClaimedTask>> ClaimWork(
      const WorkerIdentity& worker, int max_tasks) override;
  void CancelClaims() override;
  absl::StatusOr<v1::ReclaimTaskResponse> ReclaimTask(
      const WorkerIdentity& worker, const std::string& task_id, int run_id,
      const v1::TaskCredentials& credentials) override {
    return inner_->ReclaimTask(worker, task_id, run_id, credentials);
  }
  absl::Status ReportCompleted(
      const std::string& task_id, int run_id,
      const v1::TaskCredentials& credentials) override {
    return inner_->ReportCompleted(task_id, run_id, credentials);
  }
  absl::Status ReportFailed(const std::string& task_id, int run_id,
                            const v1::TaskCredentials& credentials) override {
    return inner_->ReportFailed(task_id, run_id, credentials);
  }
  absl::Status ReportException(
      const std::string& task_id, int run_id, const std::string& reason,
      const v1::TaskCredentials& credentials) override {
    return inner_->ReportException(task_id, run_id, reason, credentials);
  }

 private:
  QueueApi* const inner_;
  Registrar* const registrar_;
  std::mutex mu_;
  std::condition_variable canceled_cv_;
  bool canceled_ = false;  // guarded by mu_
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_REGISTRATION_H_
