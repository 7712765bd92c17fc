#include "client/task_json.h"

#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <utility>

#include "client/time_spec.h"
#include "common/slugid.h"
#include "common/status.h"

namespace drover::client {
namespace {

using nlohmann::json;
using StringList = google::protobuf::RepeatedPtrField<std::string>;

constexpr std::array<std::string_view, 16> kTaskKeys = {
    "taskQueueId", "schedulerId", "taskGroupId", "dependencies",
    "requires",    "routes",      "priority",    "retries",
    "created",     "deadline",    "expires",     "scopes",
    "payload",     "metadata",    "tags",        "extra",
};
constexpr std::array<std::string_view, 4> kMetadataKeys = {
    "name", "description", "owner", "source"};

template <size_t N>
bool Known(const std::array<std::string_view, N>& keys, std::string_view key) {
  for (std::string_view k : keys) {
    if (k == key) return true;
  }
  return false;
}

std::string TypeName(const json& v) { return v.type_name(); }

absl::Status WrongType(const std::string& path, const json& v,
                       std::string_view expected) {
  return InputError(
      path, v.dump(),
      "must be " + std::string(expected) + ", got " + TypeName(v));
}

// Each reader leaves its target untouched when the key is absent or null.
const json* Find(const json& object, std::string_view key) {
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::Status ReadString(const json& object, std::string_view key,
                        const std::string& path, std::string* out) {
  const json* v = Find(object, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_string()) return WrongType(path, *v, "a string");
  *out = v->get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadStringList(const json& object, std::string_view key,
                            StringList* out) {
  const json* v = Find(object, key);
  if (v == nullptr) return absl::OkStatus();
  std::string path(key);
  if (!v->is_array()) return WrongType(path, *v, "an array of strings");
  for (size_t i = 0; i < v->size(); ++i) {
    const json& item = (*v)[i];
    if (!item.is_string()) {
      return WrongType(path + "[" + std::to_string(i) + "]", item, "a string");
    }
    out->Add(item.get<std::string>());
  }
  return absl::OkStatus();
}

// payload and extra travel as JSON text but must be objects.
absl::Status ReadObjectText(const json& object, std::string_view key,
                            std::string* out) {
  const json* v = Find(object, key);
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_object()) return WrongType(std::string(key), *v, "a JSON object");
  *out = v->dump();
  return absl::OkStatus();
}

// Absent or null: nullopt.
absl::StatusOr<std::optional<absl::Time>> ReadTime(const json& object,
                                                   std::string_view key,
                                                   absl::Time base) {
  const json* v = Find(object, key);
  if (v == nullptr) return std::nullopt;
  std::string path(key);
  if (!v->is_string()) {
    return WrongType(path, *v,
                     "an RFC 3339 time or a relative time like \"+1 hour\"");
  }
  DROVER_ASSIGN_OR_RETURN(absl::Time t,
                          ParseTimeSpec(v->get<std::string>(), path, base));
  return t;
}

absl::Status ReadRetries(const json& object, v1::TaskDefinition* task) {
  const json* v = Find(object, "retries");
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_number_integer()) return WrongType("retries", *v, "an integer");
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int32_t>::min();
  bool fits = v->is_number_unsigned()
                  ? v->get<uint64_t>() <= kMax
                  : v->get<int64_t>() >= kMin && v->get<int64_t>() <= kMax;
  if (!fits) return InputError("retries", v->dump(), "integer out of range");
  task->set_retries(static_cast<int32_t>(v->get<int64_t>()));
  return absl::OkStatus();
}

// Takes the task, not the submessage: asking for mutable_metadata() would
// mark it present even when the document has none.
absl::Status ReadMetadata(const json& object, v1::TaskDefinition* task) {
  const json* v = Find(object, "metadata");
  if (v == nullptr) return absl::OkStatus();
  v1::TaskMetadata* out = task->mutable_metadata();
  if (!v->is_object()) return WrongType("metadata", *v, "a JSON object");
  for (const auto& item : v->items()) {
    if (!Known(kMetadataKeys, item.key())) {
      return InputError("metadata." + item.key(), item.value().dump(),
                        "unknown metadata key; expected name, description, "
                        "owner, source");
    }
  }
  DROVER_RETURN_IF_ERROR(
      ReadString(*v, "name", "metadata.name", out->mutable_name()));
  DROVER_RETURN_IF_ERROR(ReadString(*v, "description", "metadata.description",
                                    out->mutable_description()));
  DROVER_RETURN_IF_ERROR(
      ReadString(*v, "owner", "metadata.owner", out->mutable_owner()));
  DROVER_RETURN_IF_ERROR(
      ReadString(*v, "source", "metadata.source", out->mutable_source()));
  return absl::OkStatus();
}

absl::Status ReadTags(const json& object,
                      google::protobuf::Map<std::string, std::string>* out) {
  const json* v = Find(object, "tags");
  if (v == nullptr) return absl::OkStatus();
  if (!v->is_object()) {
    return WrongType("tags", *v, "a JSON object of strings");
  }
  for (const auto& item : v->items()) {
    if (!item.value().is_string()) {
      return WrongType("tags." + item.key(), item.value(), "a string");
    }
    (*out)[item.key()] = item.value().get<std::string>();
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::TaskDefinition> TaskDefinitionFromJson(const json& doc,
                                                          absl::Time now) {
  if (!doc.is_object()) {
    return InputError(
        "task", doc.dump(),
        "a task definition must be a JSON object, got " + TypeName(doc));
  }
  for (const auto& item : doc.items()) {
    if (!Known(kTaskKeys, item.key())) {
      return InputError(item.key(), item.value().dump(),
                        "unknown key in task definition (keys are "
                        "case-sensitive camelCase, e.g. taskQueueId)");
    }
  }
  v1::TaskDefinition task;
  DROVER_RETURN_IF_ERROR(ReadString(doc, "taskQueueId", "taskQueueId",
                                    task.mutable_task_queue_id()));
  DROVER_RETURN_IF_ERROR(ReadString(doc, "schedulerId", "schedulerId",
                                    task.mutable_scheduler_id()));
  DROVER_RETURN_IF_ERROR(ReadString(doc, "taskGroupId", "taskGroupId",
                                    task.mutable_task_group_id()));
  DROVER_RETURN_IF_ERROR(
      ReadStringList(doc, "dependencies", task.mutable_dependencies()));
  DROVER_RETURN_IF_ERROR(
      ReadString(doc, "requires", "requires", task.mutable_requirement()));
  DROVER_RETURN_IF_ERROR(ReadStringList(doc, "routes", task.mutable_routes()));
  DROVER_RETURN_IF_ERROR(
      ReadString(doc, "priority", "priority", task.mutable_priority()));
  DROVER_RETURN_IF_ERROR(ReadRetries(doc, &task));

  // Relative deadline/expires count from created, so the three stay
  // consistent however long the definition takes to reach the server.
  DROVER_ASSIGN_OR_RETURN(std::optional<absl::Time> created,
                          ReadTime(doc, "created", now));
  *task.mutable_created() = ToProtoTimestamp(created.value_or(now));
  DROVER_ASSIGN_OR_RETURN(std::optional<absl::Time> deadline,
                          ReadTime(doc, "deadline", created.value_or(now)));
  if (deadline) *task.mutable_deadline() = ToProtoTimestamp(*deadline);
  DROVER_ASSIGN_OR_RETURN(std::optional<absl::Time> expires,
                          ReadTime(doc, "expires", created.value_or(now)));
  if (expires) *task.mutable_expires() = ToProtoTimestamp(*expires);

  DROVER_RETURN_IF_ERROR(ReadStringList(doc, "scopes", task.mutable_scopes()));
  DROVER_RETURN_IF_ERROR(
      ReadObjectText(doc, "payload", task.mutable_payload()));
  DROVER_RETURN_IF_ERROR(ReadMetadata(doc, &task));
  DROVER_RETURN_IF_ERROR(ReadTags(doc, task.mutable_tags()));
  DROVER_RETURN_IF_ERROR(ReadObjectText(doc, "extra", task.mutable_extra()));
  return task;
}

absl::StatusOr<v1::TaskDefinition> ParseTaskDefinition(std::string_view text,
                                                       absl::Time now) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // nlohmann's message carries the line and column; keep it.
    return InputError("task", std::string(text.substr(0, 64)),
                      std::string("not valid JSON: ") + e.what());
  }
  return TaskDefinitionFromJson(doc, now);
}

json TaskDefinitionToJson(const v1::TaskDefinition& task) {
  json out = json::object();
  auto put_string = [&](const char* key, const std::string& value) {
    if (!value.empty()) out[key] = value;
  };
  auto put_list = [&](const char* key, const StringList& values) {
    if (!values.empty())
      out[key] = std::vector<std::string>(values.begin(), values.end());
  };
  auto put_object = [&](const char* key, const std::string& text) {
    if (text.empty()) return;
    json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
    // The server only stores objects; anything else is shown verbatim
    // rather than lost.
    out[key] = parsed.is_discarded() ? json(text) : parsed;
  };
  put_string("taskQueueId", task.task_queue_id());
  put_string("schedulerId", task.scheduler_id());
  put_string("taskGroupId", task.task_group_id());
  put_list("dependencies", task.dependencies());
  put_string("requires", task.requirement());
  put_list("routes", task.routes());
  put_string("priority", task.priority());
  if (task.has_retries()) out["retries"] = task.retries();
  if (task.has_created()) {
    out["created"] = FormatRfc3339(FromProtoTimestamp(task.created()));
  }
  if (task.has_deadline()) {
    out["deadline"] = FormatRfc3339(FromProtoTimestamp(task.deadline()));
  }
  if (task.has_expires()) {
    out["expires"] = FormatRfc3339(FromProtoTimestamp(task.expires()));
  }
  put_list("scopes", task.scopes());
  put_object("payload", task.payload());
  if (task.has_metadata()) {
    json metadata = json::object();
    metadata["name"] = task.metadata().name();
    metadata["description"] = task.metadata().description();
    metadata["owner"] = task.metadata().owner();
    metadata["source"] = task.metadata().source();
    out["metadata"] = std::move(metadata);
  }
  if (!task.tags().empty()) {
    json tags = json::object();
    for (const auto& [key, value] : task.tags()) tags[key] = value;
    out["tags"] = std::move(tags);
  }
  put_object("extra", task.extra());
  return out;
}

std::string NewTaskId() { return NewSlugId(); }

}  // namespace drover::client
