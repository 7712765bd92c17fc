// Unit tests of CreateTask validation: defaults, normalisation and one case
// per malformed field, each checking the exact error code and field.
#include "queue/queue_service/task_validation.h"

#include <functional>
#include <string>
#include <vector>

#include "common/slugid.h"
#include "common/status.h"
#include "gtest/gtest.h"
#include "queue/queue_service/conversions.h"

namespace drover::queue::queue_service {
namespace {

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01.

v1::CreateTaskRequest ValidRequest() {
  v1::CreateTaskRequest request;
  request.set_task_id(NewSlugId());
  v1::TaskDefinition* task = request.mutable_task();
  task->set_task_queue_id("proj-ci/linux_x64");
  *task->mutable_created() = ToProtoTime(kNow);
  *task->mutable_deadline() = ToProtoTime(kNow + absl::Hours(1));
  task->set_payload(R"({"command": ["echo", "hi"], "maxRunTime": 60})");
  task->mutable_metadata()->set_name("build");
  task->mutable_metadata()->set_description("compiles the thing");
  task->mutable_metadata()->set_owner("dev@example.com");
  task->mutable_metadata()->set_source("https://example.com/ci/1");
  return request;
}

TEST(ValidateCreateTaskTest, AppliesDefaults) {
  v1::CreateTaskRequest request = ValidRequest();
  auto task = ValidateCreateTask(request, ValidationLimits{}, kNow);
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->task_id, request.task_id());
  EXPECT_EQ(task->task_group_id, request.task_id());
  EXPECT_EQ(task->scheduler_id, "-");
  EXPECT_EQ(task->priority, store::Priority::kLowest);
  EXPECT_EQ(task->requires_rule, store::Requires::kAllCompleted);
  EXPECT_EQ(task->retries, 5);
  EXPECT_EQ(task->expires, kNow + absl::Hours(1) + absl::Hours(24 * 365));
  EXPECT_EQ(task->extra, "{}");
  EXPECT_TRUE(task->dependencies.empty());
}

TEST(ValidateCreateTaskTest, KeepsExplicitValues) {
  v1::CreateTaskRequest request = ValidRequest();
  v1::TaskDefinition* def = request.mutable_task();
  std::string group = NewSlugId();
  std::string dep = NewSlugId();
  def->set_task_group_id(group);
  def->set_scheduler_id("taskcluster-github");
  def->set_priority("very-high");
  def->set_requirement("all-resolved");
  def->set_retries(0);
  def->add_dependencies(dep);
  def->add_routes("index.project.latest");
  def->add_scopes("queue:create-task:*");
  (*def->mutable_tags())["kind"] = "build";
  def->set_extra(R"({"b": 1, "a": [true, null]})");
  *def->mutable_expires() = ToProtoTime(kNow + absl::Hours(1));
  auto task = ValidateCreateTask(request, ValidationLimits{}, kNow);
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->task_group_id, group);
  EXPECT_EQ(task->scheduler_id, "taskcluster-github");
  EXPECT_EQ(task->priority, store::Priority::kVeryHigh);
  EXPECT_EQ(task->requires_rule, store::Requires::kAllResolved);
  EXPECT_EQ(task->retries, 0);
  EXPECT_EQ(task->dependencies, std::vector<std::string>{dep});
  EXPECT_EQ(task->routes, std::vector<std::string>{"index.project.latest"});
  EXPECT_EQ(task->scopes, std::vector<std::string>{"queue:create-task:*"});
  EXPECT_EQ(task->tags.at("kind"), "build");
  // Equal at the boundary: expires may equal the deadline.
  EXPECT_EQ(task->expires, task->deadline);
  // Canonical JSON: keys sorted, no whitespace.
  EXPECT_EQ(task->extra, R"({"a":[true,null],"b":1})");
  EXPECT_EQ(task->payload, R"({"command":["echo","hi"],"maxRunTime":60})");
}

TEST(ValidateCreateTaskTest, TruncatesTimestampsToMicroseconds) {
  v1::CreateTaskRequest request = ValidRequest();
  request.mutable_task()->mutable_created()->set_nanos(123456789);
  auto task = ValidateCreateTask(request, ValidationLimits{}, kNow);
  ASSERT_TRUE(task.ok()) << task.status();
  EXPECT_EQ(task->created, kNow + absl::Microseconds(123456));
}

