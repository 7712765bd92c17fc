// The Store conformance suite, part two: task graphs, task groups,
// priorities and the event log (store.h, "Task graphs ..."). Same fixture
// and instantiation as store_conformance.cc; a store that answers
// Unimplemented for these operations has the tests skipped.
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/slugid.h"
#include "common/status.h"
#include "queue/store/testing/status_assertions.h"
#include "queue/store/testing/store_conformance.h"

namespace drover::queue::store::testing {
namespace {

constexpr absl::Duration kClaimTimeout = absl::Minutes(20);

}  // namespace

void GraphConformanceTest::SetUp() {
  StoreConformanceTest::SetUp();
  if (IsSkipped() || HasFatalFailure()) return;
  auto probe = store().GetTaskGroup("probe");
  if (probe.status().code() == absl::StatusCode::kUnimplemented) {
    GTEST_SKIP() << GetParam().name << " has no task-graph support";
  }
}

Task GraphConformanceTest::GraphTask(const std::string& group,
                                     std::vector<std::string> deps) {
  Task t = NewTask(kGraphTestQueue);
  t.task_group_id = group;
  t.dependencies = std::move(deps);
  return t;
}

std::vector<std::string> GraphConformanceTest::Drain(RunState state) {
  std::vector<std::string> order;
  for (;;) {
    auto claimed =
        store().ClaimWork(kGraphTestQueue, "g", "w", 100, kClaimTimeout);
    EXPECT_TRUE(claimed.ok()) << claimed.status();
    if (!claimed.ok() || claimed->empty()) return order;
    for (const ClaimedTask& c : *claimed) {
      order.push_back(c.task.task_id);
      EXPECT_TRUE(store().ResolveRun(c.task.task_id, c.run_id, state, "").ok());
    }
  }
}

std::string GraphConformanceTest::State(const std::string& task_id) {
  auto status = store().GetTaskStatus(task_id);
  return status.ok() ? status->state : "error";
}

std::vector<Event> GraphConformanceTest::AllEvents(int64_t after,
                                                   const EventFilter& filter,
                                                   int batch) {
  std::vector<Event> out;
  for (;;) {
    auto read = store().ReadEvents(after, filter, batch, absl::Seconds(5));
    EXPECT_TRUE(read.ok()) << read.status();
    if (!read.ok()) return out;
    for (Event& e : read->events) out.push_back(std::move(e));
    if (read->next == after) return out;
    after = read->next;
  }
}

void GraphConformanceTest::ExpectNothingWritten(
    const std::vector<Task>& tasks) {
  for (const Task& t : tasks) {
    EXPECT_EQ(GetErrorInfo(store().GetTaskStatus(t.task_id).status()).code,
              ErrorCode::kResourceNotFound)
        << t.task_id;
  }
}

namespace {

size_t IndexOf(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) - v.begin();
}

TEST_P(GraphConformanceTest, DiamondFanOutAndChainRunInDependencyOrder) {
  std::string group = NewSlugId();
  Task a = GraphTask(group);
  Task b = GraphTask(group, {a.task_id});
  Task c = GraphTask(group, {a.task_id});
  Task d = GraphTask(group, {b.task_id, c.task_id, b.task_id});  // Fan-in.
  Task e = GraphTask(group, {d.task_id});                        // Chain.
  // Submitted in reverse order: the graph, not the list, orders them.
  ASSERT_OK_AND_ASSIGN(TaskGraphResult created,
                       store().CommitTaskGraph("", {e, d, c, b, a}));
  EXPECT_EQ(created.tasks, 5);
  EXPECT_EQ(created.pending, 1);
  EXPECT_EQ(created.pending_queues, std::vector<std::string>{kGraphTestQueue});
  EXPECT_EQ(State(a.task_id), "pending");
  ASSERT_OK_AND_ASSIGN(TaskStatus waiting, store().GetTaskStatus(d.task_id));
  EXPECT_EQ(waiting.state, "unscheduled");
  EXPECT_EQ(waiting.blocking_dependencies,
            (std::vector<std::string>{std::min(b.task_id, c.task_id),
                                      std::max(b.task_id, c.task_id)}));
  ASSERT_OK_AND_ASSIGN(Task stored, store().GetTask(d.task_id));
  EXPECT_EQ(stored.dependencies,
            (std::vector<std::string>{b.task_id, c.task_id}));

  std::vector<std::string> order = Drain();
  ASSERT_EQ(order.size(), 5u);
  EXPECT_EQ(order.front(), a.task_id);
  EXPECT_LT(IndexOf(order, b.task_id), IndexOf(order, d.task_id));
  EXPECT_LT(IndexOf(order, c.task_id), IndexOf(order, d.task_id));
  EXPECT_EQ(order.back(), e.task_id);
  for (const Task* t : {&a, &b, &c, &d, &e}) {
    EXPECT_EQ(State(t->task_id), "completed");
  }
  ASSERT_OK_AND_ASSIGN(Page<TaskStatus> dependents,
                       store().ListDependentTasks(a.task_id, "", 10));
  ASSERT_EQ(dependents.items.size(), 2u);
  EXPECT_EQ(dependents.items[0].task_id, std::min(b.task_id, c.task_id));
}

TEST_P(GraphConformanceTest, CrossGroupDependenciesOnExistingTasks) {
  Task parent = GraphTask(NewSlugId());
  ASSERT_OK(store().CreateTask(parent));
  Task done = GraphTask(NewSlugId());
  ASSERT_OK(store().CreateTask(done));
  Drain();  // Both complete.
  Task waiting_parent = GraphTask(parent.task_group_id);
  ASSERT_OK(store().CreateTask(waiting_parent));

  std::string group = NewSlugId();
  Task x = GraphTask(group, {done.task_id});            // Satisfied already.
  Task y = GraphTask(group, {waiting_parent.task_id});  // Not yet.
  ASSERT_OK_AND_ASSIGN(TaskGraphResult created,
                       store().CommitTaskGraph("", {x, y}));
  EXPECT_EQ(created.pending, 1);
  EXPECT_EQ(State(x.task_id), "pending");
  EXPECT_EQ(State(y.task_id), "unscheduled");
  Drain();
  EXPECT_EQ(State(y.task_id), "completed");
}

TEST_P(GraphConformanceTest, AllResolvedVersusAllCompletedWithAFailingParent) {
  std::string group = NewSlugId();
  Task parent = GraphTask(group);
  Task strict = GraphTask(group, {parent.task_id});
  Task lenient = GraphTask(group, {parent.task_id});
  lenient.requires_rule = Requires::kAllResolved;
  ASSERT_OK(store().CommitTaskGraph("", {parent, strict, lenient}));
  Drain(RunState::kFailed);
  EXPECT_EQ(State(parent.task_id), "failed");
  EXPECT_EQ(State(lenient.task_id), "failed");  // Ran, then failed too.
  ASSERT_OK_AND_ASSIGN(TaskStatus s, store().GetTaskStatus(strict.task_id));
  EXPECT_EQ(s.state, "unscheduled");
  EXPECT_EQ(s.blocking_dependencies, std::vector<std::string>{parent.task_id});
  // Forced scheduling ignores the dependency.
  ASSERT_OK_AND_ASSIGN(TaskStatus forced, store().ScheduleTask(strict.task_id));
  EXPECT_EQ(forced.state, "pending");
  EXPECT_TRUE(forced.blocking_dependencies.empty());
}

TEST_P(GraphConformanceTest, BadGraphsArePreciseErrorsAndWriteNothing) {
  std::string group = NewSlugId();
  // A cycle a -> b -> c -> a behind a valid root.
  Task root = GraphTask(group);
  Task a = GraphTask(group, {root.task_id});
  Task b = GraphTask(group, {a.task_id});
  Task c = GraphTask(group, {b.task_id});
  a.dependencies.push_back(c.task_id);
  auto cycle = store().CommitTaskGraph("", {root, a, b, c});
  ASSERT_EQ(InfoOf(cycle).code, ErrorCode::kInputError) << cycle.status();
  std::string on_cycle = InfoOf(cycle).details["value"];
  EXPECT_TRUE(on_cycle == a.task_id || on_cycle == b.task_id ||
              on_cycle == c.task_id)
      << cycle.status();
  EXPECT_NE(InfoOf(cycle).message.find("cycle"), std::string::npos);
  ExpectNothingWritten({root, a, b, c});

  Task self = GraphTask(group);
  self.dependencies = {self.task_id};
  EXPECT_EQ(InfoOf(store().CommitTaskGraph("", {self})).code,
            ErrorCode::kInputError);

  Task dup = GraphTask(group);
  auto repeated = store().CommitTaskGraph("", {dup, root, dup});
  EXPECT_EQ(InfoOf(repeated).code, ErrorCode::kInputError);
  EXPECT_EQ(InfoOf(repeated).details["value"], dup.task_id);

  std::string ghost1 = NewSlugId(), ghost2 = NewSlugId();
  Task orphan = GraphTask(group, {ghost1, root.task_id, ghost2});
  auto unknown = store().CommitTaskGraph("", {root, orphan});
  ASSERT_EQ(InfoOf(unknown).code, ErrorCode::kInputError);
  EXPECT_NE(InfoOf(unknown).message.find(ghost1), std::string::npos);
  EXPECT_NE(InfoOf(unknown).message.find(ghost2), std::string::npos);
  EXPECT_EQ(InfoOf(unknown).message.find(root.task_id), std::string::npos);

  Task short_lived = GraphTask(group);
  short_lived.expires = short_lived.deadline;
  Task late = GraphTask(group, {short_lived.task_id});
  late.deadline = short_lived.deadline + absl::Hours(1);
  auto expiring = store().CommitTaskGraph("", {short_lived, late});
  ASSERT_EQ(InfoOf(expiring).code, ErrorCode::kInputError);
  EXPECT_EQ(InfoOf(expiring).details["value"], short_lived.task_id);
  EXPECT_EQ(InfoOf(expiring).details["task_id"], late.task_id);

  Task other_scheduler = GraphTask(group);
  other_scheduler.scheduler_id = "someone-else";
  EXPECT_EQ(InfoOf(store().CommitTaskGraph("", {root, other_scheduler})).code,
            ErrorCode::kInputError);
  ExpectNothingWritten(
      {self, dup, root, orphan, short_lived, late, other_scheduler});

  // Existing ids, existing groups of another scheduler, sealed groups.
  Task existing = GraphTask(NewSlugId());
  ASSERT_OK(store().CreateTask(existing));
  Task fresh = GraphTask(group);
  EXPECT_EQ(InfoOf(store().CommitTaskGraph("", {fresh, existing})).code,
            ErrorCode::kRequestConflict);
  Task intruder = GraphTask(existing.task_group_id);
  intruder.scheduler_id = "someone-else";
  EXPECT_EQ(InfoOf(store().CommitTaskGraph("", {fresh, intruder})).code,
            ErrorCode::kRequestConflict);
  ASSERT_OK(store().SealTaskGroup(existing.task_group_id));
  Task late_joiner = GraphTask(existing.task_group_id);
  auto sealed = store().CommitTaskGraph("", {fresh, late_joiner});
  EXPECT_EQ(InfoOf(sealed).code, ErrorCode::kRequestConflict);
  EXPECT_NE(InfoOf(sealed).message.find("sealed"), std::string::npos);
  ExpectNothingWritten({fresh, intruder, late_joiner});
}

TEST_P(GraphConformanceTest, StagedGraphIsInvisibleUntilCommitted) {
  std::string group = NewSlugId();
  std::string graph = NewSlugId();
  std::vector<Task> first, second;
  for (int i = 0; i < 50; ++i) first.push_back(GraphTask(group));
  // Second batch depends on the first: edges across batches.
  for (int i = 0; i < 50; ++i) {
    second.push_back(GraphTask(group, {first[i].task_id}));
  }
  ASSERT_OK_AND_ASSIGN(int64_t staged, store().StageTaskGraph(graph, first));
  EXPECT_EQ(staged, 50);
  ExpectNothingWritten(first);
  // A batch sent again (its answer lost) is accepted and stages nothing
  // new; a staged id with another definition is a conflict naming it.
  ASSERT_OK_AND_ASSIGN(staged, store().StageTaskGraph(graph, first));
  EXPECT_EQ(staged, 50);
  Task changed = first[3];
  changed.retries = first[3].retries + 1;
  auto again = store().StageTaskGraph(graph, {first[4], changed});
  EXPECT_EQ(InfoOf(again).code, ErrorCode::kRequestConflict);
  EXPECT_EQ(InfoOf(again).details["value"], first[3].task_id);
  EXPECT_EQ(InfoOf(again).details["field"], "tasks[1].task.retries");
  EXPECT_EQ(InfoOf(store().StageTaskGraph(graph, {first[5], first[5]})).code,
            ErrorCode::kInputError);
  ASSERT_OK_AND_ASSIGN(staged, store().StageTaskGraph(graph, second));
  EXPECT_EQ(staged, 100);
  ASSERT_OK_AND_ASSIGN(TaskGraphResult created,
                       store().CommitTaskGraph(graph, {}));
  EXPECT_EQ(created.tasks, 100);
  EXPECT_EQ(created.pending, 50);
  // The commit sent again (its answer lost) answers as the first time.
  ASSERT_OK_AND_ASSIGN(TaskGraphResult repeated,
                       store().CommitTaskGraph(graph, {}));
  EXPECT_EQ(repeated.tasks, 100);
  EXPECT_EQ(repeated.pending, 50);
  EXPECT_TRUE(repeated.pending_queues.empty());
  // A commit with tasks under the committed id is not a retry.
  EXPECT_EQ(InfoOf(store().CommitTaskGraph(graph, {GraphTask(group)})).code,
            ErrorCode::kRequestConflict);
  // Nor is staging more under it.
  EXPECT_EQ(InfoOf(store().StageTaskGraph(graph, {GraphTask(group)})).code,
            ErrorCode::kRequestConflict);
  // A graph_id never staged is still unknown.
  EXPECT_EQ(InfoOf(store().CommitTaskGraph(NewSlugId(), {})).code,
            ErrorCode::kResourceNotFound);

  // A cycle spanning a staged batch and the final batch: nothing written.
  std::string bad = NewSlugId();
  Task p = GraphTask(NewSlugId());
  Task q = GraphTask(p.task_group_id, {p.task_id});
  p.dependencies = {q.task_id};
  ASSERT_OK(store().StageTaskGraph(bad, {p}));
  EXPECT_EQ(InfoOf(store().CommitTaskGraph(bad, {q})).code,
            ErrorCode::kInputError);
  ExpectNothingWritten({p, q});

  // Commits are remembered for a day, then forgotten by retention.
  clock_.Advance(absl::Hours(25));
  ASSERT_OK(store().DeleteExpiredEvents(absl::Hours(24 * 7), 100));
  EXPECT_EQ(InfoOf(store().CommitTaskGraph(graph, {})).code,
            ErrorCode::kResourceNotFound);
}

// Clients send a big graph's batches several at a time (SubmitTaskGraph):
// each answer counts the tasks staged so far, every task exactly once,
// whatever the order the batches commit in, and a batch sent again adds
// nothing.
TEST_P(GraphConformanceTest, ConcurrentStagedBatchesCountEveryTaskOnce) {
  constexpr int kThreads = 4;
  constexpr int kBatchesPerThread = 5;
  constexpr int kBatch = 20;
  constexpr int kTotal = kThreads * kBatchesPerThread * kBatch;
  const std::string group = NewSlugId();
  const std::string graph = NewSlugId();
  std::vector<std::vector<Task>> batches;
  for (int b = 0; b < kThreads * kBatchesPerThread; ++b) {
    std::vector<Task> batch;
    for (int i = 0; i < kBatch; ++i) batch.push_back(GraphTask(group));
    batches.push_back(std::move(batch));
  }
  std::mutex mu;
  std::vector<int64_t> fresh_answers;
  std::vector<int64_t> repeat_answers;
  std::vector<std::string> errors;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int b = 0; b < kBatchesPerThread; ++b) {
        const auto& batch = batches[t * kBatchesPerThread + b];
        auto staged = store().StageTaskGraph(graph, batch);
        // The thread's first batch again, as after a lost answer.
        auto repeated = b == 0 ? store().StageTaskGraph(graph, batch)
                               : absl::StatusOr<int64_t>(int64_t{-1});
        std::lock_guard<std::mutex> lock(mu);
        if (!staged.ok()) errors.push_back(staged.status().ToString());
        if (!repeated.ok()) errors.push_back(repeated.status().ToString());
        if (staged.ok()) fresh_answers.push_back(*staged);
        if (repeated.ok() && *repeated >= 0) {
          repeat_answers.push_back(*repeated);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(errors.empty()) << errors.front();
  // The batches took turns on the count: each saw its own total, so the
  // answers are distinct multiples of the batch up to the whole graph.
  std::sort(fresh_answers.begin(), fresh_answers.end());
  std::vector<int64_t> expected;
  for (int n = kBatch; n <= kTotal; n += kBatch) expected.push_back(n);
  EXPECT_EQ(fresh_answers, expected);
  ASSERT_EQ(repeat_answers.size(), static_cast<size_t>(kThreads));
  for (int64_t n : repeat_answers) {
    EXPECT_TRUE(n >= kBatch && n <= kTotal && n % kBatch == 0) << n;
  }
  ASSERT_OK_AND_ASSIGN(TaskGraphResult created,
                       store().CommitTaskGraph(graph, {}));
  EXPECT_EQ(created.tasks, kTotal);
  EXPECT_EQ(created.pending, kTotal);
}

TEST_P(GraphConformanceTest, RepeatedOneCallCommitAnswersAsTheFirst) {
  ASSERT_OK_AND_ASSIGN(int64_t start,
                       store().CurrentEventPosition(absl::Seconds(5)));
  std::string group = NewSlugId();
  Task a = GraphTask(group);
  Task b = GraphTask(group, {a.task_id});
  ASSERT_OK_AND_ASSIGN(TaskGraphResult first,
                       store().CommitTaskGraph("", {a, b}));
  EXPECT_EQ(first.tasks, 2);
  EXPECT_EQ(first.pending, 1);
  Drain();  // The answer holds even after the tasks ran.
  EventFilter in_group;
  in_group.task_group_id = group;
  size_t events = AllEvents(start, in_group, 1000).size();

  ASSERT_OK_AND_ASSIGN(TaskGraphResult again,
                       store().CommitTaskGraph("", {a, b}));
  EXPECT_EQ(again.tasks, 2);
  EXPECT_EQ(again.pending, 1);
  EXPECT_TRUE(again.pending_queues.empty());
  EXPECT_EQ(AllEvents(start, in_group, 1000).size(), events);

  // Another definition under a committed id: a conflict naming the task.
  Task other = b;
  other.metadata_name = "something else";
  auto conflict = store().CommitTaskGraph("", {a, other});
  EXPECT_EQ(InfoOf(conflict).code, ErrorCode::kRequestConflict);
  EXPECT_EQ(InfoOf(conflict).details["value"], b.task_id);
  EXPECT_EQ(InfoOf(conflict).details["field"], "tasks[1].task.metadata.name");
  EXPECT_NE(InfoOf(conflict).message.find(b.task_id), std::string::npos);
  // A different set of tasks starting with a committed one.
  EXPECT_EQ(InfoOf(store().CommitTaskGraph("", {a})).code,
            ErrorCode::kRequestConflict);
  Task c = GraphTask(group);
  auto extra = store().CommitTaskGraph("", {a, c});
  EXPECT_EQ(InfoOf(extra).code, ErrorCode::kRequestConflict);
  EXPECT_EQ(InfoOf(extra).details["value"], c.task_id);
  ExpectNothingWritten({c});
  EXPECT_EQ(AllEvents(start, in_group, 1000).size(), events);
}

TEST_P(GraphConformanceTest, GroupsCountPageSealAndCancel) {
  std::string group = NewSlugId();
  std::vector<Task> tasks;
  tasks.push_back(GraphTask(group));
  for (int i = 1; i < 250; ++i) {
    tasks.push_back(GraphTask(group, {tasks[0].task_id}));
  }
  ASSERT_OK(store().CommitTaskGraph("", tasks));
  ASSERT_OK_AND_ASSIGN(TaskGroupInfo info, store().GetTaskGroup(group));
  EXPECT_EQ(info.tasks, 250);
  EXPECT_EQ(info.counts["pending"], 1);
  EXPECT_EQ(info.counts["unscheduled"], 249);
  EXPECT_FALSE(info.sealed.has_value());
  EXPECT_FALSE(info.resolved);

  std::set<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    ASSERT_OK_AND_ASSIGN(Page<TaskStatus> page,
                         store().ListTaskGroup(group, token, 100));
    for (const TaskStatus& s : page.items) {
      EXPECT_TRUE(seen.insert(s.task_id).second) << s.task_id;
      EXPECT_EQ(s.task_group_id, group);
    }
    token = page.continuation_token;
    ++pages;
  } while (!token.empty());
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(seen.size(), 250u);
  EXPECT_EQ(InfoOf(store().ListTaskGroup(group, "", 1001)).code,
            ErrorCode::kInputError);
  EXPECT_EQ(InfoOf(store().GetTaskGroup(NewSlugId())).code,
            ErrorCode::kResourceNotFound);

  EXPECT_EQ(GetErrorInfo(store().CancelTaskGroup(group, 100).status()).code,
            ErrorCode::kRequestConflict);  // Not sealed.
  ASSERT_OK_AND_ASSIGN(info, store().SealTaskGroup(group));
  EXPECT_TRUE(info.sealed.has_value());
  ASSERT_OK(store().SealTaskGroup(group));  // Idempotent.
  Task joiner = GraphTask(group);
  EXPECT_EQ(GetErrorInfo(store().CreateTask(joiner).status()).code,
            ErrorCode::kRequestConflict);
  ASSERT_OK_AND_ASSIGN(int64_t canceled, store().CancelTaskGroup(group, 64));
  EXPECT_EQ(canceled, 250);
  ASSERT_OK_AND_ASSIGN(info, store().GetTaskGroup(group));
  EXPECT_EQ(info.counts["exception"], 250);
  EXPECT_TRUE(info.resolved);
  ASSERT_OK_AND_ASSIGN(canceled, store().CancelTaskGroup(group, 64));
  EXPECT_EQ(canceled, 0);
}

TEST_P(GraphConformanceTest, PriorityChangesReachTheClaimOrder) {
  std::string group = NewSlugId();
  Task low = GraphTask(group);
  Task other = GraphTask(group);
  Task later = GraphTask(NewSlugId());
  ASSERT_OK(store().CommitTaskGraph("", {low, other}));
  ASSERT_OK(store().CreateTask(later));
  ASSERT_OK_AND_ASSIGN(
      TaskStatus s, store().ChangeTaskPriority(later.task_id, Priority::kHigh));
  EXPECT_EQ(s.state, "pending");
  ASSERT_OK_AND_ASSIGN(Task stored, store().GetTask(later.task_id));
  EXPECT_EQ(stored.priority, Priority::kHigh);
  ASSERT_OK_AND_ASSIGN(int64_t changed, store().ChangeTaskGroupPriority(
                                            group, Priority::kHighest));
  EXPECT_EQ(changed, 2);
  ASSERT_OK_AND_ASSIGN(auto claimed, store().ClaimWork(kGraphTestQueue, "g",
                                                       "w", 3, kClaimTimeout));
  ASSERT_EQ(claimed.size(), 3u);
  EXPECT_EQ(claimed[2].task.task_id, later.task_id);
  for (const auto& c : claimed) {
    ASSERT_OK(
        store().ResolveRun(c.task.task_id, c.run_id, RunState::kCompleted, ""));
  }
  EXPECT_EQ(
      GetErrorInfo(
          store().ChangeTaskPriority(low.task_id, Priority::kLow).status())
          .code,
      ErrorCode::kRequestConflict);
  EXPECT_EQ(
      GetErrorInfo(
          store().ChangeTaskPriority(NewSlugId(), Priority::kLow).status())
          .code,
      ErrorCode::kResourceNotFound);
}

TEST_P(GraphConformanceTest, EventLogIsCompleteOrderedAndReplayable) {
  ASSERT_OK_AND_ASSIGN(int64_t start,
                       store().CurrentEventPosition(absl::Seconds(5)));
  std::string group = NewSlugId();
  Task a = GraphTask(group);
  Task b = GraphTask(group, {a.task_id});
  ASSERT_OK(store().CommitTaskGraph("", {a, b}));
  Drain();
  EXPECT_FALSE(store().ChangeTaskPriority(a.task_id, Priority::kHigh).ok());
  ASSERT_OK(store().SealTaskGroup(group));
  ASSERT_OK_AND_ASSIGN(int announced, store().AnnounceResolvedTaskGroups(100));
  EXPECT_GE(announced, 1);

  std::vector<Event> all = AllEvents(start, {}, 1000);
  std::vector<std::string> kinds;
  for (const Event& e : all) {
    if (e.task_group_id == group) {
      kinds.push_back(
          e.task_id.empty()
              ? e.kind
              : absl::StrCat(e.kind, ":", e.task_id == a.task_id ? "a" : "b"));
    }
  }
  // Every transition exactly once, in commit order.
  // task-defined events of one graph come in task id order.
  std::vector<std::string> defined = {"task-defined:a", "task-defined:b"};
  if (b.task_id < a.task_id) std::swap(defined[0], defined[1]);
  EXPECT_EQ(kinds, (std::vector<std::string>{
                       defined[0], defined[1], "task-pending:a",
                       "task-running:a", "task-completed:a", "task-pending:b",
                       "task-running:b", "task-completed:b",
                       "task-group-sealed", "task-group-resolved"}));
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].event_id, all[i].event_id);
  }
  // Replay from any id, in any batch size, equals the tail of the log.
  for (size_t from = 0; from < all.size(); from += 3) {
    std::vector<Event> replay = AllEvents(all[from].event_id, {}, 2);
    ASSERT_EQ(replay.size(), all.size() - from - 1);
    for (size_t i = 0; i < replay.size(); ++i) {
      EXPECT_EQ(replay[i].event_id, all[from + 1 + i].event_id);
      EXPECT_EQ(replay[i].kind, all[from + 1 + i].kind);
    }
  }
  // Filters.
  EventFilter completed;
  completed.kinds = {"task-completed"};
  completed.task_group_id = group;
  EXPECT_EQ(AllEvents(start, completed, 1).size(), 2u);
  EventFilter by_route;
  by_route.route_prefix = "index.proj";
  by_route.task_group_id = group;
  EXPECT_EQ(AllEvents(start, by_route, 100).size(), 8u);
  by_route.route_prefix = "nomatch.";
  EXPECT_TRUE(AllEvents(start, by_route, 100).empty());

  // Retention removes the oldest first.
  clock_.Advance(absl::Hours(2));
  ASSERT_OK_AND_ASSIGN(int deleted,
                       store().DeleteExpiredEvents(absl::Hours(1), 5));
  EXPECT_EQ(deleted, 5);
  EXPECT_EQ(AllEvents(start, {}, 1000).size(), all.size() - 5);
}

