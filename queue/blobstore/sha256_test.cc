#include "queue/blobstore/sha256.h"

#include <string>

#include "gtest/gtest.h"

namespace drover::queue::blobstore {
namespace {

// FIPS 180-2 examples.
TEST(Sha256Test, KnownDigests) {
  EXPECT_EQ(HexEncode(Sha256Of("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(HexEncode(Sha256Of("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, IncrementalEqualsOneShot) {
  std::string data(100000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Sha256 hasher;
  for (size_t offset = 0; offset < data.size(); offset += 333) {
    hasher.Update(std::string_view(data).substr(offset, 333));
  }
  EXPECT_EQ(HexEncode(hasher.Finish()), HexEncode(Sha256Of(data)));
}

TEST(Sha256Test, IsSha256Hex) {
  EXPECT_TRUE(IsSha256Hex(HexEncode(Sha256Of("x"))));
  EXPECT_FALSE(IsSha256Hex(""));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a')));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'A')));
  EXPECT_FALSE(IsSha256Hex(std::string(64, 'g')));
}

}  // namespace
}  // namespace drover::queue::blobstore
