#include "queue/store/types.h"

#include <array>
#include <utility>

namespace drover::queue::store {
namespace {

constexpr std::array<std::pair<Priority, std::string_view>, 7> kPriorities = {{
    {Priority::kLowest, "lowest"},
    {Priority::kVeryLow, "very-low"},
    {Priority::kLow, "low"},
    {Priority::kMedium, "medium"},
    {Priority::kHigh, "high"},
    {Priority::kVeryHigh, "very-high"},
    {Priority::kHighest, "highest"},
}};

constexpr std::array<std::pair<Requires, std::string_view>, 2> kRequires = {{
    {Requires::kAllCompleted, "all-completed"},
    {Requires::kAllResolved, "all-resolved"},
}};

constexpr std::array<std::pair<RunState, std::string_view>, 5> kRunStates = {{
    {RunState::kPending, "pending"},
    {RunState::kRunning, "running"},
    {RunState::kCompleted, "completed"},
    {RunState::kFailed, "failed"},
    {RunState::kException, "exception"},
}};

template <typename E, size_t N>
std::string_view NameOf(
    const std::array<std::pair<E, std::string_view>, N>& table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "";
}

template <typename E, size_t N>
std::optional<E> Parse(
    const std::array<std::pair<E, std::string_view>, N>& table,
    std::string_view name) {
  for (const auto& [v, n] : table) {
    if (n == name) return v;
  }
  return std::nullopt;
}

}  // namespace

std::string_view PriorityName(Priority p) { return NameOf(kPriorities, p); }
std::optional<Priority> ParsePriority(std::string_view name) {
  return Parse(kPriorities, name);
}

std::string_view RequiresName(Requires r) { return NameOf(kRequires, r); }
std::optional<Requires> ParseRequires(std::string_view name) {
  return Parse(kRequires, name);
}

std::string_view RunStateName(RunState s) { return NameOf(kRunStates, s); }
std::optional<RunState> ParseRunState(std::string_view name) {
  return Parse(kRunStates, name);
}

bool IsWorkerExceptionReason(std::string_view reason) {
  return reason == "worker-shutdown" || reason == "malformed-payload" ||
         reason == "resource-unavailable" || reason == "internal-error" ||
         reason == "intermittent-task";
}

bool IsRetryableExceptionReason(std::string_view reason) {
  return reason == "claim-expired" || reason == "worker-shutdown" ||
         reason == "intermittent-task";
}

}  // namespace drover::queue::store
