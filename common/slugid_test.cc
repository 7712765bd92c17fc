#include "common/slugid.h"

#include <set>

#include "gtest/gtest.h"

namespace drover {
namespace {

TEST(SlugIdTest, GeneratedIdsAreValidAndDistinct) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) {
    std::string id = NewSlugId();
    EXPECT_TRUE(IsValidSlugId(id)) << id;
    EXPECT_NE(id.front(), '-');
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 2000u);
}

TEST(SlugIdTest, RejectsMalformed) {
  EXPECT_FALSE(IsValidSlugId(""));
  EXPECT_FALSE(IsValidSlugId("short"));
  EXPECT_FALSE(IsValidSlugId("abcdefghijklmnopqrstuv1"));  // 23 chars
  EXPECT_FALSE(IsValidSlugId("abcdefghijklmnopqrst.A"));   // bad char
  EXPECT_FALSE(IsValidSlugId("abcdefghijklmnopqrstuB"));   // stray low bits
  EXPECT_TRUE(IsValidSlugId("abcdefghijklmnopqrstuA"));
}

}  // namespace
}  // namespace drover
