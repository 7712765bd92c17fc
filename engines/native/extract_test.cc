#include "engines/native/extract.h"

#include <sys/stat.h>

#include <filesystem>

#include "common/status.h"
#include "engines/native/test_util.h"
#include "gtest/gtest.h"

namespace drover::engines::native {
namespace {

namespace fs = std::filesystem;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteFile;

class ExtractTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = base_.path() / "task";
    out_ = base_.path() / "out";
    fs::create_directories(root_ / "dir" / "sub");
    fs::create_directories(out_);
    WriteFile(root_ / "file.bin", std::string("a\0b\xff", 4));
    WriteFile(root_ / "dir" / "one.txt", "one");
    WriteFile(root_ / "dir" / "sub" / "two.txt", "two");
    WriteFile(base_.path() / "secret.txt", "host secret");
  }

  absl::Status Extract(const std::string& rel, const fs::path& dest) {
    return ExtractFromDirectory(root_, rel, dest);
  }

  TempDir base_;
  fs::path root_, out_;
};

TEST_F(ExtractTest, CopiesAFileByteForByte) {
  ASSERT_TRUE(Extract("file.bin", out_ / "x" / "copy.bin").ok());
  EXPECT_EQ(ReadFile(out_ / "x" / "copy.bin"), std::string("a\0b\xff", 4));
}

TEST_F(ExtractTest, CopiesADirectoryTree) {
  ASSERT_TRUE(Extract("dir", out_ / "dir").ok());
  EXPECT_EQ(ReadFile(out_ / "dir" / "one.txt"), "one");
  EXPECT_EQ(ReadFile(out_ / "dir" / "sub" / "two.txt"), "two");
  ASSERT_TRUE(Extract(".", out_ / "all").ok());
  EXPECT_EQ(ReadFile(out_ / "all" / "dir" / "sub" / "two.txt"), "two");
}

TEST_F(ExtractTest, RefusesAbsoluteAndParentPaths) {
  for (const char* rel :
       {"/etc/passwd", "../secret.txt", "dir/../../secret.txt", ""}) {
    absl::Status status = Extract(rel, out_ / "refused");
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError))
        << rel << ": " << status;
    EXPECT_EQ(GetErrorInfo(status).details["field"], "path");
    EXPECT_FALSE(fs::exists(out_ / "refused"));
  }
}

TEST_F(ExtractTest, RefusesSymlinksLeadingOutside) {
  fs::create_symlink(base_.path() / "secret.txt", root_ / "abs-link");
  fs::create_symlink("../secret.txt", root_ / "rel-link");
  fs::create_symlink("..", root_ / "up");
  fs::create_symlink("/nonexistent/elsewhere", root_ / "dangling-out");
  for (const char* rel :
       {"abs-link", "rel-link", "up", "up/secret.txt", "dangling-out"}) {
    absl::Status status = Extract(rel, out_ / "refused");
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError))
        << rel << ": " << status;
    EXPECT_FALSE(fs::exists(out_ / "refused")) << rel;
  }
}

TEST_F(ExtractTest, RefusesADirectoryHoldingAnEscapingSymlink) {
  fs::create_symlink(base_.path() / "secret.txt", root_ / "dir" / "sub" / "x");
  absl::Status status = Extract("dir", out_ / "dir");
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << status;
  EXPECT_NE(GetErrorInfo(status).details["value"].find("dir/sub/x"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(out_ / "dir" / "sub" / "x"));
}

TEST_F(ExtractTest, FollowsSymlinksThatStayInside) {
  fs::create_symlink("../file.bin", root_ / "dir" / "inner-link");
  fs::create_symlink("sub", root_ / "dir" / "sub-link");
  fs::create_symlink("..", root_ / "dir" / "sub" / "loop");  // a cycle
  ASSERT_TRUE(Extract("dir", out_ / "dir").ok());
  EXPECT_FALSE(fs::is_symlink(out_ / "dir" / "inner-link"));
  EXPECT_EQ(ReadFile(out_ / "dir" / "inner-link"), std::string("a\0b\xff", 4));
  EXPECT_EQ(ReadFile(out_ / "dir" / "sub-link" / "two.txt"), "two");
  // Top-level links inside are fine too.
  ASSERT_TRUE(Extract("dir/inner-link", out_ / "single").ok());
  EXPECT_EQ(ReadFile(out_ / "single"), std::string("a\0b\xff", 4));
}

TEST_F(ExtractTest, MissingPathsAreNotFound) {
  fs::create_symlink("nowhere-inside", root_ / "dangling-in");
  for (const char* rel : {"missing", "dir/missing/deeper", "dangling-in"}) {
    absl::Status status = Extract(rel, out_ / "missing");
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kResourceNotFound))
        << rel << ": " << status;
  }
}

TEST_F(ExtractTest, RefusesSpecialFiles) {
  ASSERT_EQ(::mkfifo((root_ / "fifo").c_str(), 0600), 0);
  absl::Status status = Extract("fifo", out_ / "fifo");
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << status;
}

}  // namespace
}  // namespace drover::engines::native
