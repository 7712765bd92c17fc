#include "common/crypto/keyring.h"

#include <sys/stat.h>

#include <string>

#include "common/crypto/encoding.h"
#include "common/crypto/test_util.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::crypto {
namespace {

// Deterministic keys so tests can build "the same id, a different key".
std::string KeyB64(char fill) { return Base64Encode(std::string(32, fill)); }

KeyRing MustParse(const std::string& text) {
  auto ring = KeyRing::Parse(text, "crypto-keys");
  EXPECT_TRUE(ring.ok()) << ring.status();
  return std::move(ring).value();
}

constexpr AssociatedData kSecretValue{"secrets", "value", "project/a"};

TEST(KeyRingParseTest, LastKeyEncrypts) {
  KeyRing ring = MustParse("k1:" + KeyB64('a') + ",k2:" + KeyB64('b'));
  EXPECT_EQ(ring.current_key_id(), "k2");
  EXPECT_EQ(ring.key_ids(), (std::vector<std::string>{"k1", "k2"}));
  EXPECT_TRUE(ring.HasKey("k1"));
  EXPECT_FALSE(ring.HasKey("k3"));
  auto value = ring.Encrypt("x", kSecretValue);
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(KeyIdOf(*value).value(), "k2");
}

TEST(KeyRingParseTest, AcceptsSpacesNewlinesAndComments) {
  KeyRing ring = MustParse("  # rotated 2024\n2023.a:" + KeyB64('a') +
                           "\n\n 2024_b:" + KeyB64('b') + " # newest\r\n");
  EXPECT_EQ(ring.key_ids(), (std::vector<std::string>{"2023.a", "2024_b"}));
}

struct BadEntry {
  std::string name;
  std::string text;
  std::string field;
  std::string value;
  std::string message_part;
};

class KeyRingBadEntryTest : public ::testing::TestWithParam<BadEntry> {};

TEST_P(KeyRingBadEntryTest, NamesTheEntryAndNeverEchoesKeyMaterial) {
  const BadEntry& bad = GetParam();
  auto ring = KeyRing::Parse(bad.text, "crypto-keys");
  ASSERT_FALSE(ring.ok());
  ErrorInfo info = GetErrorInfo(ring.status());
  EXPECT_EQ(info.code, ErrorCode::kInputError);
  EXPECT_EQ(info.details["field"], bad.field);
  EXPECT_EQ(info.details["value"], bad.value);
  EXPECT_NE(info.message.find(bad.message_part), std::string::npos)
      << info.message;
  // No base64 key material in message or details.
  for (const char* key : {"YWFh", "YmJi", "Y2Nj"}) {
    EXPECT_EQ(info.message.find(key), std::string::npos);
    for (auto& [k, v] : info.details) EXPECT_EQ(v.find(key), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Entries, KeyRingBadEntryTest,
    ::testing::Values(
        BadEntry{"Empty", " ,\n", "crypto-keys", "", "no key entries"},
        BadEntry{"NoColon", KeyB64('a'), "crypto-keys[1]", "", "no ':'"},
        BadEntry{"EmptyId", ":" + KeyB64('a'), "crypto-keys[1]", "",
                 "invalid key id"},
        BadEntry{"BadIdChars", "k/1:" + KeyB64('a'), "crypto-keys[1]", "k/1",
                 "invalid key id"},
        BadEntry{"LongId", std::string(33, 'k') + ":" + KeyB64('a'),
                 "crypto-keys[1]", std::string(33, 'k'), "invalid key id"},
        BadEntry{
            "Duplicate",
            "k1:" + KeyB64('a') + ",k2:" + KeyB64('b') + ",k1:" + KeyB64('c'),
            "crypto-keys[3]", "k1", "duplicate"},
        BadEntry{"BadBase64", "k1:" + KeyB64('a') + ",k2:not*base64",
                 "crypto-keys[2]", "k2", "base64"},
        BadEntry{"Unpadded", "k1:YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE",
                 "crypto-keys[1]", "k1", "base64"},
        BadEntry{"ShortKey", "k1:" + Base64Encode(std::string(16, 'a')),
                 "crypto-keys[1]", "k1", "32 bytes, got 16"},
        BadEntry{"LongKey", "k1:" + Base64Encode(std::string(64, 'a')),
                 "crypto-keys[1]", "k1", "32 bytes, got 64"}),
    [](const auto& info) { return info.param.name; });

TEST(KeyRingLoadTest, FromInlineKeys) {
  KeyRingOptions options;
  options.keys = "k1:" + KeyB64('a');
  auto ring = KeyRing::Load(options);
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->current_key_id(), "k1");
}

TEST(KeyRingLoadTest, FromKeyFileWithLineNumbersInErrors) {
  testing::TempDir dir;
  KeyRingOptions options;
  options.key_file =
      dir.Write("keys", "# keys\nk1:" + KeyB64('a') + "\nk2:short\n", 0600);
  auto ring = KeyRing::Load(options);
  ASSERT_FALSE(ring.ok());
  ErrorInfo info = GetErrorInfo(ring.status());
  EXPECT_EQ(info.details["field"], options.key_file + ":3");
  EXPECT_EQ(info.details["value"], "k2");

  options.key_file = dir.Write(
      "good", "k1:" + KeyB64('a') + "\nk2:" + KeyB64('b') + "\n", 0600);
  auto good = KeyRing::Load(options);
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ(good->current_key_id(), "k2");
}

TEST(KeyRingLoadTest, RefusesWorldReadableKeyFile) {
  testing::TempDir dir;
  KeyRingOptions options;
  options.key_file = dir.Write("keys", "k1:" + KeyB64('a'), 0644);
  auto ring = KeyRing::Load(options);
  ASSERT_FALSE(ring.ok());
  EXPECT_TRUE(HasErrorCode(ring.status(), ErrorCode::kInputError));
  EXPECT_NE(ring.status().message().find("0644"), std::string::npos)
      << ring.status();
}

TEST(KeyRingLoadTest, NeitherOrBothIsAnError) {
  KeyRingOptions options;
  auto none = KeyRing::Load(options);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(GetErrorInfo(none.status()).details["field"], "crypto-keys");
  options.keys = "k1:" + KeyB64('a');
  options.key_file = "/nonexistent";
  auto both = KeyRing::Load(options);
  ASSERT_FALSE(both.ok());
  EXPECT_EQ(GetErrorInfo(both.status()).details["field"], "crypto-key-file");
}

TEST(KeyRingLoadTest, CliOptionsReadTheEnvironment) {
  ::setenv("DROVER_CRYPTO_KEYS", ("env:" + KeyB64('e')).c_str(), 1);
  CLI::App app;
  KeyRingOptions options;
  AddKeyRingOptions(app, options);
  app.parse(std::vector<std::string>{});
  ::unsetenv("DROVER_CRYPTO_KEYS");
  auto ring = KeyRing::Load(options);
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->current_key_id(), "env");
}

TEST(KeyRingLoadTest, GeneratedEntriesParse) {
  auto a = KeyRing::GenerateEntry("gen-1");
  auto b = KeyRing::GenerateEntry("gen-2");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->substr(6), b->substr(6));
  KeyRing ring = MustParse(*a + "," + *b);
  EXPECT_EQ(ring.current_key_id(), "gen-2");
  EXPECT_FALSE(KeyRing::GenerateEntry("bad id").ok());
}

