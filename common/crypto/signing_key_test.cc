#include "common/crypto/signing_key.h"

#include <sys/stat.h>

#include <string>

#include "common/crypto/encoding.h"
#include "common/crypto/test_util.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::crypto {
namespace {

TEST(SigningKeyTest, SignaturesVerifyOnlyForTheSignedMessageAndKey) {
  SigningKey key = SigningKey::Generate();
  SigningKey other = SigningKey::Generate();
  const std::string message = "claims";
  std::string signature = key.Sign(message);
  ASSERT_EQ(signature.size(), VerifyKey::kSignatureSize);
  EXPECT_TRUE(key.verify_key().Verify(message, signature));
  EXPECT_FALSE(key.verify_key().Verify("claimz", signature));
  EXPECT_FALSE(other.verify_key().Verify(message, signature));
  std::string flipped = signature;
  flipped[17] ^= 0x20;
  EXPECT_FALSE(key.verify_key().Verify(message, flipped));
  EXPECT_FALSE(key.verify_key().Verify(message, signature.substr(1)));
  EXPECT_NE(key.key_id(), other.key_id());
}

TEST(SigningKeyTest, SeedDeterminesTheKeyPair) {
  auto a = SigningKey::FromSeed(std::string(32, 's'));
  auto b = SigningKey::FromSeed(std::string(32, 's'));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->verify_key(), b->verify_key());
  EXPECT_EQ(a->key_id(), b->key_id());
  EXPECT_EQ(a->key_id().size(), 11u);
  // Ed25519 signatures are deterministic.
  EXPECT_EQ(a->Sign("m"), b->Sign("m"));
  auto bad = SigningKey::FromSeed("short");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(GetErrorInfo(bad.status()).details["field"], "seed");
}

TEST(SigningKeyTest, SaveWritesMode0600AndLoadRoundTrips) {
  testing::TempDir dir;
  SigningKey key = SigningKey::Generate();
  const std::string path = dir.File("signing.key");
  ASSERT_TRUE(key.SaveToFile(path, /*overwrite=*/false).ok());
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto loaded = SigningKey::LoadFromFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->verify_key(), key.verify_key());
  EXPECT_TRUE(key.verify_key().Verify("m", loaded->Sign("m")));
}

TEST(SigningKeyTest, SaveRefusesToReplaceAKeyUnlessAsked) {
  testing::TempDir dir;
  const std::string path = dir.File("signing.key");
  SigningKey first = SigningKey::Generate();
  ASSERT_TRUE(first.SaveToFile(path, false).ok());
  SigningKey second = SigningKey::Generate();
  absl::Status status = second.SaveToFile(path, false);
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kRequestConflict)) << status;
  EXPECT_EQ(SigningKey::LoadFromFile(path)->verify_key(), first.verify_key());
  ASSERT_TRUE(second.SaveToFile(path, true).ok());
  EXPECT_EQ(SigningKey::LoadFromFile(path)->verify_key(), second.verify_key());
}

TEST(SigningKeyTest, LoadErrors) {
  testing::TempDir dir;
  auto missing = SigningKey::LoadFromFile(dir.File("nope"));
  EXPECT_TRUE(HasErrorCode(missing.status(), ErrorCode::kResourceNotFound));

  SigningKey key = SigningKey::Generate();
  const std::string open = dir.File("open.key");
  ASSERT_TRUE(key.SaveToFile(open, false).ok());
  ::chmod(open.c_str(), 0640);
  auto readable = SigningKey::LoadFromFile(open);
  ASSERT_FALSE(readable.ok());
  EXPECT_NE(readable.status().message().find("chmod 600"), std::string::npos);

  for (std::string contents :
       {std::string("garbage"), std::string("drover-ed25519-seed-v1"),
        std::string("drover-ed25519-seed-v1 !!!"),
        "drover-ed25519-seed-v1 " + Base64Encode(std::string(31, 'x')),
        "other-magic " + Base64Encode(std::string(32, 'x'))}) {
    const std::string path = dir.Write("bad.key", contents, 0600);
    auto bad = SigningKey::LoadFromFile(path);
    ASSERT_FALSE(bad.ok()) << contents;
    ErrorInfo info = GetErrorInfo(bad.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], "path");
    EXPECT_EQ(info.details["value"], path);
  }
}

TEST(VerifyKeyTest, TextFormRoundTrips) {
  SigningKey key = SigningKey::Generate();
  std::string text = key.verify_key().ToString();
  EXPECT_EQ(text.rfind("ed25519:", 0), 0u);
  auto parsed = VerifyKey::Parse(" " + text + "\n", "public-keys[0]");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, key.verify_key());
  EXPECT_EQ(parsed->key_id(), key.key_id());
}

TEST(VerifyKeyTest, RejectsMalformedAndWeakKeys) {
  for (std::string text :
       {std::string("rsa:AAAA"), std::string("ed25519:***"),
        "ed25519:" + Base64UrlEncode(std::string(31, 'x')),
        // The identity point: every signature by a small-order key is suspect.
        "ed25519:" +
            Base64UrlEncode(std::string("\x01", 1) + std::string(31, '\0')),
        "ed25519:" + Base64UrlEncode(std::string(32, '\0'))}) {
    auto key = VerifyKey::Parse(text, "public-keys[1]");
    ASSERT_FALSE(key.ok()) << text;
    EXPECT_EQ(GetErrorInfo(key.status()).details["field"], "public-keys[1]");
  }
}

}  // namespace
}  // namespace drover::crypto
