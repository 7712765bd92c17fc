// Task graphs, task groups, priorities and WatchEvents through the real
// gRPC server on loopback and a real PostgreSQL (queue/store/testing): a
// QueueServer per test on a fresh database.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/rpc/grpc_status.h"
#include "common/slugid.h"
#include "common/status.h"
#include "drover/v1/queue.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "queue/queue_service/authorizer.h"
#include "queue/queue_service/conversions.h"
#include "queue/server/queue_server.h"
#include "queue/store/pg_pending_notifier.h"
#include "queue/store/pg_store.h"
#include "queue/store/testing/test_database.h"

namespace drover::queue::server {
namespace {

using queue_service::ToProtoTime;

constexpr char kQueue[] = "graph-prov/graph-worker";

std::unique_ptr<grpc::ClientContext> Context(
    absl::Duration timeout = absl::Seconds(60)) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() +
                        absl::ToChronoNanoseconds(timeout));
  return context;
}

ErrorInfo InfoOf(const grpc::Status& status) {
  return GetErrorInfo(rpc::FromGrpcStatus(status));
}

// Builds graphs: tasks named by label, dependencies by label.
class GraphBuilder {
 public:
  explicit GraphBuilder(std::string group = NewSlugId())
      : group_(std::move(group)) {}

  v1::TaskDefinition& Add(const std::string& label,
                          const std::vector<std::string>& deps = {}) {
    ids_[label] = NewSlugId();
    v1::GraphTask* t = request_.add_tasks();
    t->set_task_id(ids_[label]);
    v1::TaskDefinition* task = t->mutable_task();
    task->set_task_queue_id(kQueue);
    task->set_task_group_id(group_);
    task->set_scheduler_id("graph-sched");
    absl::Time now = absl::Now();
    *task->mutable_created() = ToProtoTime(now);
    *task->mutable_deadline() = ToProtoTime(now + absl::Hours(1));
    task->set_payload(R"({"command":["true"]})");
    task->add_routes("index.graph-test." + label);
    task->mutable_metadata()->set_name(label);
    task->mutable_metadata()->set_description("graph_service_test task");
    task->mutable_metadata()->set_owner("tests@example.com");
    task->mutable_metadata()->set_source("https://example.com/graph");
    for (const auto& dep : deps) {
      task->add_dependencies(ids_.count(dep) ? ids_[dep] : dep);
    }
    return *task;
  }

  const std::string& id(const std::string& label) { return ids_[label]; }
  const std::string& group() const { return group_; }
  v1::CreateTaskGraphRequest& request() {
    request_.set_commit(true);
    return request_;
  }
  std::string LabelOf(const std::string& id) const {
    for (const auto& [label, task_id] : ids_) {
      if (task_id == id) return label;
    }
    return id;
  }

 private:
  std::string group_;
  std::map<std::string, std::string> ids_;
  v1::CreateTaskGraphRequest request_;
};

