#include "cli/output.h"

#include <algorithm>
#include <map>
#include <sstream>

#include "client/time_spec.h"
#include "common/status.h"
#include "google/protobuf/util/json_util.h"

namespace drover::cli {
namespace {

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string TransportCodeLabel(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kCancelled:
      return "Cancelled";
    case absl::StatusCode::kUnknown:
      return "Unknown";
    case absl::StatusCode::kInvalidArgument:
      return "InvalidArgument";
    case absl::StatusCode::kDeadlineExceeded:
      return "DeadlineExceeded";
    case absl::StatusCode::kNotFound:
      return "NotFound";
    case absl::StatusCode::kAlreadyExists:
      return "AlreadyExists";
    case absl::StatusCode::kPermissionDenied:
      return "PermissionDenied";
    case absl::StatusCode::kResourceExhausted:
      return "ResourceExhausted";
    case absl::StatusCode::kFailedPrecondition:
      return "FailedPrecondition";
    case absl::StatusCode::kAborted:
      return "Aborted";
    case absl::StatusCode::kOutOfRange:
      return "OutOfRange";
    case absl::StatusCode::kUnimplemented:
      return "Unimplemented";
    case absl::StatusCode::kInternal:
      return "Internal";
    case absl::StatusCode::kUnavailable:
      return "Unavailable";
    case absl::StatusCode::kDataLoss:
      return "DataLoss";
    case absl::StatusCode::kUnauthenticated:
      return "Unauthenticated";
    default:
      return "Unknown";
  }
}

bool HasDroverDetail(const absl::Status& status) {
  bool found = false;
  status.ForEachPayload(
      [&](absl::string_view, const absl::Cord&) { found = true; });
  return found;
}

}  // namespace

Table::Table(std::vector<std::string> header) {
  rows_.push_back(std::move(header));
}

void Table::AddRow(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

std::string Table::Render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line.append(widths[i] - row[i].size() + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

std::string ErrorCodeLabel(const absl::Status& status) {
  // Only errors built by common/status.h carry a payload; anything else
  // came from the transport (or a server without Drover error details),
  // and its gRPC code says more than a guessed Drover code would.
  if (HasDroverDetail(status)) {
    return std::string(ErrorCodeName(GetErrorInfo(status).code));
  }
  return TransportCodeLabel(status.code());
}

std::string FormatError(
    const absl::Status& status,
    const std::vector<std::pair<std::string, std::string>>& context) {
  ErrorInfo info = GetErrorInfo(status);
  std::string message = info.message.empty() ? "(no message)" : info.message;
  std::string out = "error: " + ErrorCodeLabel(status) + ": " + message + "\n";
  // ErrorDetails is an ordered map: lines come out sorted by name.
  for (const auto& [key, value] : info.details) {
    out += "  " + key + ": " + value + "\n";
  }
  for (const auto& [key, value] : context) {
    if (info.details.count(key) == 0) out += "  " + key + ": " + value + "\n";
  }
  return out;
}

std::string MessageToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = false;
  std::string out;
  auto status =
      google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    // Only invalid UTF-8 in a string field gets here; say so in JSON rather
    // than print half a document.
    return "{\"error\": \"cannot print response as JSON\"}\n";
  }
  if (out.empty() || out.back() != '\n') out += "\n";
  return out;
}

std::string FormatTimestamp(bool present,
                            const google::protobuf::Timestamp& ts) {
  if (!present) return "-";
  return absl::FormatTime("%Y-%m-%d%ET%H:%M:%SZ",
                          client::FromProtoTimestamp(ts), absl::UTCTimeZone());
}

std::string FormatTaskStatus(const v1::TaskStatus& s) {
  Table fields({"task", s.task_id()});
  fields.AddRow({"state", OrDash(s.state())});
  fields.AddRow({"queue", OrDash(s.task_queue_id())});
  fields.AddRow({"group", OrDash(s.task_group_id())});
  fields.AddRow({"scheduler", OrDash(s.scheduler_id())});
  fields.AddRow({"retries", std::to_string(s.retries_left()) + " left"});
  fields.AddRow({"deadline", FormatTimestamp(s.has_deadline(), s.deadline())});
  fields.AddRow({"expires", FormatTimestamp(s.has_expires(), s.expires())});
  if (!s.blocking_dependencies().empty()) {
    std::string blocked;
    for (const auto& id : s.blocking_dependencies()) {
      if (!blocked.empty()) blocked += ", ";
      blocked += id;
    }
    fields.AddRow({"blocked by", blocked});
  }
  std::string out = fields.Render();
  if (s.runs().empty()) return out + "\nno runs\n";
  Table runs({"RUN", "STATE", "REASON-CREATED", "REASON-RESOLVED", "WORKER",
              "SCHEDULED", "STARTED", "RESOLVED"});
  for (const auto& run : s.runs()) {
    std::string worker = run.worker_group().empty() && run.worker_id().empty()
                             ? "-"
                             : run.worker_group() + "/" + run.worker_id();
    runs.AddRow({std::to_string(run.run_id()), OrDash(run.state()),
                 OrDash(run.reason_created()), OrDash(run.reason_resolved()),
                 worker, FormatTimestamp(run.has_scheduled(), run.scheduled()),
                 FormatTimestamp(run.has_started(), run.started()),
                 FormatTimestamp(run.has_resolved(), run.resolved())});
  }
  return out + "\n" + runs.Render();
}

std::string FormatTaskStatusLine(const v1::TaskStatus& s) {
  std::string out = s.task_id() + "  " + OrDash(s.state());
  if (!s.runs().empty()) {
    const v1::RunStatus& last = s.runs(s.runs_size() - 1);
    out += "  run " + std::to_string(last.run_id()) + ": " +
           OrDash(last.reason_created());
    if (!last.reason_resolved().empty()) {
      out += " -> " + last.reason_resolved();
    }
  }
  return out + "\n";
}

std::string FormatQueueCounts(const v1::TaskQueueCounts& counts) {
  Table table({"QUEUE", "PENDING", "CLAIMED"});
  table.AddRow({counts.task_queue_id(), std::to_string(counts.pending()),
                std::to_string(counts.claimed())});
  return table.Render();
}

std::string FormatTaskQueues(const std::vector<v1::TaskQueueInfo>& queues) {
  if (queues.empty()) return "no task queues\n";
  Table table({"QUEUE", "PENDING", "CLAIMED", "LAST-ACTIVE"});
  for (const auto& q : queues) {
    table.AddRow(
        {q.task_queue_id(), std::to_string(q.pending()),
         std::to_string(q.claimed()),
         FormatTimestamp(q.has_last_date_active(), q.last_date_active())});
  }
  return table.Render();
}

}  // namespace drover::cli
