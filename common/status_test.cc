#include "common/status.h"

#include "gtest/gtest.h"

namespace drover {
namespace {

TEST(StatusTest, InputErrorCarriesFieldAndValue) {
  absl::Status s = InputError("task.priority", "urgent", "unknown priority");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  ErrorInfo info = GetErrorInfo(s);
  EXPECT_EQ(info.code, ErrorCode::kInputError);
  EXPECT_EQ(info.message, "unknown priority");
  EXPECT_EQ(info.details.at("field"), "task.priority");
  EXPECT_EQ(info.details.at("value"), "urgent");
}

TEST(StatusTest, CodesRoundTripByName) {
  for (ErrorCode code :
       {ErrorCode::kInputError, ErrorCode::kMalformedPayload,
        ErrorCode::kInsufficientScopes, ErrorCode::kAuthenticationFailed,
        ErrorCode::kResourceNotFound, ErrorCode::kRequestConflict,
        ErrorCode::kResourceExpired, ErrorCode::kInputTooLarge,
        ErrorCode::kInternalError}) {
    auto back = ErrorCodeFromName(ErrorCodeName(code));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, code);
  }
  EXPECT_FALSE(ErrorCodeFromName("Nope").has_value());
}

TEST(StatusTest, CanonicalCodes) {
  EXPECT_EQ(NotFoundError("task", "x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ConflictError("c").code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(MakeError(ErrorCode::kAuthenticationFailed, "a").code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(MakeError(ErrorCode::kInsufficientScopes, "a").code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(StatusTest, PlainStatusMapsByCanonicalCode) {
  EXPECT_EQ(GetErrorInfo(absl::NotFoundError("x")).code,
            ErrorCode::kResourceNotFound);
  EXPECT_EQ(GetErrorInfo(absl::UnknownError("x")).code,
            ErrorCode::kInternalError);
}

TEST(StatusTest, LongValuesAreTruncated) {
  std::string big(10000, 'x');
  ErrorInfo info = GetErrorInfo(InputError("task.payload", big, "too big"));
  EXPECT_LT(info.details.at("value").size(), 300u);
}

TEST(StatusTest, ReturnIfErrorAndAssignOrReturn) {
  auto fails = []() -> absl::StatusOr<int> { return InternalError("boom"); };
  auto ok = []() -> absl::StatusOr<int> { return 7; };
  auto use = [&](bool fail) -> absl::StatusOr<int> {
    DROVER_ASSIGN_OR_RETURN(int v, fail ? fails() : ok());
    DROVER_RETURN_IF_ERROR(absl::OkStatus());
    return v * 2;
  };
  EXPECT_EQ(*use(false), 14);
  EXPECT_EQ(GetErrorInfo(use(true).status()).code, ErrorCode::kInternalError);
}

}  // namespace
}  // namespace drover
