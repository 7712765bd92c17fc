#include "worker/testing/fake_queue.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/slugid.h"
#include "common/status.h"

namespace drover::worker::testing {
namespace {

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t nanos = absl::ToUnixNanos(t);
  ts.set_seconds(nanos / 1000000000);
  ts.set_nanos(static_cast<int32_t>(nanos % 1000000000));
  return ts;
}

}  // namespace

FakeQueue::FakeQueue(absl::Duration claim_timeout, absl::Duration poll_timeout)
    : claim_timeout_(claim_timeout), poll_timeout_(poll_timeout) {}

std::string FakeQueue::AddTask(const std::string& payload_json) {
  return AddTask(payload_json, claim_timeout_);
}

std::string FakeQueue::AddTask(const std::string& payload_json,
                               absl::Duration claim_timeout) {
  std::lock_guard<std::mutex> lock(mu_);
  v1::ClaimedTask claim;
  claim.set_task_id(NewSlugId());
  claim.set_run_id(0);
  claim.mutable_task()->set_task_queue_id("test/fake");
  claim.mutable_task()->set_payload(payload_json);
  claim.mutable_task()->mutable_metadata()->set_name(
      absl::StrCat("task ", next_id_++));
  claim_timeouts_[claim.task_id()] = claim_timeout;
  pending_.push_back(claim);
  cv_.notify_all();
  return claim.task_id();
}

void FakeQueue::CancelRun(const std::string& task_id) {
  std::lock_guard<std::mutex> lock(mu_);
  canceled_.insert(task_id);
}

void FakeQueue::SetUnavailable(bool unavailable) {
  std::lock_guard<std::mutex> lock(mu_);
  unavailable_ = unavailable;
  cv_.notify_all();
}

std::vector<Report> FakeQueue::Reports() const {
  std::lock_guard<std::mutex> lock(mu_);
  return reports_;
}

bool FakeQueue::WaitForReports(size_t count, absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                      [&] { return reports_.size() >= count; });
}

int FakeQueue::ReclaimCount(const std::string& task_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = reclaims_.find(task_id);
  return it == reclaims_.end() ? 0 : it->second;
}

bool FakeQueue::WaitForReclaims(const std::string& task_id, int count,
                                absl::Duration timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
    auto it = reclaims_.find(task_id);
    return it != reclaims_.end() && it->second >= count;
  });
}

std::vector<std::string> FakeQueue::ExpiredClaims() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> expired = expired_;
  const absl::Time now = absl::Now();
  for (const auto& [task_id, taken_until] : outstanding_) {
    if (taken_until < now) expired.push_back(task_id);
  }
  return expired;
}

int FakeQueue::RefusedReports() const {
  std::lock_guard<std::mutex> lock(mu_);
  return refused_reports_;
}

std::vector<FakeQueue::ClaimRequest> FakeQueue::ClaimRequests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return claim_requests_;
}

void FakeQueue::ExpireClaimsLocked() {
  const absl::Time now = absl::Now();
  for (auto it = outstanding_.begin(); it != outstanding_.end();) {
    if (it->second < now) {
      expired_.push_back(it->first);
      it = outstanding_.erase(it);
    } else {
      ++it;
    }
  }
}

int FakeQueue::MaxAskedFor() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_asked_;
}

int FakeQueue::MaxOutstanding() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_outstanding_;
}

int FakeQueue::claim_calls() const {
  std::lock_guard<std::mutex> lock(mu_);
  return claim_calls_;
}

absl::StatusOr<std::vector<v1::ClaimedTask>> FakeQueue::ClaimWork(
    const WorkerIdentity& worker, int max_tasks) {
  std::unique_lock<std::mutex> lock(mu_);
  ++claim_calls_;
  max_asked_ = std::max(max_asked_, max_tasks);
  ExpireClaimsLocked();
  claim_requests_.push_back(
      ClaimRequest{max_tasks, static_cast<int>(outstanding_.size())});
  cv_.notify_all();
  if (unavailable_) return absl::UnavailableError("fake queue is down");
  if (max_tasks < 1 || max_tasks > 100) {
    return InputError("max_tasks", std::to_string(max_tasks),
                      "max_tasks must be within 1..100");
  }
  cv_.wait_for(lock, absl::ToChronoNanoseconds(poll_timeout_), [&] {
    return !pending_.empty() || cancel_claims_ || unavailable_;
  });
  if (unavailable_) return absl::UnavailableError("fake queue is down");
  std::vector<v1::ClaimedTask> out;
  // A canceled long-poll ends without work, like a canceled gRPC call.
  if (cancel_claims_) return out;
  while (!pending_.empty() && static_cast<int>(out.size()) < max_tasks) {
    v1::ClaimedTask claim = std::move(pending_.front());
    pending_.pop_front();
    const absl::Time taken_until =
        absl::Now() + claim_timeouts_[claim.task_id()];
    *claim.mutable_taken_until() = ToProto(taken_until);
    *claim.mutable_credentials() = IssueLocked(claim.task_id(), taken_until);
    outstanding_[claim.task_id()] = taken_until;
    out.push_back(std::move(claim));
  }
  max_outstanding_ =
      std::max(max_outstanding_, static_cast<int>(outstanding_.size()));
  return out;
}