class GraphServiceTest : public store::testing::DatabaseTest {
 protected:
  void SetUp() override {
    DatabaseTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    store::PgStoreOptions store_options;
    store_options.connection_string = connection_string();
    auto opened = store::PgStore::Open(store_options, &clock_);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(opened).value();
    notifier_ = std::make_unique<store::PgPendingNotifier>(
        store::PgPendingNotifier::Options{.connection_string =
                                              connection_string()});
    QueueServerOptions options;
    options.listen = "127.0.0.1:0";
    options.http_listen = "";
    options.service.claim.poll_timeout = absl::Seconds(1);
    options.service.limits.max_dependencies = 50;
    options.resolvers.group_resolution_interval = absl::Milliseconds(50);
    options.shutdown_grace = absl::Seconds(5);
    server_ = std::make_unique<QueueServer>(
        options, store_.get(), notifier_.get(), &clock_, &authorizer_);
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    channel_ = grpc::CreateChannel(server_->grpc_target(),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::Queue::NewStub(channel_);
  }

  void TearDown() override {
    stub_.reset();
    channel_.reset();
    if (server_) server_->Stop();
    server_.reset();
    notifier_.reset();
    store_.reset();
  }

  grpc::Status Submit(v1::CreateTaskGraphRequest& request,
                      v1::CreateTaskGraphResponse* response = nullptr) {
    v1::CreateTaskGraphResponse ignored;
    return stub_->CreateTaskGraph(Context().get(), request,
                                  response ? response : &ignored);
  }

  std::string State(const std::string& task_id) {
    v1::TaskIdRequest request;
    request.set_task_id(task_id);
    v1::TaskStatusResponse response;
    grpc::Status status =
        stub_->GetTaskStatus(Context().get(), request, &response);
    if (!status.ok()) {
      return std::string(ErrorCodeName(InfoOf(status).code));
    }
    return response.status().state();
  }

  // Claims and reports until nothing is pending; `fail` lists tasks to
  // report failed. Returns ids in claim order.
  std::vector<std::string> Drain(const std::set<std::string>& fail = {}) {
    std::vector<std::string> order;
    for (;;) {
      v1::ClaimWorkRequest claim;
      claim.set_task_queue_id(kQueue);
      claim.set_worker_group("g");
      claim.set_worker_id("w");
      claim.set_max_tasks(1);
      v1::ClaimWorkResponse claimed;
      grpc::Status status = stub_->ClaimWork(Context().get(), claim, &claimed);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok() || claimed.tasks().empty()) return order;
      for (const auto& c : claimed.tasks()) {
        order.push_back(c.task_id());
        v1::RunRequest run;
        run.set_task_id(c.task_id());
        run.set_run_id(c.run_id());
        v1::TaskStatusResponse done;
        grpc::Status reported =
            fail.count(c.task_id())
                ? stub_->ReportFailed(Context().get(), run, &done)
                : stub_->ReportCompleted(Context().get(), run, &done);
        EXPECT_TRUE(reported.ok()) << reported.error_message();
      }
    }
  }

  v1::TaskGroupInfo Group(const std::string& group) {
    v1::TaskGroupRequest request;
    request.set_task_group_id(group);
    v1::TaskGroupInfo info;
    grpc::Status status = stub_->GetTaskGroup(Context().get(), request, &info);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return info;
  }

  // Reads events with a WatchEvents replay from `after` until `count` have
  // arrived (or 20 s pass).
  std::vector<v1::Event> Replay(int64_t after, size_t count,
                                const std::string& group = "") {
    v1::WatchEventsRequest request;
    request.set_after_event_id(after);
    request.set_task_group_id(group);
    auto context = Context(absl::Seconds(20));
    auto reader = stub_->WatchEvents(context.get(), request);
    std::vector<v1::Event> out;
    v1::Event event;
    while (out.size() < count && reader->Read(&event)) out.push_back(event);
    context->TryCancel();
    reader->Finish();
    return out;
  }

  SystemClock clock_;
  queue_service::AllowAllAuthorizer authorizer_;
  std::unique_ptr<store::PgStore> store_;
  std::unique_ptr<store::PgPendingNotifier> notifier_;
  std::unique_ptr<QueueServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Queue::Stub> stub_;
};

size_t Pos(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) - v.begin();
}

