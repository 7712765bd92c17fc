#include "queue/queue_service/claim_long_poll.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/grpc_status.h"
#include "queue/queue_service/conversions.h"
#include "spdlog/spdlog.h"

namespace drover::queue::queue_service {
namespace {

using SteadyClock = std::chrono::steady_clock;

// A parked call answers this long before the client's own deadline so the
// client sees an empty answer rather than DEADLINE_EXCEEDED.
constexpr auto kClientDeadlineMargin = std::chrono::milliseconds(50);

SteadyClock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<SteadyClock::duration>(
      absl::ToChronoNanoseconds(d));
}

}  // namespace

// One ClaimWork call. Its scheduling fields are guarded by the owning
// ClaimLongPoll's mutex; whoever moves it to kDone calls Finish, exactly
// once, and must not touch it afterwards (OnDone deletes it).
class ClaimLongPoll::Call final : public grpc::ServerUnaryReactor {
 public:
  enum class State { kAttempting, kParked, kDone };

  Call(ClaimLongPoll* owner, grpc::CallbackServerContext* context,
       const v1::ClaimWorkRequest* request, v1::ClaimWorkResponse* response,
       Precheck precheck, SteadyTime deadline)
      : owner_(owner),
        context_(context),
        request_(request),
        response_(response),
        precheck_(std::move(precheck)),
        deadline_(deadline) {}

  void OnCancel() override { owner_->Cancel(this); }
  void OnDone() override { delete this; }

  void Answer(const absl::Status& status) { Finish(rpc::ToGrpcStatus(status)); }

  ClaimLongPoll* const owner_;
  grpc::CallbackServerContext* const context_;
  const v1::ClaimWorkRequest* const request_;
  v1::ClaimWorkResponse* const response_;
  Precheck precheck_;
  const SteadyTime deadline_;

  State state_ = State::kAttempting;
  bool cancelled_ = false;
  // Has been parked before: goes back to the front, keeping FIFO order.
  bool parked_before_ = false;
  std::list<Call*>::iterator position_;
};

ClaimLongPoll::ClaimLongPoll(ClaimLongPollOptions options, store::Store* store,
                             BoundedExecutor* executor)
    : options_(options), store_(store), executor_(executor) {
  timer_ = std::thread([this] { TimerLoop(); });
}

ClaimLongPoll::~ClaimLongPoll() { Shutdown(); }

grpc::ServerUnaryReactor* ClaimLongPoll::Start(
    grpc::CallbackServerContext* context, const v1::ClaimWorkRequest* request,
    v1::ClaimWorkResponse* response, Precheck precheck) {
  SteadyTime deadline = SteadyClock::now() + ToChrono(options_.poll_timeout);
  auto client_deadline = context->deadline();
  if (client_deadline != std::chrono::system_clock::time_point::max()) {
    auto left = client_deadline - std::chrono::system_clock::now();
    deadline = std::min(
        deadline, SteadyClock::now() +
                      std::chrono::duration_cast<SteadyClock::duration>(left) -
                      kClientDeadlineMargin);
  }
  auto* call =
      new Call(this, context, request, response, std::move(precheck), deadline);
  if (!executor_->TrySubmit([this, call] { Begin(call); })) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      call->state_ = Call::State::kDone;
    }
    call->Answer(absl::UnavailableError("server is overloaded; retry later"));
  }
  return call;
}

void ClaimLongPoll::Begin(Call* call) {
  absl::Status status = call->precheck_();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (status.ok() && call->cancelled_) {
      status = absl::CancelledError("the client canceled the call");
    }
    if (!status.ok()) {
      call->state_ = Call::State::kDone;
    } else {
      queues_[call->request_->task_queue_id()].attempting++;
    }
  }
  if (!status.ok()) {
    call->Answer(status);
    return;
  }
  Attempt(call);
}

