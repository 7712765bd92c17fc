// THE table of what every RPC requires: for each method of the Drover
// services, who may call it at all (CallerRequirement) and a function from
// the request (plus, for some methods, the stored task, client or role) to
// the scope expression the caller's scopes must satisfy. The API reference
// docs/api-scopes.md is generated from this table (RenderScopesReference;
// tool drover_api_scopes_doc) and a test keeps the two identical.
//
// Adding an RPC to a service means adding its rule here; the server refuses
// to start when a registered method has no rule (MethodsWithoutRules), and a
// method without a rule is denied at runtime.
//
// Everything here is immutable after first use and thread-safe.
#ifndef DROVER_QUEUE_AUTH_RPC_SCOPES_H_
#define DROVER_QUEUE_AUTH_RPC_SCOPES_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/message.h"
#include "queue/auth/scopes.h"

namespace drover::queue::auth {

// Who may call a method, checked before its scopes.
enum class CallerRequirement {
  // Anyone, including unauthenticated callers, who get the scopes of the
  // `anonymous` role (by default only queue:get-artifact:public/*).
  kAnyone,
  // Any authenticated caller (permanent or temporary credentials).
  kAuthenticated,
  // Only permanent credentials: temporary credentials cannot mint further
  // temporary credentials (which would let a stolen certificate outlive its
  // expiry).
  kPermanentClient,
};
std::string_view CallerRequirementName(CallerRequirement caller);

// The stored task fields that scopes of task-mutating RPCs name.
struct TaskScopeInfo {
  std::string scheduler_id;
  std::string task_group_id;
  std::string task_queue_id;
};

// What a scope builder may need beyond the request. Lookups are called at
// most once per request, before the RPC runs; their errors (e.g. the task's
// ResourceNotFound) are returned as they are.
struct ScopeContext {
  // The authenticated caller ("" for anonymous).
  std::string caller_client_id;
  std::function<absl::StatusOr<TaskScopeInfo>(const std::string& task_id)> task;
  // The scheduler id of a task group (ResourceNotFound for an unknown one).
  std::function<absl::StatusOr<std::string>(const std::string& task_group_id)>
      task_group_scheduler;
  // Current (unexpanded) scopes of a client or role; ResourceNotFound is
  // treated as "no scopes" (the RPC itself then reports the missing client).
  std::function<absl::StatusOr<std::vector<std::string>>(
      const std::string& client_id)>
      client_scopes;
  std::function<absl::StatusOr<std::vector<std::string>>(
      const std::string& role_id)>
      role_scopes;
};

using ScopeBuilder = absl::StatusOr<ScopeExpression> (*)(
    const google::protobuf::Message& request, const ScopeContext& context);

struct RpcScopeRule {
  // "drover.v1.Queue/CreateTask".
  std::string_view method;
  CallerRequirement caller;
  // For the docs: each line one requirement (Markdown), all of them needed.
  std::vector<std::string_view> requirements;
  // For the docs: why these scopes.
  std::string_view description;
  ScopeBuilder build;
};

// All rules, grouped by service in the order of the .proto files.
const std::vector<RpcScopeRule>& RpcScopeRules();

// The rule for "drover.v1.Queue/CreateTask" (a leading '/' as in
// grpc::ServerContext::method() is accepted), or null.
const RpcScopeRule* FindRpcScopeRule(std::string_view method);

// The scope expression `method` requires for `request`.
// Errors: InternalError for a method without a rule (deny by default), a
// request of the wrong type or a missing lookup; InputError naming the
// request field when a scope built from it is invalid (e.g. a route with a
// newline) or the priority is unknown; lookup errors as returned.
absl::StatusOr<ScopeExpression> RequiredScopes(
    std::string_view method, const google::protobuf::Message& request,
    const ScopeContext& context);

// Full names ("drover.v1.Queue/X") of the service's methods without a rule.
std::vector<std::string> MethodsWithoutRules(
    const google::protobuf::ServiceDescriptor& service);

// Task credentials handed out by ClaimWork/ReclaimTask: the task's own
// scopes plus the right to reclaim, resolve and upload artifacts for exactly
// this run, and assume:anonymous (so public artifacts stay readable).
// Normalised.
std::vector<std::string> TaskCredentialScopes(
    std::string_view task_id, int run_id,
    const std::vector<std::string>& task_scopes);

// Client id of task credentials, e.g.
// "task-client/<task_id>/<run_id>/on/<group>/<worker>/until/<unix seconds>".
std::string TaskCredentialClientId(std::string_view task_id, int run_id,
                                   std::string_view worker_group,
                                   std::string_view worker_id,
                                   int64_t until_unix_seconds);

// Issuer recorded in certificates the server mints itself.
inline constexpr std::string_view kServerIssuer = "drover-queue";

// The Markdown of docs/api-scopes.md.
std::string RenderScopesReference();

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_RPC_SCOPES_H_