TEST_F(GraphServiceTest, ChainFanOutFanInAndDiamondRunInOrder) {
  GraphBuilder g;
  // Diamond: top -> (left, right) -> bottom; fan-out: bottom -> f0..f4;
  // fan-in: f0..f4 -> join; chain: join -> c1 -> c2.
  g.Add("top");
  g.Add("left", {"top"});
  g.Add("right", {"top"});
  g.Add("bottom", {"left", "right"});
  std::vector<std::string> fans;
  for (int i = 0; i < 5; ++i) {
    fans.push_back(absl::StrCat("f", i));
    g.Add(fans.back(), {"bottom"});
  }
  g.Add("join", fans);
  g.Add("c1", {"join"});
  g.Add("c2", {"c1"});
  v1::CreateTaskGraphResponse created;
  grpc::Status status = Submit(g.request(), &created);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(created.tasks(), 12);
  EXPECT_EQ(created.pending(), 1);
  EXPECT_EQ(State(g.id("bottom")), "unscheduled");

  std::vector<std::string> order = Drain();
  ASSERT_EQ(order.size(), 12u);
  EXPECT_EQ(order[0], g.id("top"));
  EXPECT_LT(Pos(order, g.id("left")), Pos(order, g.id("bottom")));
  EXPECT_LT(Pos(order, g.id("right")), Pos(order, g.id("bottom")));
  for (const auto& f : fans) {
    EXPECT_LT(Pos(order, g.id("bottom")), Pos(order, g.id(f)));
    EXPECT_LT(Pos(order, g.id(f)), Pos(order, g.id("join")));
  }
  EXPECT_EQ(order[10], g.id("c1"));
  EXPECT_EQ(order[11], g.id("c2"));
  v1::TaskGroupInfo info = Group(g.group());
  EXPECT_EQ(info.tasks(), 12);
  EXPECT_EQ(info.counts().at("completed"), 12);
  EXPECT_TRUE(info.resolved());

  v1::ListDependentTasksRequest deps;
  deps.set_task_id(g.id("bottom"));
  deps.set_limit(3);
  std::set<std::string> dependents;
  do {
    v1::ListTasksResponse page;
    ASSERT_TRUE(stub_->ListDependentTasks(Context().get(), deps, &page).ok());
    for (const auto& t : page.tasks()) dependents.insert(t.task_id());
    deps.set_continuation_token(page.continuation_token());
  } while (!deps.continuation_token().empty());
  EXPECT_EQ(dependents.size(), 5u);
}

TEST_F(GraphServiceTest, CrossGroupDependencies) {
  GraphBuilder first;
  first.Add("a");
  ASSERT_TRUE(Submit(first.request()).ok());
  GraphBuilder second;
  second.Add("b", {first.id("a")});
  second.Add("c", {"b"});
  ASSERT_TRUE(Submit(second.request()).ok());
  EXPECT_EQ(State(second.id("b")), "unscheduled");
  std::vector<std::string> order = Drain();
  EXPECT_EQ(order, (std::vector<std::string>{first.id("a"), second.id("b"),
                                             second.id("c")}));
}

TEST_F(GraphServiceTest, AllResolvedVersusAllCompletedAndForcedSchedule) {
  GraphBuilder g;
  g.Add("parent");
  g.Add("strict", {"parent"});
  g.Add("lenient", {"parent"}).set_requirement("all-resolved");
  ASSERT_TRUE(Submit(g.request()).ok());
  std::vector<std::string> order = Drain({g.id("parent")});
  EXPECT_EQ(order, (std::vector<std::string>{g.id("parent"), g.id("lenient")}));
  EXPECT_EQ(State(g.id("parent")), "failed");
  EXPECT_EQ(State(g.id("lenient")), "completed");
  v1::TaskIdRequest strict;
  strict.set_task_id(g.id("strict"));
  v1::TaskStatusResponse status;
  ASSERT_TRUE(stub_->GetTaskStatus(Context().get(), strict, &status).ok());
  EXPECT_EQ(status.status().state(), "unscheduled");
  ASSERT_EQ(status.status().blocking_dependencies_size(), 1);
  EXPECT_EQ(status.status().blocking_dependencies(0), g.id("parent"));
  ASSERT_TRUE(stub_->ScheduleTask(Context().get(), strict, &status).ok());
  EXPECT_EQ(status.status().state(), "pending");
  EXPECT_EQ(Drain(), std::vector<std::string>{g.id("strict")});
}

