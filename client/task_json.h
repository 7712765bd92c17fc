// The task JSON form: how people and CI scripts write task definitions
// (docs/cli.md, "Task JSON"), and its conversion to and from
// drover.v1.TaskDefinition.
//
//   {
//     "taskQueueId": "proj/linux",        "schedulerId": "ci",
//     "taskGroupId": "<slug id>",         "dependencies": ["<slug id>"],
//     "requires": "all-completed",        "routes": ["index.x"],
//     "priority": "high",                 "retries": 3,
//     "created": "2025-03-01T12:00:00Z",  "deadline": "+2 hours",
//     "expires": "+30 days",              "scopes": ["secrets:get:x"],
//     "payload": {...},                   "tags": {"kind": "test"},
//     "metadata": {"name": "...", "description": "...",
//                  "owner": "...", "source": "..."},
//     "extra": {...}
//   }
//
// Times are RFC 3339 or relative specs (client/time_spec.h). `created`
// defaults to now and a relative `created` is relative to now; relative
// `deadline` and `expires` are relative to `created`. Keys are exact; an
// unknown key is an error (typos should not silently drop a field). A null
// value means the key is absent.
//
// This conversion checks shapes and types only; the server remains the one
// authority on values (priority names, id formats, limits) and answers with
// the same kind of field-naming error.
#ifndef DROVER_CLIENT_TASK_JSON_H_
#define DROVER_CLIENT_TASK_JSON_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "drover/v1/queue.pb.h"
#include "nlohmann/json.hpp"

namespace drover::client {

// Converts a parsed task JSON document. `now` anchors `created`. Pure and
// thread-safe. Errors: InputError whose "field" is the JSON path of the
// offending value ("metadata.name", "dependencies[2]", "tags.os") and whose
// "value" is that value.
absl::StatusOr<v1::TaskDefinition> TaskDefinitionFromJson(
    const nlohmann::json& doc, absl::Time now);

// Parses JSON text, then converts it. Errors: InputError on field "task"
// with the line and column for text that is not JSON; otherwise as above.
absl::StatusOr<v1::TaskDefinition> ParseTaskDefinition(std::string_view text,
                                                       absl::Time now);

// The inverse: a definition in task JSON form, times as RFC 3339 and
// payload/extra as objects, so `drover task get` output can be edited and
// fed back to `drover task create`. Empty fields are left out.
nlohmann::json TaskDefinitionToJson(const v1::TaskDefinition& task);

// A fresh task id (a slug id, common/slugid.h). Thread-safe.
std::string NewTaskId();

}  // namespace drover::client

#endif  // DROVER_CLIENT_TASK_JSON_H_