TEST(ValidateCreateTaskTest, AcceptsLimitsExactly) {
  ValidationLimits limits;
  limits.max_payload_bytes = 64;
  v1::CreateTaskRequest request = ValidRequest();
  v1::TaskDefinition* def = request.mutable_task();
  def->set_payload("{\"k\":\"" + std::string(64 - 8, 'x') + "\"}");
  ASSERT_EQ(def->payload().size(), 64u);
  def->set_retries(49);
  *def->mutable_deadline() = ToProtoTime(kNow + limits.max_deadline);
  *def->mutable_created() = ToProtoTime(kNow - absl::Minutes(15));
  *def->mutable_deadline() =
      ToProtoTime(kNow - absl::Minutes(15) + limits.max_deadline);
  for (int i = 0; i < 64; ++i) def->add_routes(std::string(249, 'r'));
  auto task = ValidateCreateTask(request, limits, kNow);
  EXPECT_TRUE(task.ok()) << task.status();
}

struct BadCase {
  std::string name;
  std::function<void(v1::CreateTaskRequest&)> mutate;
  ErrorCode code;
  std::string field;
};

std::vector<BadCase> BadCases() {
  auto def = [](v1::CreateTaskRequest& r) { return r.mutable_task(); };
  auto md = [](v1::CreateTaskRequest& r) {
    return r.mutable_task()->mutable_metadata();
  };
  std::vector<BadCase> cases = {
      {"missing task id", [](auto& r) { r.clear_task_id(); },
       ErrorCode::kInputError, "task_id"},
      {"task id too short", [](auto& r) { r.set_task_id("abc"); },
       ErrorCode::kInputError, "task_id"},
      {"task id bad characters",
       [](auto& r) { r.set_task_id("aaaaaaaaaaaaaaaaaaaa!A"); },
       ErrorCode::kInputError, "task_id"},
      {"missing definition", [](auto& r) { r.clear_task(); },
       ErrorCode::kInputError, "task"},
      {"missing task queue", [=](auto& r) { def(r)->clear_task_queue_id(); },
       ErrorCode::kInputError, "task.task_queue_id"},
      {"task queue without slash",
       [=](auto& r) { def(r)->set_task_queue_id("linux"); },
       ErrorCode::kInputError, "task.task_queue_id"},
      {"task queue with three parts",
       [=](auto& r) { def(r)->set_task_queue_id("a/b/c"); },
       ErrorCode::kInputError, "task.task_queue_id"},
      {"task queue part too long",
       [=](auto& r) { def(r)->set_task_queue_id(std::string(39, 'p') + "/w"); },
       ErrorCode::kInputError, "task.task_queue_id"},
      {"task queue empty worker type",
       [=](auto& r) { def(r)->set_task_queue_id("prov/"); },
       ErrorCode::kInputError, "task.task_queue_id"},
      {"scheduler id with space",
       [=](auto& r) { def(r)->set_scheduler_id("my scheduler"); },
       ErrorCode::kInputError, "task.scheduler_id"},
      {"task group not a slug",
       [=](auto& r) { def(r)->set_task_group_id("group-1"); },
       ErrorCode::kInputError, "task.task_group_id"},
      {"dependency not a slug",
       [=](auto& r) { def(r)->add_dependencies("nope"); },
       ErrorCode::kInputError, "task.dependencies[0]"},
      {"self dependency",
       [=](auto& r) { def(r)->add_dependencies(r.task_id()); },
       ErrorCode::kInputError, "task.dependencies[0]"},
      {"duplicate dependency",
       [=](auto& r) {
         std::string dep = NewSlugId();
         def(r)->add_dependencies(dep);
         def(r)->add_dependencies(dep);
       },
       ErrorCode::kInputError, "task.dependencies[1]"},
      {"too many dependencies",
       [=](auto& r) {
         for (int i = 0; i < 11; ++i) def(r)->add_dependencies(NewSlugId());
       },
       ErrorCode::kInputError, "task.dependencies"},
      {"unknown requirement",
       [=](auto& r) { def(r)->set_requirement("all-good"); },
       ErrorCode::kInputError, "task.requirement"},
      {"too many routes",
       [=](auto& r) {
         for (int i = 0; i < 65; ++i) def(r)->add_routes("route");
       },
       ErrorCode::kInputError, "task.routes"},
      {"route too long",
       [=](auto& r) {
         def(r)->add_routes("ok");
         def(r)->add_routes(std::string(250, 'r'));
       },
       ErrorCode::kInputError, "task.routes[1]"},
      {"empty route", [=](auto& r) { def(r)->add_routes(""); },
       ErrorCode::kInputError, "task.routes[0]"},
      {"route with newline", [=](auto& r) { def(r)->add_routes("a\nb"); },
       ErrorCode::kInputError, "task.routes[0]"},
      {"unknown priority", [=](auto& r) { def(r)->set_priority("urgent"); },
       ErrorCode::kInputError, "task.priority"},
      {"priority wrong case", [=](auto& r) { def(r)->set_priority("High"); },
       ErrorCode::kInputError, "task.priority"},
      {"negative retries", [=](auto& r) { def(r)->set_retries(-1); },
       ErrorCode::kInputError, "task.retries"},
      {"retries above 49", [=](auto& r) { def(r)->set_retries(50); },
       ErrorCode::kInputError, "task.retries"},
      {"missing created", [=](auto& r) { def(r)->clear_created(); },
       ErrorCode::kInputError, "task.created"},
      {"created too far in the past",
       [=](auto& r) {
         *def(r)->mutable_created() = ToProtoTime(kNow - absl::Minutes(16));
       },
       ErrorCode::kInputError, "task.created"},
      {"created in the future",
       [=](auto& r) {
         *def(r)->mutable_created() = ToProtoTime(kNow + absl::Minutes(16));
         *def(r)->mutable_deadline() = ToProtoTime(kNow + absl::Hours(2));
       },
       ErrorCode::kInputError, "task.created"},
      {"created nanos out of range",
       [=](auto& r) { def(r)->mutable_created()->set_nanos(1000000000); },
       ErrorCode::kInputError, "task.created"},
      {"missing deadline", [=](auto& r) { def(r)->clear_deadline(); },
       ErrorCode::kInputError, "task.deadline"},
      {"deadline before created",
       [=](auto& r) {
         *def(r)->mutable_deadline() = ToProtoTime(kNow - absl::Minutes(1));
       },
       ErrorCode::kInputError, "task.deadline"},
      {"deadline equal to created",
       [=](auto& r) { *def(r)->mutable_deadline() = ToProtoTime(kNow); },
       ErrorCode::kInputError, "task.deadline"},
      {"deadline beyond five days",
       [=](auto& r) {
         *def(r)->mutable_deadline() =
             ToProtoTime(kNow + absl::Hours(24 * 5) + absl::Seconds(1));
       },
       ErrorCode::kInputError, "task.deadline"},
      {"expires before deadline",
       [=](auto& r) {
         *def(r)->mutable_expires() = ToProtoTime(kNow + absl::Minutes(59));
       },
       ErrorCode::kInputError, "task.expires"},
      {"expires out of range",
       [=](auto& r) { def(r)->mutable_expires()->set_seconds(253402300800); },
       ErrorCode::kInputError, "task.expires"},
      {"scope with control character",
       [=](auto& r) {
         def(r)->add_scopes("queue:a");
         def(r)->add_scopes("queue:\tb");
       },
       ErrorCode::kInputError, "task.scopes[1]"},
      {"scope with non-ASCII",
       [=](auto& r) { def(r)->add_scopes("queue:\xc3\xa9"); },
       ErrorCode::kInputError, "task.scopes[0]"},
      {"missing payload", [=](auto& r) { def(r)->clear_payload(); },
       ErrorCode::kMalformedPayload, "task.payload"},
      {"payload not JSON",
       [=](auto& r) { def(r)->set_payload("{command: echo}"); },
       ErrorCode::kMalformedPayload, "task.payload"},
      {"payload an array", [=](auto& r) { def(r)->set_payload("[1, 2]"); },
       ErrorCode::kMalformedPayload, "task.payload"},
      {"payload a string", [=](auto& r) { def(r)->set_payload("\"hello\""); },
       ErrorCode::kMalformedPayload, "task.payload"},
      {"payload trailing garbage",
       [=](auto& r) { def(r)->set_payload("{} {}"); },
       ErrorCode::kMalformedPayload, "task.payload"},
      {"payload nested too deep",
       [=](auto& r) {
         def(r)->set_payload("{\"a\":" + std::string(100, '[') +
                             std::string(100, ']') + "}");
       },
       ErrorCode::kMalformedPayload, "task.payload"},
      {"payload too large",
       [=](auto& r) {
         def(r)->set_payload("{\"k\":\"" + std::string(300 * 1024, 'x') +
                             "\"}");
       },
       ErrorCode::kInputTooLarge, "task.payload"},
      {"missing metadata", [=](auto& r) { def(r)->clear_metadata(); },
       ErrorCode::kInputError, "task.metadata"},
      {"missing metadata name", [=](auto& r) { md(r)->clear_name(); },
       ErrorCode::kInputError, "task.metadata.name"},
      {"metadata name too long",
       [=](auto& r) { md(r)->set_name(std::string(256, 'n')); },
       ErrorCode::kInputError, "task.metadata.name"},
      {"missing metadata description",
       [=](auto& r) { md(r)->clear_description(); }, ErrorCode::kInputError,
       "task.metadata.description"},
      {"missing metadata owner", [=](auto& r) { md(r)->clear_owner(); },
       ErrorCode::kInputError, "task.metadata.owner"},
      {"owner not an email", [=](auto& r) { md(r)->set_owner("just-a-name"); },
       ErrorCode::kInputError, "task.metadata.owner"},
      {"owner with two at signs", [=](auto& r) { md(r)->set_owner("a@b@c"); },
       ErrorCode::kInputError, "task.metadata.owner"},
      {"missing metadata source", [=](auto& r) { md(r)->clear_source(); },
       ErrorCode::kInputError, "task.metadata.source"},
      {"source not a URL",
       [=](auto& r) { md(r)->set_source("ftp://example.com/x"); },
       ErrorCode::kInputError, "task.metadata.source"},
      {"source with space",
       [=](auto& r) { md(r)->set_source("https://example.com/a b"); },
       ErrorCode::kInputError, "task.metadata.source"},
      {"too many tags",
       [=](auto& r) {
         for (int i = 0; i < 65; ++i) {
           (*def(r)->mutable_tags())["t" + std::to_string(i)] = "v";
         }
       },
       ErrorCode::kInputError, "task.tags"},
      {"empty tag key", [=](auto& r) { (*def(r)->mutable_tags())[""] = "v"; },
       ErrorCode::kInputError, "task.tags[]"},
      {"tag value too long",
       [=](auto& r) {
         (*def(r)->mutable_tags())["k"] = std::string(4097, 'v');
       },
       ErrorCode::kInputError, "task.tags[k]"},
      {"extra not an object", [=](auto& r) { def(r)->set_extra("[]"); },
       ErrorCode::kInputError, "task.extra"},
      {"extra not JSON", [=](auto& r) { def(r)->set_extra("{"); },
       ErrorCode::kInputError, "task.extra"},
      {"extra too large",
       [=](auto& r) {
         def(r)->set_extra("{\"k\":\"" + std::string(300 * 1024, 'x') + "\"}");
       },
       ErrorCode::kInputTooLarge, "task.extra"},
  };
  return cases;
}