TEST_F(GraphServiceTest, SealThenCreateAndCancelGroup) {
  GraphBuilder g;
  g.Add("root");
  for (int i = 0; i < 20; ++i) g.Add(absl::StrCat("leaf", i), {"root"});
  ASSERT_TRUE(Submit(g.request()).ok());
  v1::TaskGroupRequest group;
  group.set_task_group_id(g.group());
  v1::CancelTaskGroupResponse canceled;
  grpc::Status status =
      stub_->CancelTaskGroup(Context().get(), group, &canceled);
  EXPECT_EQ(InfoOf(status).code, ErrorCode::kRequestConflict);  // Open.

  v1::TaskGroupInfo sealed;
  ASSERT_TRUE(stub_->SealTaskGroup(Context().get(), group, &sealed).ok());
  EXPECT_TRUE(sealed.has_sealed());
  // Neither a single task nor a graph may join now.
  v1::CreateTaskRequest single;
  single.set_task_id(NewSlugId());
  GraphBuilder late(g.group());
  late.Add("late");
  *single.mutable_task() = late.request().tasks(0).task();
  v1::CreateTaskResponse single_response;
  status = stub_->CreateTask(Context().get(), single, &single_response);
  EXPECT_EQ(InfoOf(status).code, ErrorCode::kRequestConflict);
  status = Submit(late.request());
  EXPECT_EQ(InfoOf(status).code, ErrorCode::kRequestConflict);
  EXPECT_NE(InfoOf(status).message.find("sealed"), std::string::npos);
  EXPECT_EQ(State(late.id("late")), "ResourceNotFound");

  ASSERT_TRUE(stub_->CancelTaskGroup(Context().get(), group, &canceled).ok());
  EXPECT_EQ(canceled.canceled(), 21);
  EXPECT_EQ(canceled.group().counts().at("exception"), 21);
  EXPECT_TRUE(canceled.group().resolved());
  EXPECT_EQ(State(g.id("leaf7")), "exception");
}

TEST_F(GraphServiceTest, BadGraphsArePreciseErrorsAndWriteNothing) {
  auto expect_rejected = [&](GraphBuilder& g, ErrorCode code,
                             const std::string& value,
                             const std::string& message_part) {
    grpc::Status status = Submit(g.request());
    ErrorInfo info = InfoOf(status);
    EXPECT_EQ(info.code, code) << info.message;
    if (!value.empty()) EXPECT_EQ(info.details["value"], value) << info.message;
    EXPECT_NE(info.message.find(message_part), std::string::npos)
        << info.message;
    for (const auto& t : g.request().tasks()) {
      EXPECT_EQ(State(t.task_id()), "ResourceNotFound");
    }
  };
  {
    GraphBuilder g;  // a -> b -> c -> a
    g.Add("a");
    g.Add("b", {"a"});
    g.Add("c", {"b"});
    g.request().mutable_tasks(0)->mutable_task()->add_dependencies(g.id("c"));
    grpc::Status status = Submit(g.request());
    ErrorInfo info = InfoOf(status);
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    std::set<std::string> cycle = {g.id("a"), g.id("b"), g.id("c")};
    EXPECT_TRUE(cycle.count(info.details["value"])) << info.message;
    EXPECT_NE(info.message.find("cycle"), std::string::npos);
    EXPECT_EQ(State(g.id("a")), "ResourceNotFound");
  }
  {
    GraphBuilder g;
    g.Add("a");
    g.Add("b");
    g.request().mutable_tasks(1)->set_task_id(g.id("a"));
    expect_rejected(g, ErrorCode::kInputError, g.id("a"), "twice");
  }
  {
    GraphBuilder g;
    std::string ghost = NewSlugId();
    g.Add("a");
    g.Add("b", {"a", ghost});
    expect_rejected(g, ErrorCode::kInputError, ghost, ghost);
  }
  {
    GraphBuilder g;  // The test server allows 50 dependencies.
    std::vector<std::string> many;
    for (int i = 0; i < 51; ++i) {
      many.push_back(absl::StrCat("p", i));
      g.Add(many.back());
    }
    g.Add("child", many);
    grpc::Status status = Submit(g.request());
    ErrorInfo info = InfoOf(status);
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], "tasks[51].task.dependencies");
    EXPECT_EQ(State(g.id("p0")), "ResourceNotFound");
  }
  {
    GraphBuilder g;
    v1::TaskDefinition& parent = g.Add("short");
    *parent.mutable_expires() = parent.deadline();
    v1::TaskDefinition& child = g.Add("long", {"short"});
    *child.mutable_deadline() = ToProtoTime(absl::Now() + absl::Hours(2));
    expect_rejected(g, ErrorCode::kInputError, g.id("short"), "expires");
  }
  {
    GraphBuilder g;
    g.Add("a");
    g.Add("b").set_scheduler_id("other-sched");
    expect_rejected(g, ErrorCode::kInputError, "other-sched", "scheduler");
  }
  {
    GraphBuilder existing;
    existing.Add("a");
    ASSERT_TRUE(Submit(existing.request()).ok());
    GraphBuilder g(existing.group());
    g.Add("b").set_scheduler_id("other-sched");
    expect_rejected(g, ErrorCode::kRequestConflict, "other-sched",
                    "belongs to scheduler");
  }
}