class KeyRingCipherTest : public ::testing::Test {
 protected:
  KeyRing ring_ = MustParse("k1:" + KeyB64('a'));
};

TEST_F(KeyRingCipherTest, RoundTrips) {
  for (std::string plaintext :
       {std::string(), std::string("{\"password\":\"hunter2\"}"),
        std::string("\0binary\xff", 8), std::string(1 << 20, 'z')}) {
    auto value = ring_.Encrypt(plaintext, kSecretValue);
    ASSERT_TRUE(value.ok()) << value.status();
    EXPECT_EQ(value->size(), 2 + 2 + 24 + plaintext.size() + 16);
    auto back = ring_.Decrypt(*value, kSecretValue);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(*back, plaintext);
  }
}

TEST_F(KeyRingCipherTest, CiphertextHidesPlaintextAndIsRandomised) {
  const std::string secret = "correct horse battery staple";
  auto a = ring_.Encrypt(secret, kSecretValue);
  auto b = ring_.Encrypt(secret, kSecretValue);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->find(secret), std::string::npos);
  EXPECT_EQ(a->find("horse"), std::string::npos);
}

TEST_F(KeyRingCipherTest, EveryFlippedByteIsDetected) {
  auto value = ring_.Encrypt("top secret value", kSecretValue);
  ASSERT_TRUE(value.ok());
  for (size_t i = 0; i < value->size(); ++i) {
    for (unsigned char mask : {0x01, 0x80}) {
      std::string tampered = *value;
      tampered[i] = static_cast<char>(tampered[i] ^ mask);
      auto result = ring_.Decrypt(tampered, kSecretValue);
      ASSERT_FALSE(result.ok()) << "byte " << i << " mask " << int(mask);
      EXPECT_EQ(GetErrorInfo(result.status()).code, ErrorCode::kInternalError);
    }
  }
}

