#include "common/crypto/encoding.h"

#include <string>

#include "gtest/gtest.h"

namespace drover::crypto {
namespace {

TEST(EncodingTest, Base64RoundTripsAllByteValues) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= bytes.size(); n += 17) {
    std::string prefix = bytes.substr(0, n);
    auto decoded = Base64Decode(Base64Encode(prefix));
    ASSERT_TRUE(decoded.has_value()) << n;
    EXPECT_EQ(*decoded, prefix);
    auto url = Base64UrlDecode(Base64UrlEncode(prefix));
    ASSERT_TRUE(url.has_value()) << n;
    EXPECT_EQ(*url, prefix);
  }
}

TEST(EncodingTest, KnownVectors) {
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64UrlEncode("foob"), "Zm9vYg");
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
  EXPECT_EQ(HexEncode("\x01\xab"), "01ab");
}

TEST(EncodingTest, DecodersAreStrict) {
  EXPECT_FALSE(Base64Decode("Zm9vYg").has_value()) << "missing padding";
  EXPECT_FALSE(Base64Decode("Zm9vYg==!").has_value()) << "trailing garbage";
  EXPECT_FALSE(Base64Decode("Zm9v Yg==").has_value()) << "embedded space";
  EXPECT_FALSE(Base64UrlDecode("Zm9vYg==").has_value()) << "padding in url";
  EXPECT_FALSE(Base64UrlDecode("+/8").has_value()) << "standard alphabet";
  EXPECT_FALSE(Base64Decode("-_8=").has_value()) << "url alphabet";
  EXPECT_TRUE(Base64Decode("").has_value());
}

}  // namespace
}  // namespace drover::crypto
