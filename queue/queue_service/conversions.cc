#include "queue/queue_service/conversions.h"

#include <string>

#include "common/status.h"

namespace drover::queue::queue_service {
namespace {

// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, the range of RFC 3339
// that google.protobuf.Timestamp allows.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

}  // namespace

google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp ts;
  // Floor division keeps nanos non-negative for times before the epoch.
  absl::Duration since_epoch = t - absl::UnixEpoch();
  int64_t seconds =
      absl::IDivDuration(since_epoch, absl::Seconds(1), &since_epoch);
  if (since_epoch < absl::ZeroDuration()) {
    seconds -= 1;
    since_epoch += absl::Seconds(1);
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(since_epoch)));
  return ts;
}

absl::StatusOr<absl::Time> FromProtoTime(const google::protobuf::Timestamp& ts,
                                         std::string_view field) {
  if (ts.seconds() < kMinTimestampSeconds ||
      ts.seconds() > kMaxTimestampSeconds) {
    return InputError(field, std::to_string(ts.seconds()) + "s",
                      "timestamp is outside 0001-01-01..9999-12-31");
  }
  if (ts.nanos() < 0 || ts.nanos() > 999999999) {
    return InputError(field, std::to_string(ts.nanos()) + "ns",
                      "timestamp nanos must be within 0..999999999");
  }
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E*SZ", t, absl::UTCTimeZone());
}

v1::TaskDefinition ToProto(const store::Task& task) {
  v1::TaskDefinition out;
  out.set_task_queue_id(task.task_queue_id);
  out.set_scheduler_id(task.scheduler_id);
  out.set_task_group_id(task.task_group_id);
  for (const auto& dep : task.dependencies) out.add_dependencies(dep);
  out.set_requirement(std::string(store::RequiresName(task.requires_rule)));
  for (const auto& route : task.routes) out.add_routes(route);
  out.set_priority(std::string(store::PriorityName(task.priority)));
  out.set_retries(task.retries);
  *out.mutable_created() = ToProtoTime(task.created);
  *out.mutable_deadline() = ToProtoTime(task.deadline);
  *out.mutable_expires() = ToProtoTime(task.expires);
  for (const auto& scope : task.scopes) out.add_scopes(scope);
  out.set_payload(task.payload);
  auto* metadata = out.mutable_metadata();
  metadata->set_name(task.metadata_name);
  metadata->set_description(task.metadata_description);
  metadata->set_owner(task.metadata_owner);
  metadata->set_source(task.metadata_source);
  for (const auto& [key, value] : task.tags) (*out.mutable_tags())[key] = value;
  out.set_extra(task.extra);
  return out;
}

v1::RunStatus ToProto(const store::Run& run) {
  v1::RunStatus out;
  out.set_run_id(run.run_id);
  out.set_state(std::string(store::RunStateName(run.state)));
  out.set_reason_created(run.reason_created);
  out.set_reason_resolved(run.reason_resolved);
  out.set_worker_group(run.worker_group);
  out.set_worker_id(run.worker_id);
  // Unset optional times stay absent rather than reading as the epoch.
  if (run.taken_until)
    *out.mutable_taken_until() = ToProtoTime(*run.taken_until);
  *out.mutable_scheduled() = ToProtoTime(run.scheduled);
  if (run.started) *out.mutable_started() = ToProtoTime(*run.started);
  if (run.resolved) *out.mutable_resolved() = ToProtoTime(*run.resolved);
  return out;
}

v1::TaskStatus ToProto(const store::TaskStatus& status) {
  v1::TaskStatus out;
  out.set_task_id(status.task_id);
  out.set_task_queue_id(status.task_queue_id);
  out.set_scheduler_id(status.scheduler_id);
  out.set_task_group_id(status.task_group_id);
  out.set_state(status.state);
  out.set_retries_left(status.retries_left);
  *out.mutable_deadline() = ToProtoTime(status.deadline);
  *out.mutable_expires() = ToProtoTime(status.expires);
  for (const auto& run : status.runs) *out.add_runs() = ToProto(run);
  for (const auto& dep : status.blocking_dependencies) {
    out.add_blocking_dependencies(dep);
  }
  return out;
}

v1::ClaimedTask ToProto(const store::ClaimedTask& claimed) {
  v1::ClaimedTask out;
  out.set_task_id(claimed.task.task_id);
  out.set_run_id(claimed.run_id);
  *out.mutable_task() = ToProto(claimed.task);
  *out.mutable_taken_until() = ToProtoTime(claimed.taken_until);
  return out;
}

v1::TaskQueueCounts ToProto(const store::TaskQueueCounts& counts) {
  v1::TaskQueueCounts out;
  out.set_task_queue_id(counts.task_queue_id);
  out.set_pending(counts.pending);
  out.set_claimed(counts.claimed);
  return out;
}

v1::TaskQueueInfo ToProtoInfo(const store::TaskQueueCounts& counts) {
  v1::TaskQueueInfo out;
  out.set_task_queue_id(counts.task_queue_id);
  out.set_pending(counts.pending);
  out.set_claimed(counts.claimed);
  if (counts.last_date_active) {
    *out.mutable_last_date_active() = ToProtoTime(*counts.last_date_active);
  }
  return out;
}

}  // namespace drover::queue::queue_service
