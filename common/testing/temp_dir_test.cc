#include "common/testing/temp_dir.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <string>

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::testing {
namespace {

namespace fs = std::filesystem;

// Points TMPDIR somewhere else for one test and restores it afterwards.
class TmpdirOverride {
 public:
  explicit TmpdirOverride(const std::string& value) {
    if (const char* old = ::getenv("TMPDIR")) old_ = old;
    ::setenv("TMPDIR", value.c_str(), 1);
  }
  ~TmpdirOverride() {
    if (old_.empty()) {
      ::unsetenv("TMPDIR");
    } else {
      ::setenv("TMPDIR", old_.c_str(), 1);
    }
  }

 private:
  std::string old_;
};

TEST(MakeTempDirTest, MakesFreshPrivateDirectoriesUnderTmpdir) {
  auto base = MakeTempDir("drover-temp-dir-test-");
  ASSERT_TRUE(base.ok()) << base.status();
  TmpdirOverride tmpdir(base->string());

  auto first = MakeTempDir("case-");
  auto second = MakeTempDir("case-");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(*first, *second);
  for (const fs::path& dir : {*first, *second}) {
    EXPECT_EQ(dir.parent_path(), *base);
    EXPECT_EQ(dir.filename().string().rfind("case-", 0), 0u) << dir;
    EXPECT_EQ(dir.filename().string().size(), 5u + 6u) << dir;
    EXPECT_TRUE(fs::is_directory(dir));
    EXPECT_TRUE(fs::is_empty(dir));
    struct stat st;
    ASSERT_EQ(::stat(dir.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0700u) << dir;
  }
  fs::remove_all(*base);
}

TEST(MakeTempDirTest, AnUnusableTmpdirIsAnInternalErrorNamingIt) {
  TmpdirOverride tmpdir("/nonexistent/drover-temp-dir-test");
  auto dir = MakeTempDir("case-");
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(GetErrorInfo(dir.status()).code, ErrorCode::kInternalError);
  EXPECT_NE(dir.status().message().find("temporary directory"),
            std::string::npos)
      << dir.status();
}

}  // namespace
}  // namespace drover::testing