TEST_P(GraphConformanceTest, GroupResolvedIsAnnouncedOncePerResolution) {
  ASSERT_OK_AND_ASSIGN(int64_t start,
                       store().CurrentEventPosition(absl::Seconds(5)));
  std::string group = NewSlugId();
  std::vector<Task> tasks;
  for (int i = 0; i < 5; ++i) tasks.push_back(GraphTask(group));
  ASSERT_OK(store().CommitTaskGraph("", tasks));
  ASSERT_OK(store().AnnounceResolvedTaskGroups(100));
  EventFilter resolved;
  resolved.kinds = {"task-group-resolved"};
  resolved.task_group_id = group;
  EXPECT_TRUE(AllEvents(start, resolved, 10).empty());
  auto claimed = store().ClaimWork(kGraphTestQueue, "g", "w", 4, kClaimTimeout);
  ASSERT_OK(claimed);
  for (const auto& c : *claimed) {
    ASSERT_OK(store().ResolveRun(c.task.task_id, 0, RunState::kCompleted, ""));
  }
  ASSERT_OK(store().AnnounceResolvedTaskGroups(2));
  ASSERT_OK(store().AnnounceResolvedTaskGroups(100));
  EXPECT_TRUE(AllEvents(start, resolved, 10).empty());  // One still pending.
  Drain();
  ASSERT_OK(store().AnnounceResolvedTaskGroups(100));
  ASSERT_OK(store().AnnounceResolvedTaskGroups(100));
  EXPECT_EQ(AllEvents(start, resolved, 10).size(), 1u);
}

}  // namespace

}  // namespace drover::queue::store::testing