TEST_F(GraphServiceTest, StagedGraphInBatchesIsAllOrNothing) {
  GraphBuilder g;
  std::string graph_id = NewSlugId();
  g.Add("root");
  for (int i = 0; i < 30; ++i) g.Add(absl::StrCat("n", i), {"root"});
  v1::CreateTaskGraphRequest all = g.request();
  // Three batches of 11, 10, 10; the last one commits.
  for (int start = 0; start < all.tasks_size(); start += 11) {
    v1::CreateTaskGraphRequest batch;
    batch.set_graph_id(graph_id);
    for (int i = start; i < std::min(start + 11, all.tasks_size()); ++i) {
      *batch.add_tasks() = all.tasks(i);
    }
    batch.set_commit(start + 11 >= all.tasks_size());
    v1::CreateTaskGraphResponse response;
    grpc::Status status = Submit(batch, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    if (!batch.commit()) {
      EXPECT_EQ(response.tasks(), start + 11);
      EXPECT_EQ(State(g.id("root")), "ResourceNotFound");
    } else {
      EXPECT_EQ(response.tasks(), 31);
      EXPECT_EQ(response.pending(), 1);
    }
  }
  EXPECT_EQ(Drain().size(), 31u);
  v1::CreateTaskGraphRequest no_id;
  no_id.set_commit(false);
  EXPECT_EQ(InfoOf(Submit(no_id)).code, ErrorCode::kInputError);
}

// A client whose call timed out sends it again: the same answer, nothing
// written twice; another definition under a used id stays a conflict.
TEST_F(GraphServiceTest, CallsSentAgainAnswerAsTheFirstTime) {
  GraphBuilder g;
  g.Add("a");
  g.Add("b", {"a"});
  v1::CreateTaskGraphResponse first, again;
  ASSERT_TRUE(Submit(g.request(), &first).ok());
  EXPECT_EQ(first.tasks(), 2);
  EXPECT_EQ(first.pending(), 1);
  grpc::Status repeated = Submit(g.request(), &again);
  ASSERT_TRUE(repeated.ok()) << repeated.error_message();
  EXPECT_EQ(again.SerializeAsString(), first.SerializeAsString());
  v1::CreateTaskGraphRequest changed = g.request();
  changed.mutable_tasks(1)->mutable_task()->add_routes("index.graph-test.x");
  ErrorInfo conflict = InfoOf(Submit(changed));
  EXPECT_EQ(conflict.code, ErrorCode::kRequestConflict) << conflict.message;
  EXPECT_EQ(conflict.details["value"], g.id("b"));
  EXPECT_EQ(conflict.details["field"], "tasks[1].task.routes");
  EXPECT_NE(conflict.message.find(g.id("b")), std::string::npos);

  // Staged: each batch and the commit sent twice.
  GraphBuilder s;
  std::string graph_id = NewSlugId();
  s.Add("root");
  for (int i = 0; i < 20; ++i) s.Add(absl::StrCat("n", i), {"root"});
  v1::CreateTaskGraphRequest all = s.request();
  v1::CreateTaskGraphRequest stage, commit;
  stage.set_graph_id(graph_id);
  commit.set_graph_id(graph_id);
  commit.set_commit(true);
  for (int i = 0; i < all.tasks_size(); ++i) {
    *(i < 11 ? stage.add_tasks() : commit.add_tasks()) = all.tasks(i);
  }
  for (int round = 0; round < 2; ++round) {
    v1::CreateTaskGraphResponse staged;
    grpc::Status status = Submit(stage, &staged);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(staged.tasks(), 11);
  }
  v1::CreateTaskGraphRequest restaged = stage;
  restaged.mutable_tasks(4)->mutable_task()->set_retries(1);
  conflict = InfoOf(Submit(restaged));
  EXPECT_EQ(conflict.code, ErrorCode::kRequestConflict) << conflict.message;
  EXPECT_EQ(conflict.details["value"], stage.tasks(4).task_id());
  EXPECT_EQ(conflict.details["field"], "tasks[4].task.retries");
  v1::CreateTaskGraphResponse committed, recommitted;
  ASSERT_TRUE(Submit(commit, &committed).ok());
  EXPECT_EQ(committed.tasks(), 21);
  EXPECT_EQ(committed.pending(), 1);
  grpc::Status status = Submit(commit, &recommitted);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(recommitted.SerializeAsString(), committed.SerializeAsString());
  v1::CreateTaskGraphRequest recommit_changed = commit;
  recommit_changed.mutable_tasks(0)->mutable_task()->set_priority("high");
  conflict = InfoOf(Submit(recommit_changed));
  EXPECT_EQ(conflict.code, ErrorCode::kRequestConflict) << conflict.message;
  EXPECT_EQ(conflict.details["value"], commit.tasks(0).task_id());

  // Every task exists once: 2 + 21 runs, no more.
  EXPECT_EQ(Drain().size(), 23u);
  EXPECT_EQ(Group(s.group()).tasks(), 21);
  EXPECT_EQ(Group(g.group()).tasks(), 2);
}

TEST_F(GraphServiceTest, PagingAcross2500Tasks) {
  std::string group = NewSlugId();
  std::set<std::string> ids;
  GraphBuilder g(group);
  for (int i = 0; i < 2500; ++i) g.Add(absl::StrCat("t", i));
  for (const auto& t : g.request().tasks()) ids.insert(t.task_id());
  ASSERT_TRUE(Submit(g.request()).ok());
  v1::ListTaskGroupRequest list;
  list.set_task_group_id(group);
  list.set_limit(1000);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    v1::ListTasksResponse page;
    grpc::Status status = stub_->ListTaskGroup(Context().get(), list, &page);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_LE(page.tasks_size(), 1000);
    for (const auto& t : page.tasks()) {
      seen.push_back(t.task_id());
      EXPECT_EQ(t.state(), "pending");
    }
    list.set_continuation_token(page.continuation_token());
    ++pages;
  } while (!list.continuation_token().empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 2500u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), ids);
  list.set_limit(1001);
  v1::ListTasksResponse page;
  EXPECT_EQ(InfoOf(stub_->ListTaskGroup(Context().get(), list, &page)).code,
            ErrorCode::kInputError);
  EXPECT_EQ(Group(group).counts().at("pending"), 2500);
}

