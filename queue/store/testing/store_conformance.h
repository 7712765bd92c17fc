// The Store conformance suite: one parameterised GoogleTest suite that any
// Store implementation must pass, instantiated with a factory:
//
//   INSTANTIATE_TEST_SUITE_P(PgStore, StoreConformanceTest,
//                            ::testing::Values(StoreFactory{"pg", MakePg}),
//                            StoreFactoryName);
//
// Each test gets a fresh, empty store whose time comes from a FakeClock the
// test moves. A factory that cannot run on this machine returns an
// absl::StatusCode::kUnavailable status and the test is skipped with its
// message; any other error fails the test.
#ifndef DROVER_QUEUE_STORE_TESTING_STORE_CONFORMANCE_H_
#define DROVER_QUEUE_STORE_TESTING_STORE_CONFORMANCE_H_

#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "gtest/gtest.h"
#include "queue/store/store.h"

namespace drover::queue::store::testing {

// A store under test plus what the suite needs around it.
class StoreHarness {
 public:
  virtual ~StoreHarness() = default;
  virtual Store& store() = 0;
  // Closes the store and opens a new one over the same data, as a server
  // restart would.
  virtual absl::Status Restart() = 0;
  // The events recorded for `task_id`, oldest first, as "kind" or
  // "kind/run_id"; nullopt when the store keeps no event log (the event
  // test is then skipped).
  virtual std::optional<std::vector<std::string>> EventsOf(
      const std::string& /*task_id*/) {
    return std::nullopt;
  }
};

struct StoreFactory {
  std::string name;
  // A fresh, empty store reading time from `clock` (which outlives it).
  std::function<absl::StatusOr<std::unique_ptr<StoreHarness>>(FakeClock*)> make;
};

// Test names and failure messages show StoreFactory::name.
void PrintTo(const StoreFactory& factory, std::ostream* os);
// For INSTANTIATE_TEST_SUITE_P: names instances after StoreFactory::name.
std::string StoreFactoryName(
    const ::testing::TestParamInfo<StoreFactory>& info);

class StoreConformanceTest : public ::testing::TestWithParam<StoreFactory> {
 protected:
  void SetUp() override;

  Store& store() { return harness_->store(); }
  StoreHarness& harness() { return *harness_; }

  // A valid task on `queue` created now, deadline in a day, expiring in 30.
  Task NewTask(const std::string& queue = "test-prov/test-type");

  FakeClock clock_{absl::FromUnixSeconds(1893456000)};  // 2030-01-01
  std::unique_ptr<StoreHarness> harness_;
};


// Part two (graph_conformance.cc): task graphs, task groups, priorities and
// the event log. Instantiate it with the same factories; a store answering
// Unimplemented for GetTaskGroup has these tests skipped.
inline constexpr char kGraphTestQueue[] = "graph-prov/graph-type";

class GraphConformanceTest : public StoreConformanceTest {
 protected:
  void SetUp() override;
  // A task of `group` in kGraphTestQueue depending on `deps`.
  Task GraphTask(const std::string& group,
                 std::vector<std::string> deps = {});
  // Claims everything pending and resolves it as `state` until nothing is
  // pending; returns the ids in claim order.
  std::vector<std::string> Drain(RunState state = RunState::kCompleted);
  // The task's state, or "error".
  std::string State(const std::string& task_id);
  // Every event after `after` matching `filter`, read `batch` at a time.
  std::vector<Event> AllEvents(int64_t after, const EventFilter& filter,
                               int batch);
  // Each of `tasks` is unknown to the store.
  void ExpectNothingWritten(const std::vector<Task>& tasks);
};

}  // namespace drover::queue::store::testing

#endif  // DROVER_QUEUE_STORE_TESTING_STORE_CONFORMANCE_H_
