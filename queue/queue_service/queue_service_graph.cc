// QueueService handlers for task graphs, task groups, priorities and the
// event log (declared in queue_service.h). Kept apart from
// queue_service.cc, which holds the per-task RPCs.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/grpc_status.h"
#include "common/status.h"
#include "queue/queue_service/conversions.h"
#include "queue/queue_service/queue_service.h"

namespace drover::queue::queue_service {
namespace {

// Events fetched per store read, and how long a watcher that found nothing
// new waits before looking again.
constexpr int kWatchBatch = 500;
constexpr absl::Duration kWatchPoll = absl::Milliseconds(100);
// How long a read waits for transactions that may still commit events.
constexpr absl::Duration kWatchMaxWait = absl::Seconds(2);

const std::set<std::string>& EventKinds() {
  static const auto* kinds = new std::set<std::string>{
      "task-defined",         "task-pending",        "task-running",
      "task-completed",       "task-failed",         "task-exception",
      "artifact-created",     "task-group-resolved", "task-group-sealed",
      "task-priority-changed"};
  return *kinds;
}

// Re-labels an error about one task of a graph: "task.deadline" becomes
// "tasks[3].task.deadline" so the caller knows which task it was.
absl::Status InGraphTask(const absl::Status& status, int index) {
  ErrorInfo info = GetErrorInfo(status);
  std::string prefix = absl::StrCat("tasks[", index, "]");
  auto field = info.details.find("field");
  if (field != info.details.end()) {
    field->second = absl::StrCat(prefix, ".", field->second);
  } else {
    info.details["field"] = prefix;
  }
  return MakeError(info.code, absl::StrCat(prefix, ": ", info.message),
                   std::move(info.details));
}

absl::StatusOr<int> PageLimit(int limit) {
  if (limit == 0) return kDefaultListLimit;
  if (limit < 1 || limit > kMaxListLimit) {
    return InputError(
        "limit", std::to_string(limit),
        "limit must be within 1.." + std::to_string(kMaxListLimit));
  }
  return limit;
}

absl::StatusOr<store::Priority> ParsePriorityField(const std::string& value) {
  auto priority = store::ParsePriority(value);
  if (!priority.has_value()) {
    return InputError("priority", value,
                      "must be one of highest, very-high, high, medium, low, "
                      "very-low, lowest");
  }
  return *priority;
}

v1::TaskGroupInfo ToProtoGroup(const store::TaskGroupInfo& info) {
  v1::TaskGroupInfo out;
  out.set_task_group_id(info.task_group_id);
  out.set_scheduler_id(info.scheduler_id);
  if (info.sealed.has_value())
    *out.mutable_sealed() = ToProtoTime(*info.sealed);
  *out.mutable_expires() = ToProtoTime(info.expires);
  for (const auto& [state, n] : info.counts) (*out.mutable_counts())[state] = n;
  out.set_tasks(info.tasks);
  out.set_resolved(info.resolved);
  return out;
}

v1::Event ToProtoEvent(const store::Event& e) {
  v1::Event out;
  out.set_event_id(e.event_id);
  out.set_kind(e.kind);
  out.set_task_id(e.task_id);
  out.set_task_group_id(e.task_group_id);
  out.set_task_queue_id(e.task_queue_id);
  out.set_run_id(e.run_id.value_or(-1));
  *out.mutable_time() = ToProtoTime(e.time);
  for (const auto& r : e.routes) out.add_routes(r);
  out.set_body(e.body);
  return out;
}

void FillPage(const store::Page<store::TaskStatus>& page,
              v1::ListTasksResponse* response) {
  for (const auto& status : page.items) {
    *response->add_tasks() = ToProto(status);
  }
  response->set_continuation_token(page.continuation_token);
}

absl::Status ValidateWatch(const v1::WatchEventsRequest& request) {
  if (request.has_after_event_id() && request.after_event_id() < 0) {
    return InputError("after_event_id",
                      std::to_string(request.after_event_id()),
                      "must not be negative");
  }
  if (!request.task_group_id().empty()) {
    DROVER_RETURN_IF_ERROR(
        ValidateSlugId("task_group_id", request.task_group_id()));
  }
  if (!request.task_queue_id().empty()) {
    DROVER_RETURN_IF_ERROR(
        ValidateTaskQueueId("task_queue_id", request.task_queue_id()));
  }
  for (int i = 0; i < request.kinds_size(); ++i) {
    if (EventKinds().count(request.kinds(i)) == 0) {
      return InputError(absl::StrCat("kinds[", i, "]"), request.kinds(i),
                        "not an event kind (task-defined, task-pending, "
                        "task-running, task-completed, task-failed, "
                        "task-exception, artifact-created, "
                        "task-group-resolved, task-group-sealed, "
                        "task-priority-changed)");
    }
  }
  return absl::OkStatus();
}

// A WatchEvents call refused before it started.
class RefusedWatch final : public grpc::ServerWriteReactor<v1::Event> {
 public:
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* QueueService::CreateTaskGraph(
    grpc::CallbackServerContext* context,
    const v1::CreateTaskGraphRequest* request,
    v1::CreateTaskGraphResponse* response) {
  return Run(context, kCreateTaskGraphMethod, *request, [=, this] {
    if (!request->graph_id().empty()) {
      DROVER_RETURN_IF_ERROR(ValidateSlugId("graph_id", request->graph_id()));
    } else if (!request->commit()) {
      return InputError("graph_id", "",
                        "staging a batch (commit=false) needs a graph_id");
    }
    if (request->tasks_size() > kMaxGraphBatch) {
      return InputError(
          "tasks", std::to_string(request->tasks_size()),
          absl::StrCat("at most ", kMaxGraphBatch,
                       " tasks per call; stage larger graphs in batches "
                       "under a graph_id"));
    }
    absl::Time now = clock_->Now();
    std::vector<store::Task> tasks;
    tasks.reserve(request->tasks_size());
    v1::CreateTaskRequest one;
    for (int i = 0; i < request->tasks_size(); ++i) {
      one.set_task_id(request->tasks(i).task_id());
      *one.mutable_task() = request->tasks(i).task();
      auto task = ValidateCreateTask(one, options_.limits, now);
      if (!task.ok()) return InGraphTask(task.status(), i);
      tasks.push_back(std::move(task).value());
    }
    if (!request->commit()) {
      DROVER_ASSIGN_OR_RETURN(
          int64_t staged, store_->StageTaskGraph(request->graph_id(), tasks));
      response->set_tasks(staged);
      return absl::OkStatus();
    }
    DROVER_ASSIGN_OR_RETURN(
        store::TaskGraphResult result,
        store_->CommitTaskGraph(request->graph_id(), tasks));
    for (const std::string& queue : result.pending_queues) {
      NotifyPending(queue);
    }
    response->set_tasks(result.tasks);
    response->set_pending(result.pending);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::ListTaskGroup(
    grpc::CallbackServerContext* context,
    const v1::ListTaskGroupRequest* request, v1::ListTasksResponse* response) {
  return Run(context, kListTaskGroupMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(
        ValidateSlugId("task_group_id", request->task_group_id()));
    DROVER_ASSIGN_OR_RETURN(int limit, PageLimit(request->limit()));
    DROVER_ASSIGN_OR_RETURN(
        auto page, store_->ListTaskGroup(request->task_group_id(),
                                         request->continuation_token(), limit));
    FillPage(page, response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::GetTaskGroup(
    grpc::CallbackServerContext* context, const v1::TaskGroupRequest* request,
    v1::TaskGroupInfo* response) {
  return Run(context, kGetTaskGroupMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(
        ValidateSlugId("task_group_id", request->task_group_id()));
    DROVER_ASSIGN_OR_RETURN(store::TaskGroupInfo info,
                            store_->GetTaskGroup(request->task_group_id()));
    *response = ToProtoGroup(info);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::SealTaskGroup(
    grpc::CallbackServerContext* context, const v1::TaskGroupRequest* request,
    v1::TaskGroupInfo* response) {
  return Run(context, kSealTaskGroupMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(
        ValidateSlugId("task_group_id", request->task_group_id()));
    DROVER_ASSIGN_OR_RETURN(store::TaskGroupInfo info,
                            store_->SealTaskGroup(request->task_group_id()));
    *response = ToProtoGroup(info);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::CancelTaskGroup(
    grpc::CallbackServerContext* context, const v1::TaskGroupRequest* request,
    v1::CancelTaskGroupResponse* response) {
  return Run(context, kCancelTaskGroupMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(
        ValidateSlugId("task_group_id", request->task_group_id()));
    DROVER_ASSIGN_OR_RETURN(
        int64_t canceled,
        store_->CancelTaskGroup(request->task_group_id(), /*batch=*/200));
    DROVER_ASSIGN_OR_RETURN(store::TaskGroupInfo info,
                            store_->GetTaskGroup(request->task_group_id()));
    response->set_canceled(canceled);
    *response->mutable_group() = ToProtoGroup(info);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::ListDependentTasks(
    grpc::CallbackServerContext* context,
    const v1::ListDependentTasksRequest* request,
    v1::ListTasksResponse* response) {
  return Run(context, kListDependentTasksMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request->task_id()));
    DROVER_ASSIGN_OR_RETURN(int limit, PageLimit(request->limit()));
    DROVER_ASSIGN_OR_RETURN(
        auto page,
        store_->ListDependentTasks(request->task_id(),
                                   request->continuation_token(), limit));
    FillPage(page, response);
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* QueueService::ChangeTaskPriority(
    grpc::CallbackServerContext* context,
    const v1::ChangeTaskPriorityRequest* request,
    v1::TaskStatusResponse* response) {
  return Run(context, kChangeTaskPriorityMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request->task_id()));
    DROVER_ASSIGN_OR_RETURN(store::Priority priority,
                            ParsePriorityField(request->priority()));
    return Respond(store_->ChangeTaskPriority(request->task_id(), priority),
                   response, /*wake_claimers=*/false);
  });
}

grpc::ServerUnaryReactor* QueueService::ChangeTaskGroupPriority(
    grpc::CallbackServerContext* context,
    const v1::ChangeTaskGroupPriorityRequest* request,
    v1::ChangeTaskGroupPriorityResponse* response) {
  return Run(context, kChangeTaskGroupPriorityMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(
        ValidateSlugId("task_group_id", request->task_group_id()));
    DROVER_ASSIGN_OR_RETURN(store::Priority priority,
                            ParsePriorityField(request->priority()));
    DROVER_ASSIGN_OR_RETURN(
        int64_t changed,
        store_->ChangeTaskGroupPriority(request->task_group_id(), priority));
    response->set_changed(changed);
    return absl::OkStatus();
  });
}

// One WatchEvents stream. A thread of its own polls the store and writes
// one event at a time (gRPC allows a single outstanding write), so the
// executor's threads are never held by a long-lived stream. The thread's
// last act is Finish(); OnDone joins it and deletes the reactor.
class WatchEventsReactor final : public grpc::ServerWriteReactor<v1::Event> {
 public:
  WatchEventsReactor(QueueService* service,
                     grpc::CallbackServerContext* context,
                     const v1::WatchEventsRequest* request)
      : service_(service), context_(context), request_(request) {
    service_->watchers_++;
    thread_ = std::thread([this] { Serve(); });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    write_failed_ = !ok;
    cv_.notify_all();
  }

  void OnSendInitialMetadataDone(bool ok) override { OnWriteDone(ok); }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    canceled_ = true;
    cv_.notify_all();
  }

  void OnDone() override {
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else if (thread_.joinable()) {
      thread_.join();
    }
    service_->watchers_--;
    delete this;
  }

 private:
  bool Stopping() {
    return canceled_ || write_failed_ || service_->watch_stopping_.load();
  }

  // Sends `event` and waits for the write to finish; false when the
  // stream is going away.
  bool Write(const v1::Event& event) {
    std::unique_lock<std::mutex> lock(mu_);
    if (Stopping()) return false;
    writing_ = true;
    StartWrite(&event);
    cv_.wait(lock, [this] { return !writing_; });
    return !Stopping();
  }

  absl::Status Stream() {
    const v1::WatchEventsRequest& request = *request_;
    DROVER_RETURN_IF_ERROR(service_->authorizer_->Authorize(
        context_, kWatchEventsMethod, request));
    DROVER_RETURN_IF_ERROR(ValidateWatch(request));
    store::EventFilter filter;
    filter.task_group_id = request.task_group_id();
    filter.task_queue_id = request.task_queue_id();
    filter.route_prefix = request.route_prefix();
    filter.kinds.assign(request.kinds().begin(), request.kinds().end());
    int64_t position = 0;
    if (request.has_after_event_id()) {
      position = request.after_event_id();
    } else {
      DROVER_ASSIGN_OR_RETURN(
          position, service_->store_->CurrentEventPosition(kWatchMaxWait));
    }
    // The first message tells the client the stream is live: headers go
    // out before any event, so a "from now" watcher knows when "now" was.
    {
      std::unique_lock<std::mutex> lock(mu_);
      writing_ = true;
      StartSendInitialMetadata();
      cv_.wait(lock, [this] { return !writing_; });
    }
    v1::Event event;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mu_);
        if (Stopping()) break;
      }
      DROVER_ASSIGN_OR_RETURN(
          store::EventBatch batch,
          service_->store_->ReadEvents(position, filter, kWatchBatch,
                                       kWatchMaxWait));
      for (const store::Event& e : batch.events) {
        event = ToProtoEvent(e);
        if (!Write(event)) break;
      }
      bool idle = batch.events.empty();
      position = batch.next;
      if (idle) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait_for(lock, absl::ToChronoMilliseconds(kWatchPoll),
                     [this] { return Stopping(); });
      }
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (canceled_) return absl::CancelledError("the client canceled the call");
    return absl::OkStatus();
  }

  void Serve() {
    absl::Status status = Stream();
    // Wait for a write still in flight before finishing.
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !writing_; });
    }
    Finish(rpc::ToGrpcStatus(status));
  }

  QueueService* const service_;
  grpc::CallbackServerContext* const context_;
  const v1::WatchEventsRequest* const request_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = false;
  bool write_failed_ = false;
  bool canceled_ = false;
};

grpc::ServerWriteReactor<v1::Event>* QueueService::WatchEvents(
    grpc::CallbackServerContext* context,
    const v1::WatchEventsRequest* request) {
  if (watchers_.load() >= kMaxWatchers || watch_stopping_.load()) {
    auto* refused = new RefusedWatch();
    refused->Finish(rpc::ToGrpcStatus(absl::UnavailableError(
        absl::StrCat("too many event watchers (", kMaxWatchers,
                     ") or shutting down; retry later"))));
    return refused;
  }
  return new WatchEventsReactor(this, context, request);
}

}  // namespace drover::queue::queue_service