TEST_F(GraphServiceTest, PriorityChanges) {
  GraphBuilder g;
  g.Add("a");
  g.Add("b");
  ASSERT_TRUE(Submit(g.request()).ok());
  v1::ChangeTaskPriorityRequest one;
  one.set_task_id(g.id("b"));
  one.set_priority("very-high");
  v1::TaskStatusResponse status;
  ASSERT_TRUE(stub_->ChangeTaskPriority(Context().get(), one, &status).ok());
  EXPECT_EQ(Drain().front(), g.id("b"));
  one.set_priority("urgent");
  EXPECT_EQ(
      InfoOf(stub_->ChangeTaskPriority(Context().get(), one, &status)).code,
      ErrorCode::kInputError);
  one.set_priority("low");
  EXPECT_EQ(
      InfoOf(stub_->ChangeTaskPriority(Context().get(), one, &status)).code,
      ErrorCode::kRequestConflict);  // Resolved.
  v1::ChangeTaskGroupPriorityRequest group;
  group.set_task_group_id(g.group());
  group.set_priority("high");
  v1::ChangeTaskGroupPriorityResponse changed;
  ASSERT_TRUE(
      stub_->ChangeTaskGroupPriority(Context().get(), group, &changed).ok());
  EXPECT_EQ(changed.changed(), 0);  // Everything is resolved.
}