void ClaimLongPoll::Attempt(Call* call) {
  const v1::ClaimWorkRequest& request = *call->request_;
  // A quarantined worker is answered like one facing an empty queue: it
  // keeps polling and gets nothing until the quarantine ends.
  WorkerGate* gate = gate_.load();
  absl::StatusOr<std::vector<store::ClaimedTask>> result =
      std::vector<store::ClaimedTask>{};
  if (gate == nullptr ||
      gate->MayClaim(request.task_queue_id(), request.worker_group(),
                     request.worker_id())) {
    result = store_->ClaimWork(request.task_queue_id(), request.worker_group(),
                               request.worker_id(), request.max_tasks(),
                               options_.claim_timeout);
  }
  absl::Status answer;
  bool finish = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string& queue_id = request.task_queue_id();
    QueueEntry& entry = queues_[queue_id];
    entry.attempting--;
    if (!result.ok()) {
      answer = result.status();
      finish = true;
    } else if (!result->empty()) {
      finish = true;
      // There may be more: let the next waiters look, two at a time.
      entry.dirty = true;
      PumpLocked(entry, 2);
    } else if (call->cancelled_) {
      answer = absl::CancelledError("the client canceled the call");
      finish = true;
    } else if (shutting_down_ || SteadyClock::now() >= call->deadline_) {
      finish = true;
    } else {
      if (call->parked_before_) {
        entry.parked.push_front(call);
        call->position_ = entry.parked.begin();
      } else {
        entry.parked.push_back(call);
        call->position_ = std::prev(entry.parked.end());
      }
      call->parked_before_ = true;
      call->state_ = Call::State::kParked;
      ++parked_count_;
      timer_cv_.notify_one();
      PumpLocked(entry, 1);
    }
    if (finish) {
      call->state_ = Call::State::kDone;
      ForgetIfIdleLocked(queue_id);
    }
  }
  if (!finish) return;
  std::vector<std::string> claimed_runs;
  if (answer.ok() && result.ok()) {
    for (const auto& claimed : *result) {
      v1::ClaimedTask* task = call->response_->add_tasks();
      *task = ToProto(claimed);
      claimed_runs.push_back(
          absl::StrCat(claimed.task.task_id, "/", claimed.run_id));
      if (issuer_ == nullptr) continue;
      // The runs are claimed already: failing the call would strand them
      // until their claims expire, so a task whose credentials cannot be
      // made is handed out without them (its worker's reclaim then fails
      // and the run is retried elsewhere).
      auto credentials = issuer_->Issue({.task_id = claimed.task.task_id,
                                         .run_id = claimed.run_id,
                                         .task_scopes = claimed.task.scopes,
                                         .worker_group = request.worker_group(),
                                         .worker_id = request.worker_id(),
                                         .taken_until = claimed.taken_until});
      if (credentials.ok()) {
        *task->mutable_credentials() = *std::move(credentials);
      } else {
        spdlog::error("task credentials for {}/{}: {}", claimed.task.task_id,
                      claimed.run_id, credentials.status().ToString());
      }
    }
  }
  if (gate == nullptr || claimed_runs.empty()) {
    call->Answer(answer);
    return;
  }
  // The worker hears about its tasks first; the bookkeeping follows.
  std::string queue_id = request.task_queue_id();
  std::string group = request.worker_group();
  std::string worker = request.worker_id();
  call->Answer(answer);
  gate->NoteClaimed(queue_id, group, worker, claimed_runs);
}

void ClaimLongPoll::PumpLocked(QueueEntry& entry, int budget) {
  if (shutting_down_ || !entry.dirty) return;
  int launched = 0;
  while (launched < budget && !entry.parked.empty() &&
         entry.attempting < options_.max_parallel_attempts) {
    Call* call = entry.parked.front();
    entry.parked.pop_front();
    --parked_count_;
    call->state_ = Call::State::kAttempting;
    entry.attempting++;
    if (!executor_->TrySubmit([this, call] { Attempt(call); })) {
      // The executor is saturated: leave the call parked; the queue stays
      // dirty and the safety poll tries again.
      entry.attempting--;
      entry.parked.push_front(call);
      call->position_ = entry.parked.begin();
      call->state_ = Call::State::kParked;
      ++parked_count_;
      break;
    }
    ++launched;
  }
  // Attempts started now see everything committed before the wake-up; with
  // none started (all waiters busy) the running ones re-check on return.
  if (launched > 0) entry.dirty = false;
}

