#include "queue/queue_service/task_validation.h"

#include <string>
#include <unordered_set>
#include <utility>

#include "common/slugid.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "queue/queue_service/conversions.h"

namespace drover::queue::queue_service {
namespace {

// JSON documents nested deeper than this are refused before parsing: the
// serialiser recurses, and a 256 KiB run of '[' would exhaust a stack.
constexpr int kMaxJsonDepth = 64;

bool IsIdentifierChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool IsPrintableAscii(std::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string Indexed(std::string_view field, size_t index) {
  return std::string(field) + "[" + std::to_string(index) + "]";
}

// Maximum bracket depth of JSON text, ignoring brackets inside strings.
int JsonDepth(std::string_view text) {
  int depth = 0;
  int max_depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// Parses a JSON object document and returns its canonical text (keys
// sorted, no whitespace). `bad_code` is the error for anything that is not
// a JSON object.
absl::StatusOr<std::string> CanonicalJsonObject(std::string_view field,
                                                std::string_view text,
                                                size_t max_bytes,
                                                ErrorCode bad_code) {
  ErrorDetails details = {{"field", std::string(field)},
                          {"value", std::string(text)}};
  if (text.size() > max_bytes) {
    details["limit"] = std::to_string(max_bytes);
    details["size"] = std::to_string(text.size());
    return MakeError(ErrorCode::kInputTooLarge,
                     std::string(field) + " is " + std::to_string(text.size()) +
                         " bytes, above the limit of " +
                         std::to_string(max_bytes),
                     std::move(details));
  }
  if (JsonDepth(text) > kMaxJsonDepth) {
    return MakeError(bad_code,
                     std::string(field) + " is nested deeper than " +
                         std::to_string(kMaxJsonDepth) + " levels",
                     std::move(details));
  }
  nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(),
                                             /*cb=*/nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return MakeError(bad_code, std::string(field) + " is not valid JSON",
                     std::move(details));
  }
  if (!doc.is_object()) {
    return MakeError(
        bad_code,
        std::string(field) + " must be a JSON object, not " + doc.type_name(),
        std::move(details));
  }
  try {
    return doc.dump();
  } catch (const nlohmann::json::exception&) {
    return MakeError(bad_code, std::string(field) + " is not valid UTF-8",
                     std::move(details));
  }
}

absl::Time TruncateToMicros(absl::Time t) {
  return absl::FromUnixMicros(absl::ToUnixMicros(t));
}

absl::Status ValidateLength(std::string_view field, std::string_view value,
                            size_t max) {
  if (value.empty()) {
    return InputError(field, value, std::string(field) + " is required");
  }
  if (value.size() > max) {
    return InputError(field, value,
                      std::string(field) + " is longer than " +
                          std::to_string(max) + " bytes");
  }
  return absl::OkStatus();
}

// "someone@example.com": one '@' with something printable on each side.
absl::Status ValidateOwner(std::string_view field, std::string_view value) {
  DROVER_RETURN_IF_ERROR(ValidateLength(field, value, kMaxMetadataOwnerLength));
  size_t at = value.find('@');
  bool ok = at != std::string_view::npos && at > 0 && at + 1 < value.size() &&
            value.find('@', at + 1) == std::string_view::npos &&
            IsPrintableAscii(value) &&
            value.find(' ') == std::string_view::npos;
  if (!ok) {
    return InputError(field, value,
                      std::string(field) +
                          " must be an email address such as "
                          "\"someone@example.com\"");
  }
  return absl::OkStatus();
}

// An absolute http(s) URL without whitespace.
absl::Status ValidateSource(std::string_view field, std::string_view value) {
  DROVER_RETURN_IF_ERROR(
      ValidateLength(field, value, kMaxMetadataSourceLength));
  std::string_view rest;
  if (value.substr(0, 8) == "https://") {
    rest = value.substr(8);
  } else if (value.substr(0, 7) == "http://") {
    rest = value.substr(7);
  }
  bool ok = !rest.empty() && rest.front() != '/' && IsPrintableAscii(value) &&
            value.find(' ') == std::string_view::npos;
  if (!ok) {
    return InputError(
        field, value,
        std::string(field) + " must be an http:// or https:// URL");
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Time> RequiredTime(bool present,
                                        const google::protobuf::Timestamp& ts,
                                        std::string_view field) {
  if (!present) {
    return InputError(field, "", std::string(field) + " is required");
  }
  DROVER_ASSIGN_OR_RETURN(absl::Time t, FromProtoTime(ts, field));
  return TruncateToMicros(t);
}

std::string DurationText(absl::Duration d) { return absl::FormatDuration(d); }

}  // namespace

absl::Status ValidateSlugId(std::string_view field, std::string_view value) {
  if (value.empty()) {
    return InputError(field, value, std::string(field) + " is required");
  }
  if (!IsValidSlugId(value)) {
    return InputError(
        field, value,
        std::string(field) + " must be a 22-character URL-safe base64 slug id");
  }
  return absl::OkStatus();
}

absl::Status ValidateIdentifier(std::string_view field,
                                std::string_view value) {
  bool ok = !value.empty() && value.size() <= kMaxIdentifierLength;
  for (char c : value) ok = ok && IsIdentifierChar(c);
  if (!ok) {
    return InputError(field, value,
                      std::string(field) + " must match [a-zA-Z0-9_-]{1,38}");
  }
  return absl::OkStatus();
}

absl::Status ValidateTaskQueueId(std::string_view field,
                                 std::string_view value) {
  size_t slash = value.find('/');
  bool ok = slash != std::string_view::npos;
  if (ok) {
    std::string_view provisioner = value.substr(0, slash);
    std::string_view worker_type = value.substr(slash + 1);
    ok = ValidateIdentifier(field, provisioner).ok() &&
         ValidateIdentifier(field, worker_type).ok();
  }
  if (!ok) {
    return InputError(field, value,
                      std::string(field) +
                          " must be \"<provisioner>/<worker-type>\", each "
                          "part matching [a-zA-Z0-9_-]{1,38}");
  }
  return absl::OkStatus();
}

absl::StatusOr<store::Task> ValidateCreateTask(
    const v1::CreateTaskRequest& request, const ValidationLimits& limits,
    absl::Time now) {
  store::Task task;
  DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request.task_id()));
  task.task_id = request.task_id();
  if (!request.has_task()) {
    return InputError("task", "", "task (the definition) is required");
  }
  const v1::TaskDefinition& def = request.task();

  DROVER_RETURN_IF_ERROR(
      ValidateTaskQueueId("task.task_queue_id", def.task_queue_id()));
  task.task_queue_id = def.task_queue_id();

  if (def.scheduler_id().empty()) {
    task.scheduler_id = std::string(kDefaultSchedulerId);
  } else {
    DROVER_RETURN_IF_ERROR(
        ValidateIdentifier("task.scheduler_id", def.scheduler_id()));
    task.scheduler_id = def.scheduler_id();
  }

  if (def.task_group_id().empty()) {
    task.task_group_id = task.task_id;
  } else {
    DROVER_RETURN_IF_ERROR(
        ValidateSlugId("task.task_group_id", def.task_group_id()));
    task.task_group_id = def.task_group_id();
  }

  if (static_cast<size_t>(def.dependencies_size()) > limits.max_dependencies) {
    return InputError(
        "task.dependencies", std::to_string(def.dependencies_size()),
        "a task may have at most " + std::to_string(limits.max_dependencies) +
            " dependencies");
  }
  std::unordered_set<std::string_view> seen;
  for (int i = 0; i < def.dependencies_size(); ++i) {
    const std::string& dep = def.dependencies(i);
    std::string field = Indexed("task.dependencies", i);
    DROVER_RETURN_IF_ERROR(ValidateSlugId(field, dep));
    if (dep == task.task_id) {
      return InputError(field, dep, "a task cannot depend on itself");
    }
    if (!seen.insert(dep).second) {
      return InputError(field, dep, "dependency " + dep + " is listed twice");
    }
    task.dependencies.push_back(dep);
  }

  if (!def.requirement().empty()) {
    auto rule = store::ParseRequires(def.requirement());
    if (!rule) {
      return InputError("task.requirement", def.requirement(),
                        "task.requirement must be \"all-completed\" or "
                        "\"all-resolved\"");
    }
    task.requires_rule = *rule;
  }

  if (static_cast<size_t>(def.routes_size()) > limits.max_routes) {
    return InputError("task.routes", std::to_string(def.routes_size()),
                      "a task may have at most " +
                          std::to_string(limits.max_routes) + " routes");
  }
  for (int i = 0; i < def.routes_size(); ++i) {
    const std::string& route = def.routes(i);
    std::string field = Indexed("task.routes", i);
    DROVER_RETURN_IF_ERROR(ValidateLength(field, route, kMaxRouteLength));
    if (!IsPrintableAscii(route)) {
      return InputError(field, route, "routes must be printable ASCII");
    }
    task.routes.push_back(route);
  }

  if (!def.priority().empty()) {
    auto priority = store::ParsePriority(def.priority());
    if (!priority) {
      return InputError("task.priority", def.priority(),
                        "task.priority must be one of highest, very-high, "
                        "high, medium, low, very-low, lowest");
    }
    task.priority = *priority;
  }

  task.retries = def.has_retries() ? def.retries() : kDefaultRetries;
  if (task.retries < 0 || task.retries > kMaxRetries) {
    return InputError(
        "task.retries", std::to_string(task.retries),
        "task.retries must be within 0.." + std::to_string(kMaxRetries));
  }

  DROVER_ASSIGN_OR_RETURN(
      task.created,
      RequiredTime(def.has_created(), def.created(), "task.created"));
  if (absl::AbsDuration(task.created - now) > limits.max_created_skew) {
    return InputError("task.created", Rfc3339(task.created),
                      "task.created must be within " +
                          DurationText(limits.max_created_skew) +
                          " of the server's time " + Rfc3339(now));
  }
  DROVER_ASSIGN_OR_RETURN(
      task.deadline,
      RequiredTime(def.has_deadline(), def.deadline(), "task.deadline"));
  if (task.deadline <= task.created) {
    return InputError("task.deadline", Rfc3339(task.deadline),
                      "task.deadline must be after task.created (" +
                          Rfc3339(task.created) + ")");
  }
  if (task.deadline - task.created > limits.max_deadline) {
    return InputError(
        "task.deadline", Rfc3339(task.deadline),
        "task.deadline may be at most " + DurationText(limits.max_deadline) +
            " after task.created (" + Rfc3339(task.created) + ")");
  }
  if (def.has_expires()) {
    DROVER_ASSIGN_OR_RETURN(task.expires,
                            RequiredTime(true, def.expires(), "task.expires"));
    if (task.expires < task.deadline) {
      return InputError("task.expires", Rfc3339(task.expires),
                        "task.expires must not be before task.deadline (" +
                            Rfc3339(task.deadline) + ")");
    }
  } else {
    task.expires = task.deadline + absl::Hours(24 * 365);
  }

  if (static_cast<size_t>(def.scopes_size()) > limits.max_scopes) {
    return InputError("task.scopes", std::to_string(def.scopes_size()),
                      "a task may have at most " +
                          std::to_string(limits.max_scopes) + " scopes");
  }
  for (int i = 0; i < def.scopes_size(); ++i) {
    const std::string& scope = def.scopes(i);
    std::string field = Indexed("task.scopes", i);
    if (scope.size() > kMaxScopeLength) {
      return InputError(field, scope,
                        "scopes may be at most " +
                            std::to_string(kMaxScopeLength) + " bytes");
    }
    if (!IsPrintableAscii(scope)) {
      return InputError(field, scope, "scopes must be printable ASCII");
    }
    task.scopes.push_back(scope);
  }

  if (def.payload().empty()) {
    return MakeError(ErrorCode::kMalformedPayload,
                     "task.payload is required (a JSON object; {} for none)",
                     {{"field", "task.payload"}, {"value", ""}});
  }
  DROVER_ASSIGN_OR_RETURN(task.payload,
                          CanonicalJsonObject("task.payload", def.payload(),
                                              limits.max_payload_bytes,
                                              ErrorCode::kMalformedPayload));

  if (!def.has_metadata()) {
    return InputError("task.metadata", "",
                      "task.metadata (name, description, owner, source) is "
                      "required");
  }
  const v1::TaskMetadata& md = def.metadata();
  DROVER_RETURN_IF_ERROR(
      ValidateLength("task.metadata.name", md.name(), kMaxMetadataNameLength));
  DROVER_RETURN_IF_ERROR(ValidateLength("task.metadata.description",
                                        md.description(),
                                        kMaxMetadataDescriptionLength));
  DROVER_RETURN_IF_ERROR(ValidateOwner("task.metadata.owner", md.owner()));
  DROVER_RETURN_IF_ERROR(ValidateSource("task.metadata.source", md.source()));
  task.metadata_name = md.name();
  task.metadata_description = md.description();
  task.metadata_owner = md.owner();
  task.metadata_source = md.source();

  if (static_cast<size_t>(def.tags_size()) > limits.max_tags) {
    return InputError(
        "task.tags", std::to_string(def.tags_size()),
        "a task may have at most " + std::to_string(limits.max_tags) + " tags");
  }
  for (const auto& [key, value] : def.tags()) {
    std::string field = "task.tags[" + key + "]";
    DROVER_RETURN_IF_ERROR(ValidateLength(field, key, kMaxTagKeyLength));
    if (value.size() > kMaxTagValueLength) {
      return InputError(field, value,
                        "tag values may be at most " +
                            std::to_string(kMaxTagValueLength) + " bytes");
    }
    task.tags[key] = value;
  }

  if (def.extra().empty()) {
    task.extra = "{}";
  } else {
    DROVER_ASSIGN_OR_RETURN(
        task.extra,
        CanonicalJsonObject("task.extra", def.extra(), limits.max_payload_bytes,
                            ErrorCode::kInputError));
  }
  return task;
}

absl::Status ValidateClaimWork(const v1::ClaimWorkRequest& request) {
  DROVER_RETURN_IF_ERROR(
      ValidateTaskQueueId("task_queue_id", request.task_queue_id()));
  DROVER_RETURN_IF_ERROR(
      ValidateIdentifier("worker_group", request.worker_group()));
  DROVER_RETURN_IF_ERROR(ValidateIdentifier("worker_id", request.worker_id()));
  if (request.max_tasks() < 1 || request.max_tasks() > kMaxClaimTasks) {
    return InputError(
        "max_tasks", std::to_string(request.max_tasks()),
        "max_tasks must be within 1.." + std::to_string(kMaxClaimTasks));
  }
  return absl::OkStatus();
}

absl::Status ValidateRunRequest(const v1::RunRequest& request,
                                bool needs_worker) {
  DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request.task_id()));
  if (request.run_id() < 0) {
    return InputError("run_id", std::to_string(request.run_id()),
                      "run_id must not be negative");
  }
  if (needs_worker) {
    DROVER_RETURN_IF_ERROR(
        ValidateIdentifier("worker_group", request.worker_group()));
    DROVER_RETURN_IF_ERROR(
        ValidateIdentifier("worker_id", request.worker_id()));
  }
  return absl::OkStatus();
}

absl::Status ValidateReportException(
    const v1::ReportExceptionRequest& request) {
  DROVER_RETURN_IF_ERROR(ValidateSlugId("task_id", request.task_id()));
  if (request.run_id() < 0) {
    return InputError("run_id", std::to_string(request.run_id()),
                      "run_id must not be negative");
  }
  if (!store::IsWorkerExceptionReason(request.reason())) {
    return InputError("reason", request.reason(),
                      "reason must be one of worker-shutdown, "
                      "malformed-payload, resource-unavailable, "
                      "internal-error, intermittent-task");
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ValidateListTaskQueues(
    const v1::ListTaskQueuesRequest& request) {
  if (request.limit() == 0) return kDefaultListLimit;
  if (request.limit() < 1 || request.limit() > kMaxListLimit) {
    return InputError(
        "limit", std::to_string(request.limit()),
        "limit must be within 1.." + std::to_string(kMaxListLimit));
  }
  return request.limit();
}

}  // namespace drover::queue::queue_service
