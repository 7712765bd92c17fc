// gtest assertions on absl::Status / absl::StatusOr for the store
// conformance suites: ASSERT_OK(expr) fails the test unless `expr` is OK,
// printing the status; ASSERT_OK_AND_ASSIGN(lhs, expr) also moves the value
// into `lhs` (a declaration or an existing variable). CodeOf and InfoOf read
// the error model's {code, message, details} back from a status.
#ifndef DROVER_QUEUE_STORE_TESTING_STATUS_ASSERTIONS_H_
#define DROVER_QUEUE_STORE_TESTING_STATUS_ASSERTIONS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::queue::store::testing {

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

inline ErrorInfo InfoOf(const absl::Status& s) { return GetErrorInfo(s); }
template <typename T>
ErrorInfo InfoOf(const absl::StatusOr<T>& s) {
  return GetErrorInfo(s.status());
}

inline ErrorCode CodeOf(const absl::Status& s) { return GetErrorInfo(s).code; }
template <typename T>
ErrorCode CodeOf(const absl::StatusOr<T>& s) {
  return GetErrorInfo(s.status()).code;
}

}  // namespace drover::queue::store::testing

#define DROVER_STORE_TESTING_CONCAT_INNER_(a, b) a##b
#define DROVER_STORE_TESTING_CONCAT_(a, b) \
  DROVER_STORE_TESTING_CONCAT_INNER_(a, b)

#define ASSERT_OK(expr)                                               \
  do {                                                                \
    const auto& drover_result_ = (expr);                              \
    ASSERT_TRUE(drover_result_.ok())                                  \
        << ::drover::queue::store::testing::StatusOf(drover_result_); \
  } while (false)

#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  DROVER_STORE_TESTING_ASSIGN_(         \
      DROVER_STORE_TESTING_CONCAT_(drover_or_, __LINE__), lhs, expr)
#define DROVER_STORE_TESTING_ASSIGN_(tmp, lhs, expr)                       \
  auto tmp = (expr);                                                       \
  ASSERT_TRUE(tmp.ok()) << ::drover::queue::store::testing::StatusOf(tmp); \
  lhs = std::move(tmp).value()

#endif  // DROVER_QUEUE_STORE_TESTING_STATUS_ASSERTIONS_H_