TEST_F(KeyRingCipherTest, AuthenticationFailureMessageIsClear) {
  auto value = ring_.Encrypt("v", kSecretValue);
  ASSERT_TRUE(value.ok());
  std::string tampered = *value;
  tampered.back() ^= 1;
  auto result = ring_.Decrypt(tampered, kSecretValue);
  ASSERT_FALSE(result.ok());
  ErrorInfo info = GetErrorInfo(result.status());
  EXPECT_NE(info.message.find("authentication failed"), std::string::npos);
  EXPECT_NE(info.message.find("secrets.value of row 'project/a'"),
            std::string::npos)
      << info.message;
  EXPECT_EQ(info.details["table"], "secrets");
  EXPECT_EQ(info.details["column"], "value");
  EXPECT_EQ(info.details["primary_key"], "project/a");
  EXPECT_EQ(info.details["key_id"], "k1");
}

TEST_F(KeyRingCipherTest, ValueMovedToAnotherRowColumnOrTableFails) {
  auto value = ring_.Encrypt("alice's secret", kSecretValue);
  ASSERT_TRUE(value.ok());
  EXPECT_FALSE(ring_.Decrypt(*value, {"secrets", "value", "project/b"}).ok());
  EXPECT_FALSE(ring_.Decrypt(*value, {"secrets", "other", "project/a"}).ok());
  EXPECT_FALSE(ring_.Decrypt(*value, {"workers", "value", "project/a"}).ok());
  EXPECT_TRUE(ring_.Decrypt(*value, kSecretValue).ok());
}

TEST_F(KeyRingCipherTest, AssociatedDataPartsCannotBeReshuffled) {
  auto value = ring_.Encrypt("v", {"ab", "c", "d"});
  ASSERT_TRUE(value.ok());
  EXPECT_FALSE(ring_.Decrypt(*value, {"a", "bc", "d"}).ok());
  EXPECT_FALSE(ring_.Decrypt(*value, {"ab", "cd", "d"}).ok());
}

TEST_F(KeyRingCipherTest, EmptyAssociatedDataPartIsAnInputError) {
  for (AssociatedData ad :
       {AssociatedData{"", "c", "k"}, AssociatedData{"t", "", "k"},
        AssociatedData{"t", "c", ""}}) {
    auto value = ring_.Encrypt("v", ad);
    ASSERT_FALSE(value.ok());
    EXPECT_TRUE(HasErrorCode(value.status(), ErrorCode::kInputError));
    EXPECT_FALSE(ring_.Decrypt("xx", ad).ok());
  }
}

TEST_F(KeyRingCipherTest, WrongKeyUnderTheSameIdFails) {
  auto value = ring_.Encrypt("v", kSecretValue);
  ASSERT_TRUE(value.ok());
  KeyRing other = MustParse("k1:" + KeyB64('b'));
  auto result = other.Decrypt(*value, kSecretValue);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("authentication failed"),
            std::string::npos);
}