void ClaimLongPoll::ForgetIfIdleLocked(const std::string& queue_id) {
  auto it = queues_.find(queue_id);
  if (it != queues_.end() && it->second.parked.empty() &&
      it->second.attempting == 0) {
    queues_.erase(it);
  }
}

void ClaimLongPoll::Wake(const std::string& task_queue_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (task_queue_id.empty()) {
    // "Any queue": the notifier reconnected and may have missed some.
    for (auto& [queue_id, entry] : queues_) {
      entry.dirty = true;
      PumpLocked(entry, 1);
    }
    return;
  }
  auto it = queues_.find(task_queue_id);
  if (it == queues_.end()) return;
  it->second.dirty = true;
  PumpLocked(it->second, 1);
}

void ClaimLongPoll::Cancel(Call* call) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    switch (call->state_) {
      case Call::State::kDone:
        return;
      case Call::State::kAttempting:
        // The running attempt (or precheck) answers when it returns.
        call->cancelled_ = true;
        return;
      case Call::State::kParked: {
        const std::string& queue_id = call->request_->task_queue_id();
        queues_[queue_id].parked.erase(call->position_);
        --parked_count_;
        call->state_ = Call::State::kDone;
        ForgetIfIdleLocked(queue_id);
        break;
      }
    }
  }
  call->Answer(absl::CancelledError("the client canceled the call"));
}

void ClaimLongPoll::TimerLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  SteadyTime next_poll =
      SteadyClock::now() + ToChrono(options_.safety_poll_interval);
  while (!shutting_down_) {
    SteadyTime wake_at = next_poll;
    for (const auto& [queue_id, entry] : queues_) {
      for (const Call* call : entry.parked) {
        wake_at = std::min(wake_at, call->deadline_);
      }
    }
    timer_cv_.wait_until(lock, wake_at);
    if (shutting_down_) break;

    SteadyTime now = SteadyClock::now();
    std::vector<Call*> expired;
    std::vector<std::string> queue_ids;
    for (auto& [queue_id, entry] : queues_) {
      queue_ids.push_back(queue_id);
      for (auto it = entry.parked.begin(); it != entry.parked.end();) {
        Call* call = *it;
        if (call->deadline_ <= now) {
          it = entry.parked.erase(it);
          --parked_count_;
          call->state_ = Call::State::kDone;
          expired.push_back(call);
        } else {
          ++it;
        }
      }
    }
    if (now >= next_poll) {
      for (auto& [queue_id, entry] : queues_) {
        if (!entry.parked.empty() && entry.attempting == 0) {
          entry.dirty = true;
          PumpLocked(entry, 1);
        }
      }
      next_poll = now + ToChrono(options_.safety_poll_interval);
    }
    for (const auto& queue_id : queue_ids) ForgetIfIdleLocked(queue_id);

    if (!expired.empty()) {
      lock.unlock();
      for (Call* call : expired) call->Answer(absl::OkStatus());
      lock.lock();
    }
  }
}

void ClaimLongPoll::Shutdown() {
  std::vector<Call*> parked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!shutting_down_) {
      shutting_down_ = true;
      for (auto& [queue_id, entry] : queues_) {
        for (Call* call : entry.parked) {
          call->state_ = Call::State::kDone;
          parked.push_back(call);
        }
        entry.parked.clear();
      }
      parked_count_ = 0;
      std::vector<std::string> queue_ids;
      for (auto& [queue_id, entry] : queues_) queue_ids.push_back(queue_id);
      for (const auto& queue_id : queue_ids) ForgetIfIdleLocked(queue_id);
    }
  }
  timer_cv_.notify_all();
  if (timer_.joinable()) timer_.join();
  for (Call* call : parked) call->Answer(absl::OkStatus());
}

size_t ClaimLongPoll::parked() const {
  std::lock_guard<std::mutex> lock(mu_);
  return parked_count_;
}

}  // namespace drover::queue::queue_service