void FakeQueue::CancelClaims() {
  std::lock_guard<std::mutex> lock(mu_);
  cancel_claims_ = true;
  cv_.notify_all();
}

v1::TaskCredentials FakeQueue::IssueLocked(const std::string& task_id,
                                           absl::Time expires) {
  v1::TaskCredentials credentials;
  credentials.set_client_id("task-client/" + task_id);
  credentials.set_access_token(absl::StrCat("token-", next_token_++));
  issued_[credentials.access_token()] = Issued{task_id, expires};
  return credentials;
}

absl::Status FakeQueue::CheckCredentialsLocked(
    const std::string& task_id, const v1::TaskCredentials& credentials) {
  auto it = issued_.find(credentials.access_token());
  if (it == issued_.end() || it->second.task_id != task_id ||
      credentials.client_id() != "task-client/" + task_id ||
      it->second.expires < absl::Now()) {
    ++auth_failures_;
    return MakeError(ErrorCode::kAuthenticationFailed,
                     "no valid task credentials for " + task_id,
                     {{"client_id", credentials.client_id()}});
  }
  return absl::OkStatus();
}

int FakeQueue::AuthenticationFailures() const {
  std::lock_guard<std::mutex> lock(mu_);
  return auth_failures_;
}

absl::StatusOr<v1::ReclaimTaskResponse> FakeQueue::ReclaimTask(
    const WorkerIdentity& worker, const std::string& task_id, int run_id,
    const v1::TaskCredentials& credentials) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unavailable_) return absl::UnavailableError("fake queue is down");
  DROVER_RETURN_IF_ERROR(CheckCredentialsLocked(task_id, credentials));
  ExpireClaimsLocked();
  ++reclaims_[task_id];
  cv_.notify_all();
  if (canceled_.contains(task_id) || !outstanding_.contains(task_id)) {
    return ConflictError("run " + task_id + "/" + std::to_string(run_id) +
                         " is no longer running");
  }
  const absl::Time taken_until = absl::Now() + claim_timeouts_[task_id];
  outstanding_[task_id] = taken_until;
  v1::ReclaimTaskResponse response;
  *response.mutable_taken_until() = ToProto(taken_until);
  *response.mutable_credentials() = IssueLocked(task_id, taken_until);
  return response;
}

absl::Status FakeQueue::Resolve(const std::string& task_id, int run_id,
                                const std::string& state,
                                const std::string& reason,
                                const v1::TaskCredentials& credentials) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unavailable_) {
    ++refused_reports_;
    cv_.notify_all();
    return absl::UnavailableError("fake queue is down");
  }
  DROVER_RETURN_IF_ERROR(CheckCredentialsLocked(task_id, credentials));
  ExpireClaimsLocked();
  if (canceled_.contains(task_id)) {
    return ConflictError("run " + task_id + " was canceled");
  }
  if (!outstanding_.contains(task_id)) {
    // Repeating the same resolution is harmless, as on the real queue.
    for (const auto& r : reports_) {
      if (r.task_id == task_id && r.state == state && r.reason == reason) {
        return absl::OkStatus();
      }
    }
    return ConflictError("run " + task_id + " is not running");
  }
  outstanding_.erase(task_id);
  reports_.push_back(Report{task_id, run_id, state, reason});
  cv_.notify_all();
  return absl::OkStatus();
}

absl::Status FakeQueue::ReportCompleted(
    const std::string& task_id, int run_id,
    const v1::TaskCredentials& credentials) {
  return Resolve(task_id, run_id, "completed", "", credentials);
}
absl::Status FakeQueue::ReportFailed(const std::string& task_id, int run_id,
                                     const v1::TaskCredentials& credentials) {
  return Resolve(task_id, run_id, "failed", "", credentials);
}
absl::Status FakeQueue::ReportException(
    const std::string& task_id, int run_id, const std::string& reason,
    const v1::TaskCredentials& credentials) {
  return Resolve(task_id, run_id, "exception", reason, credentials);
}

}  // namespace drover::worker::testing