TEST_F(KeyRingCipherTest, UnknownKeyIdIsNamed) {
  KeyRing other = MustParse("k9:" + KeyB64('a'));
  auto value = other.Encrypt("v", kSecretValue);
  ASSERT_TRUE(value.ok());
  auto result = ring_.Decrypt(*value, kSecretValue);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("'k9', which is not configured"),
            std::string::npos)
      << result.status();
  EXPECT_EQ(GetErrorInfo(result.status()).details["key_id"], "k9");
}

TEST_F(KeyRingCipherTest, MalformedValuesAreErrors) {
  auto value = ring_.Encrypt("v", kSecretValue);
  ASSERT_TRUE(value.ok());
  for (size_t n = 0; n < value->size(); ++n) {
    EXPECT_FALSE(ring_.Decrypt(value->substr(0, n), kSecretValue).ok()) << n;
  }
  std::string wrong_version = *value;
  wrong_version[0] = 2;
  auto result = ring_.Decrypt(wrong_version, kSecretValue);
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.status().message().find("unknown format version 2"),
            std::string::npos);
  EXPECT_FALSE(
      ring_.Decrypt("plain text that was never encrypted", kSecretValue).ok());
}

TEST(KeyIdOfTest, ReadsTheIdAndRejectsGarbage) {
  KeyRing ring = MustParse("old:" + KeyB64('a') + ",new-2:" + KeyB64('b'));
  auto value = ring.Encrypt("v", kSecretValue);
  ASSERT_TRUE(value.ok());
  EXPECT_EQ(KeyIdOf(*value).value(), "new-2");
  for (std::string garbage :
       {std::string(), std::string("\x01"),
        std::string("\x01\x05"
                    "abc"),
        std::string("\x07\x01k") + std::string(60, 'x'),
        std::string("\x01\x00", 2) + std::string(60, 'x')}) {
    auto id = KeyIdOf(garbage);
    ASSERT_FALSE(id.ok());
    EXPECT_EQ(GetErrorInfo(id.status()).details["field"], "ciphertext");
  }
}

TEST(KeyRotationTest, ReencryptMovesValuesToTheNewestKey) {
  KeyRing before = MustParse("k1:" + KeyB64('a'));
  auto old_value = before.Encrypt("payload", kSecretValue);
  ASSERT_TRUE(old_value.ok());

  KeyRing during = MustParse("k1:" + KeyB64('a') + ",k2:" + KeyB64('b'));
  EXPECT_EQ(during.Decrypt(*old_value, kSecretValue).value(), "payload");
  auto rotated = during.Reencrypt(*old_value, kSecretValue);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  ASSERT_TRUE(rotated->has_value());
  EXPECT_EQ(KeyIdOf(**rotated).value(), "k2");
  auto again = during.Reencrypt(**rotated, kSecretValue);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "already under the newest key";

  KeyRing after = MustParse("k2:" + KeyB64('b'));
  EXPECT_EQ(after.Decrypt(**rotated, kSecretValue).value(), "payload");
  EXPECT_FALSE(after.Decrypt(*old_value, kSecretValue).ok());
  EXPECT_FALSE(after.Reencrypt(*old_value, kSecretValue).ok());
}

TEST(KeyRotationTest, ReencryptRefusesTamperedValues) {
  KeyRing ring = MustParse("k1:" + KeyB64('a') + ",k2:" + KeyB64('b'));
  KeyRing old_ring = MustParse("k1:" + KeyB64('a'));
  auto value = old_ring.Encrypt("payload", kSecretValue);
  ASSERT_TRUE(value.ok());
  std::string tampered = *value;
  tampered[10] ^= 4;
  EXPECT_FALSE(ring.Reencrypt(tampered, kSecretValue).ok());
  EXPECT_FALSE(ring.Reencrypt(*value, {"secrets", "value", "other"}).ok());
}

}  // namespace
}  // namespace drover::crypto
