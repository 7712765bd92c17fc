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
  std::lock_guard<std::mutex> lock(mu_);
  v1::ClaimedTask claim;
  claim.set_task_id(NewSlugId());
  claim.set_run_id(0);
  claim.mutable_task()->set_task_queue_id("test/fake");
  claim.mutable_task()->set_payload(payload_json);
  claim.mutable_task()->mutable_metadata()->set_name(
      absl::StrCat("task ", next_id_++));
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
  if (unavailable_) return absl::UnavailableError("fake queue is down");
  cv_.wait_for(lock, absl::ToChronoNanoseconds(poll_timeout_), [&] {
    return !pending_.empty() || cancel_claims_ || unavailable_;
  });
  if (unavailable_) return absl::UnavailableError("fake queue is down");
  std::vector<v1::ClaimedTask> out;
  while (!pending_.empty() && static_cast<int>(out.size()) < max_tasks) {
    v1::ClaimedTask claim = std::move(pending_.front());
    pending_.pop_front();
    *claim.mutable_taken_until() = ToProto(absl::Now() + claim_timeout_);
    outstanding_.insert(claim.task_id());
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

absl::StatusOr<v1::ReclaimTaskResponse> FakeQueue::ReclaimTask(
    const WorkerIdentity& worker, const std::string& task_id, int run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unavailable_) return absl::UnavailableError("fake queue is down");
  ++reclaims_[task_id];
  if (canceled_.contains(task_id) || !outstanding_.contains(task_id)) {
    return ConflictError("run " + task_id + "/" + std::to_string(run_id) +
                         " is no longer running");
  }
  v1::ReclaimTaskResponse response;
  *response.mutable_taken_until() = ToProto(absl::Now() + claim_timeout_);
  return response;
}

absl::Status FakeQueue::Resolve(const std::string& task_id, int run_id,
                                const std::string& state,
                                const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (unavailable_) return absl::UnavailableError("fake queue is down");
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

absl::Status FakeQueue::ReportCompleted(const std::string& task_id,
                                        int run_id) {
  return Resolve(task_id, run_id, "completed", "");
}
absl::Status FakeQueue::ReportFailed(const std::string& task_id, int run_id) {
  return Resolve(task_id, run_id, "failed", "");
}
absl::Status FakeQueue::ReportException(const std::string& task_id,
                                        int run_id,
                                        const std::string& reason) {
  return Resolve(task_id, run_id, "exception", reason);
}

}  // namespace drover::worker::testing
