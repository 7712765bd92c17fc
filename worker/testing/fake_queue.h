// FakeQueue: an in-memory QueueApi for worker tests. It keeps pending tasks,
// hands them out like the real queue (up to max_tasks, long-polling briefly),
// lets claims expire when they are not reclaimed in time (a later reclaim or
// report then conflicts, as on the real queue), hands out task credentials
// with each claim and reclaim that expire with the claim and accepts only
// valid ones for that run's reclaims and reports (AuthenticationFailed
// otherwise), records every claim request,
// reclaim and report, and can simulate an unreachable queue or a run
// canceled under the worker. Thread-safe.
#ifndef DROVER_WORKER_TESTING_FAKE_QUEUE_H_
#define DROVER_WORKER_TESTING_FAKE_QUEUE_H_

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "worker/queue_api.h"

namespace drover::worker::testing {

struct Report {
  std::string task_id;
  int run_id = 0;
  std::string state;  // completed, failed, exception
  std::string reason;
};

class FakeQueue final : public QueueApi {
 public:
  explicit FakeQueue(absl::Duration claim_timeout = absl::Minutes(5),
                     absl::Duration poll_timeout = absl::Milliseconds(200));

  // Queues a task whose payload is `payload_json`; returns its id.
  std::string AddTask(const std::string& payload_json);
  // Like AddTask, with a claim timeout for this task only.
  std::string AddTask(const std::string& payload_json,
                      absl::Duration claim_timeout);
  // Makes the next reclaim of `task_id` answer RequestConflict.
  void CancelRun(const std::string& task_id);
  // While set, every call answers UNAVAILABLE.
  void SetUnavailable(bool unavailable);

  std::vector<Report> Reports() const;
  // Blocks until `count` reports arrived or `timeout` passed.
  bool WaitForReports(size_t count, absl::Duration timeout) const;
  int ReclaimCount(const std::string& task_id) const;
  // Blocks until `task_id` was reclaimed `count` times or `timeout` passed.
  bool WaitForReclaims(const std::string& task_id, int count,
                       absl::Duration timeout) const;
  // Runs whose claim expired before the worker reclaimed or resolved them.
  std::vector<std::string> ExpiredClaims() const;
  // Resolution attempts refused while the queue was unavailable.
  int RefusedReports() const;
  // Every ClaimWork request: max_tasks asked, and the runs claimed but not
  // resolved at that moment.
  struct ClaimRequest {
    int max_tasks = 0;
    int outstanding = 0;
  };
  std::vector<ClaimRequest> ClaimRequests() const;
  // The largest max_tasks ever asked for, and the most runs claimed but not
  // yet reported at any moment.
  int MaxAskedFor() const;
  int MaxOutstanding() const;
  int claim_calls() const;

  absl::StatusOr<std::vector<v1::ClaimedTask>> ClaimWork(
      const WorkerIdentity& worker, int max_tasks) override;
  void CancelClaims() override;
  absl::StatusOr<v1::ReclaimTaskResponse> ReclaimTask(
      const WorkerIdentity& worker, const std::string& task_id, int run_id,
      const v1::TaskCredentials& credentials) override;
  absl::Status ReportCompleted(const std::string& task_id, int run_id,
                               const v1::TaskCredentials& credentials) override;
  absl::Status ReportFailed(const std::string& task_id, int run_id,
                            const v1::TaskCredentials& credentials) override;
  absl::Status ReportException(const std::string& task_id, int run_id,
                               const std::string& reason,
                               const v1::TaskCredentials& credentials) override;

  // Reclaims and reports refused for missing, foreign or expired task
  // credentials.
  int AuthenticationFailures() const;

 private:
  absl::Status Resolve(const std::string& task_id, int run_id,
                       const std::string& state, const std::string& reason,
                       const v1::TaskCredentials& credentials);
  // New credentials for `task_id`, valid until `expires`. Needs mu_.
  v1::TaskCredentials IssueLocked(const std::string& task_id,
                                  absl::Time expires);
  // Ok when `credentials` were issued for `task_id` and have not expired.
  // Needs mu_.
  absl::Status CheckCredentialsLocked(const std::string& task_id,
                                      const v1::TaskCredentials& credentials);
  // Moves outstanding runs whose claim lapsed to expired_. Needs mu_.
  void ExpireClaimsLocked();

  const absl::Duration claim_timeout_;
  const absl::Duration poll_timeout_;
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  std::deque<v1::ClaimedTask> pending_;
  // Claimed, unresolved runs and when their claims lapse.
  std::map<std::string, absl::Time> outstanding_;
  std::map<std::string, absl::Duration> claim_timeouts_;
  std::vector<std::string> expired_;
  std::vector<ClaimRequest> claim_requests_;
  int refused_reports_ = 0;
  struct Issued {
    std::string task_id;
    absl::Time expires;
  };
  // By access token.
  std::map<std::string, Issued> issued_;
  int next_token_ = 0;
  int auth_failures_ = 0;
  std::set<std::string> canceled_;
  std::map<std::string, int> reclaims_;
  std::vector<Report> reports_;
  bool unavailable_ = false;
  bool cancel_claims_ = false;
  int max_asked_ = 0;
  int max_outstanding_ = 0;
  int claim_calls_ = 0;
  int next_id_ = 0;
};

}  // namespace drover::worker::testing

#endif  // DROVER_WORKER_TESTING_FAKE_QUEUE_H_
