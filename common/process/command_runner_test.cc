// Tests of SubprocessCommandRunner (real processes) and of the recording
// fake used by the user-management tests.
#include "common/process/command_runner.h"

#include <signal.h>

#include "absl/time/clock.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::process {
namespace {

TEST(SubprocessCommandRunnerTest, CapturesStdoutStderrAndExitCode) {
  SubprocessCommandRunner runner;
  auto result =
      runner.Run({"sh", "-c", "echo to-out; echo to-err >&2; exit 7"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->exit_code, 7);
  EXPECT_FALSE(result->signal.has_value());
  EXPECT_EQ(result->out, "to-out\n");
  EXPECT_EQ(result->err, "to-err\n");
  EXPECT_FALSE(result->ok());
}

TEST(SubprocessCommandRunnerTest, PassesArgumentsVerbatim) {
  SubprocessCommandRunner runner;
  auto result = runner.Run({"printf", "%s|", "a b", "", "$HOME", "'q'"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->ok());
  EXPECT_EQ(result->out, "a b||$HOME|'q'|");
}

TEST(SubprocessCommandRunnerTest, ReportsSignal) {
  SubprocessCommandRunner runner;
  auto result = runner.Run({"sh", "-c", "kill -TERM $$"});
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_TRUE(result->signal.has_value());
  EXPECT_EQ(*result->signal, SIGTERM);
  EXPECT_EQ(result->exit_code, -1);
}

TEST(SubprocessCommandRunnerTest, EnvironmentIsOnlyWhatWasConfigured) {
  ::setenv("DROVER_SECRET_FOR_TEST", "leak", 1);
  SubprocessCommandRunner::Options options;
  options.env = {{"ONLY_THIS", "yes"}};
  SubprocessCommandRunner runner(options);
  auto result = runner.Run({"env"});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_NE(result->out.find("ONLY_THIS=yes\n"), std::string::npos);
  EXPECT_NE(result->out.find("PATH=" + options.path + "\n"), std::string::npos);
  EXPECT_EQ(result->out.find("DROVER_SECRET_FOR_TEST"), std::string::npos);
  ::unsetenv("DROVER_SECRET_FOR_TEST");
}

TEST(SubprocessCommandRunnerTest, CommandsGetDefaultSigpipe) {
  // A worker ignoring SIGPIPE must not make `yes | head` complain: with the
  // default action `yes` dies quietly when head exits.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction previous {};
  ::sigaction(SIGPIPE, &ignore, &previous);
  SubprocessCommandRunner runner;
  auto result = runner.Run({"sh", "-c", "yes | head -n 1"});
  ::sigaction(SIGPIPE, &previous, nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->out, "y\n");
  EXPECT_EQ(result->err, "");
}

TEST(SubprocessCommandRunnerTest, MissingProgramIsNotFound) {
  SubprocessCommandRunner runner;
  auto result = runner.Run({"drover-no-such-program"});
  ASSERT_FALSE(result.ok());
  ErrorInfo info = GetErrorInfo(result.status());
  EXPECT_EQ(info.code, ErrorCode::kResourceNotFound);
  EXPECT_EQ(info.details["field"], "argv[0]");
  EXPECT_EQ(info.details["value"], "drover-no-such-program");

  auto by_path = runner.Run({"/nonexistent/bin/tool"});
  ASSERT_FALSE(by_path.ok());
  EXPECT_TRUE(HasErrorCode(by_path.status(), ErrorCode::kResourceNotFound));
}

TEST(SubprocessCommandRunnerTest, EmptyArgvIsInputError) {
  SubprocessCommandRunner runner;
  auto result = runner.Run({});
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(GetErrorInfo(result.status()).details["field"], "argv");
}

TEST(SubprocessCommandRunnerTest, TimeoutKillsTheCommandAndItsChildren) {
  SubprocessCommandRunner::Options options;
  options.timeout = absl::Milliseconds(300);
  SubprocessCommandRunner runner(options);
  absl::Time start = absl::Now();
  // The background sleep holds the output pipe open; only killing the whole
  // process group lets Run() return.
  auto result = runner.Run({"sh", "-c", "sleep 30 & sleep 30"});
  ASSERT_FALSE(result.ok());
  EXPECT_TRUE(HasErrorCode(result.status(), ErrorCode::kInternalError));
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

TEST(RunCheckedTest, NonZeroExitBecomesErrorWithDetails) {
  SubprocessCommandRunner runner;
  auto ok = RunChecked(runner, {"true"});
  EXPECT_TRUE(ok.ok()) << ok.status();
  auto failed = RunChecked(runner, {"sh", "-c", "echo boom >&2; exit 3"});
  ASSERT_FALSE(failed.ok());
  ErrorInfo info = GetErrorInfo(failed.status());
  EXPECT_EQ(info.code, ErrorCode::kInternalError);
  EXPECT_EQ(info.details["exit_code"], "3");
  EXPECT_EQ(info.details["stderr"], "boom\n");
  EXPECT_EQ(info.details["command"], "sh -c 'echo boom >&2; exit 3'");
}

TEST(FormatCommandTest, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(FormatCommand({"dscl", ".", "-create", "/Users/x"}),
            "dscl . -create /Users/x");
  EXPECT_EQ(FormatCommand({"a", "", "b c", "it's"}), "a '' 'b c' 'it'\\''s'");
}

TEST(RecordingCommandRunnerTest, RecordsAndAnswersByPrefix) {
  RecordingCommandRunner runner;
  CommandResult listing;
  listing.out = "alice 501\n";
  runner.Respond({"dscl", ".", "-list"}, listing);
  runner.Fail({"dscl", ".", "-create"}, 5, "nope", /*times=*/1);

  auto list = runner.Run({"dscl", ".", "-list", "/Users", "UniqueID"});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->out, "alice 501\n");
  auto first = runner.Run({"dscl", ".", "-create", "/Users/x"});
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->exit_code, 5);
  EXPECT_EQ(first->err, "nope");
  // The one-shot rule is used up.
  auto second = runner.Run({"dscl", ".", "-create", "/Users/x"});
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->ok());
  auto other = runner.Run({"pkill", "-9"});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(other->ok());

  runner.FailToStart({"dscl"}, InternalError("no dscl here"));
  EXPECT_FALSE(runner.Run({"dscl", "."}).ok());

  std::vector<std::vector<std::string>> expected = {
      {"dscl", ".", "-list", "/Users", "UniqueID"},
      {"dscl", ".", "-create", "/Users/x"},
      {"dscl", ".", "-create", "/Users/x"},
      {"pkill", "-9"},
      {"dscl", "."},
  };
  EXPECT_EQ(runner.commands(), expected);
  runner.ClearCommands();
  EXPECT_TRUE(runner.commands().empty());
}

}  // namespace
}  // namespace drover::process
