#include "common/crypto/token_hash.h"

#include <set>
#include <string>

#include "common/crypto/encoding.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::crypto {
namespace {

TokenHasher MustHasher(char fill) {
  auto hasher =
      TokenHasher::FromBase64Key(Base64Encode(std::string(32, fill)), "key");
  EXPECT_TRUE(hasher.ok()) << hasher.status();
  return std::move(hasher).value();
}

TEST(AccessTokenTest, TokensAreUrlSafeUniqueAnd256Bits) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string token = GenerateAccessToken();
    ASSERT_EQ(token.size(), 43u);
    auto bytes = Base64UrlDecode(token);
    ASSERT_TRUE(bytes.has_value());
    EXPECT_EQ(bytes->size(), 32u);
    EXPECT_TRUE(seen.insert(token).second);
  }
}

TEST(TokenHasherTest, HashIsKeyedAndBoundToTheClient) {
  TokenHasher a = MustHasher('a');
  TokenHasher b = MustHasher('b');
  const std::string token = GenerateAccessToken();
  const std::string hash = a.Hash("user/alice", token);
  EXPECT_EQ(hash.size(), TokenHasher::kHashSize);
  EXPECT_EQ(hash, a.Hash("user/alice", token)) << "deterministic";
  EXPECT_NE(hash, b.Hash("user/alice", token)) << "depends on the server key";
  EXPECT_NE(hash, a.Hash("user/bob", token)) << "bound to the client id";
  EXPECT_NE(hash, a.Hash("user/alice", GenerateAccessToken()));
  // Moving bytes between client id and token changes the hash.
  EXPECT_NE(a.Hash("ab", "c"), a.Hash("a", "bc"));
  EXPECT_EQ(hash.find(token), std::string::npos);
}

TEST(TokenHasherTest, VerifyAcceptsOnlyTheRightToken) {
  TokenHasher hasher = MustHasher('k');
  const std::string token = GenerateAccessToken();
  const std::string stored = hasher.Hash("c", token);
  EXPECT_TRUE(hasher.Verify("c", token, stored));
  EXPECT_FALSE(hasher.Verify("c", GenerateAccessToken(), stored));
  EXPECT_FALSE(hasher.Verify("d", token, stored));
  std::string flipped = token;
  flipped[5] = flipped[5] == 'A' ? 'B' : 'A';
  EXPECT_FALSE(hasher.Verify("c", flipped, stored));
  EXPECT_FALSE(hasher.Verify("c", token, stored.substr(0, 16)));
  EXPECT_FALSE(hasher.Verify("c", token, ""));
  EXPECT_FALSE(hasher.Verify("c", "", stored));
}

TEST(TokenHasherTest, KeyRoundTripsThroughBase64) {
  TokenHasher generated = TokenHasher::Generate();
  auto reloaded = TokenHasher::FromBase64Key(generated.KeyBase64(), "key");
  ASSERT_TRUE(reloaded.ok()) << reloaded.status();
  EXPECT_EQ(reloaded->Hash("c", "t"), generated.Hash("c", "t"));
  EXPECT_NE(TokenHasher::Generate().Hash("c", "t"), generated.Hash("c", "t"));
}

TEST(TokenHasherTest, BadKeysAreInputErrorsThatHideTheKey) {
  for (std::string key :
       {std::string("not base64!"), Base64Encode(std::string(31, 'x')),
        Base64Encode(std::string(33, 'x')), std::string()}) {
    auto hasher = TokenHasher::FromBase64Key(key, "token-hash-key");
    ASSERT_FALSE(hasher.ok()) << key;
    ErrorInfo info = GetErrorInfo(hasher.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], "token-hash-key");
    EXPECT_EQ(info.details["value"], "");
  }
}

TEST(ConstantTimeEqualsTest, ComparesBytes) {
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_TRUE(
      ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0b", 3)));
  EXPECT_FALSE(
      ConstantTimeEquals(std::string("a\0b", 3), std::string("a\0c", 3)));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
}

}  // namespace
}  // namespace drover::crypto