// Every transition is exactly one event, in commit order; a live watcher
// started before the work and a replay from any id see the same stream.
TEST_F(GraphServiceTest, EventsAreCompleteOrderedAndReplayEqualsLive) {
  constexpr int kTasks = 40;
  // Expected: task-defined, -pending, -running, -completed per task, then
  // task-group-resolved for the group.
  const size_t expected = kTasks * 4 + 1;
  std::vector<v1::Event> live;
  std::mutex mu;
  std::atomic<bool> is_live{false};
  GraphBuilder g;
  auto context = Context(absl::Seconds(60));
  std::thread watcher([&] {
    v1::WatchEventsRequest request;
    request.set_task_group_id(g.group());
    auto reader = stub_->WatchEvents(context.get(), request);
    reader->WaitForInitialMetadata();
    is_live = true;
    v1::Event event;
    while (reader->Read(&event)) {
      std::lock_guard<std::mutex> lock(mu);
      live.push_back(event);
      if (live.size() == expected) break;
    }
    context->TryCancel();
    reader->Finish();
  });
  while (!is_live) std::this_thread::sleep_for(std::chrono::milliseconds(5));

  g.Add("t0");
  for (int i = 1; i < kTasks; ++i) {
    g.Add(absl::StrCat("t", i), {absl::StrCat("t", (i - 1) / 2)});
  }
  grpc::Status submitted = Submit(g.request());
  if (!submitted.ok()) {
    context->TryCancel();
    watcher.join();
    FAIL() << submitted.error_message();
  }
  // Two workers drain concurrently so transactions interleave.
  std::thread other([&] { Drain(); });
  Drain();
  other.join();
  Drain();  // Whatever a worker that gave up early left.
  watcher.join();

  ASSERT_EQ(live.size(), expected);
  std::map<std::string, std::vector<std::string>> per_task;
  for (size_t i = 0; i < live.size(); ++i) {
    if (i > 0) EXPECT_LT(live[i - 1].event_id(), live[i].event_id());
    per_task[live[i].task_id()].push_back(live[i].kind());
  }
  for (const auto& t : g.request().tasks()) {
    EXPECT_EQ(per_task[t.task_id()],
              (std::vector<std::string>{"task-defined", "task-pending",
                                        "task-running", "task-completed"}))
        << g.LabelOf(t.task_id());
  }
  EXPECT_EQ(live.back().kind(), "task-group-resolved");
  // A dependent's task-pending follows its parent's task-completed.
  std::map<std::string, int64_t> completed_at, pending_at;
  for (const auto& e : live) {
    if (e.kind() == "task-completed") completed_at[e.task_id()] = e.event_id();
    if (e.kind() == "task-pending") pending_at[e.task_id()] = e.event_id();
  }
  for (int i = 1; i < kTasks; ++i) {
    EXPECT_LT(completed_at[g.id(absl::StrCat("t", (i - 1) / 2))],
              pending_at[g.id(absl::StrCat("t", i))]);
  }
  // Replays from several points equal the live stream's tail.
  for (size_t from : {size_t{0}, size_t{1}, expected / 2, expected - 2}) {
    int64_t after = from == 0 ? live[0].event_id() - 1 : live[from].event_id();
    size_t want = from == 0 ? expected : expected - from - 1;
    std::vector<v1::Event> replay = Replay(after, want, g.group());
    ASSERT_EQ(replay.size(), want);
    for (size_t i = 0; i < want; ++i) {
      EXPECT_EQ(replay[i].SerializeAsString(),
                live[expected - want + i].SerializeAsString());
    }
  }
  // Kind filter.
  v1::WatchEventsRequest bad;
  bad.add_kinds("task-exploded");
  auto bad_context = Context();
  auto reader = stub_->WatchEvents(bad_context.get(), bad);
  v1::Event ignored;
  while (reader->Read(&ignored)) {
  }
  EXPECT_EQ(InfoOf(reader->Finish()).code, ErrorCode::kInputError);
}

}  // namespace
}  // namespace drover::queue::server