TEST(ValidateCreateTaskTest, RejectsEachMalformedRequestNamingTheField) {
  ValidationLimits limits;
  limits.max_dependencies = 10;  // Small, so the test stays fast.
  auto cases = BadCases();
  ASSERT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    v1::CreateTaskRequest request = ValidRequest();
    ASSERT_TRUE(ValidateCreateTask(request, limits, kNow).ok());
    c.mutate(request);
    auto result = ValidateCreateTask(request, limits, kNow);
    ASSERT_FALSE(result.ok());
    ErrorInfo info = GetErrorInfo(result.status());
    EXPECT_EQ(ErrorCodeName(info.code), ErrorCodeName(c.code));
    EXPECT_EQ(info.details["field"], c.field);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(info.message.empty());
    EXPECT_TRUE(info.details.count("value"));
  }
}

TEST(ValidateCreateTaskTest, ErrorDetailsCarryTheOffendingValue) {
  v1::CreateTaskRequest request = ValidRequest();
  request.mutable_task()->set_priority("urgent");
  auto result = ValidateCreateTask(request, ValidationLimits{}, kNow);
  ASSERT_FALSE(result.ok());
  ErrorInfo info = GetErrorInfo(result.status());
  EXPECT_EQ(info.details["value"], "urgent");
  EXPECT_NE(info.message.find("lowest"), std::string::npos) << info.message;
}

TEST(ValidateCreateTaskTest, PayloadLimitIsConfigurable) {
  ValidationLimits limits;
  limits.max_payload_bytes = 16;
  v1::CreateTaskRequest request = ValidRequest();
  request.mutable_task()->set_payload(R"({"aaaaaaaaaaaaa":1})");
  auto result = ValidateCreateTask(request, limits, kNow);
  ASSERT_FALSE(result.ok());
  ErrorInfo info = GetErrorInfo(result.status());
  EXPECT_EQ(info.code, ErrorCode::kInputTooLarge);
  EXPECT_EQ(info.details["limit"], "16");
}

TEST(ValidateCreateTaskTest, MaxDeadlineIsConfigurable) {
  ValidationLimits limits;
  limits.max_deadline = absl::Minutes(30);
  v1::CreateTaskRequest request = ValidRequest();  // Deadline: created + 1h.
  auto result = ValidateCreateTask(request, limits, kNow);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(GetErrorInfo(result.status()).details["field"], "task.deadline");
}

TEST(ValidateOtherRequestsTest, ClaimWork) {
  v1::ClaimWorkRequest request;
  request.set_task_queue_id("prov/type");
  request.set_worker_group("us-east-1");
  request.set_worker_id("i-123");
  request.set_max_tasks(1);
  EXPECT_TRUE(ValidateClaimWork(request).ok());
  struct Case {
    std::function<void(v1::ClaimWorkRequest&)> mutate;
    std::string field;
  };
  std::vector<Case> cases = {
      {[](auto& r) { r.set_task_queue_id("prov"); }, "task_queue_id"},
      {[](auto& r) { r.clear_worker_group(); }, "worker_group"},
      {[](auto& r) { r.set_worker_id("a/b"); }, "worker_id"},
      {[](auto& r) { r.set_max_tasks(0); }, "max_tasks"},
      {[](auto& r) { r.set_max_tasks(101); }, "max_tasks"},
  };
  for (const auto& c : cases) {
    v1::ClaimWorkRequest bad = request;
    c.mutate(bad);
    absl::Status status = ValidateClaimWork(bad);
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << c.field;
    EXPECT_EQ(GetErrorInfo(status).details["field"], c.field);
  }
}

TEST(ValidateOtherRequestsTest, RunRequestsAndReasons) {
  v1::RunRequest run;
  run.set_task_id(NewSlugId());
  run.set_run_id(0);
  EXPECT_TRUE(ValidateRunRequest(run, false).ok());
  EXPECT_EQ(GetErrorInfo(ValidateRunRequest(run, true)).details["field"],
            "worker_group");
  run.set_run_id(-1);
  EXPECT_EQ(GetErrorInfo(ValidateRunRequest(run, false)).details["field"],
            "run_id");

  v1::ReportExceptionRequest report;
  report.set_task_id(NewSlugId());
  report.set_reason("worker-shutdown");
  EXPECT_TRUE(ValidateReportException(report).ok());
  // Only the server resolves runs as canceled or claim-expired.
  report.set_reason("canceled");
  EXPECT_EQ(GetErrorInfo(ValidateReportException(report)).details["field"],
            "reason");

  v1::ListTaskQueuesRequest list;
  EXPECT_EQ(*ValidateListTaskQueues(list), 100);
  list.set_limit(1001);
  EXPECT_EQ(
      GetErrorInfo(ValidateListTaskQueues(list).status()).details["field"],
      "limit");
}

}  // namespace
}  // namespace drover::queue::queue_service
