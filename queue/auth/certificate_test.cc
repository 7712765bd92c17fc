#include "queue/auth/certificate.h"

#include <set>
#include <string>

#include "common/crypto/encoding.h"
#include "common/status.h"
#include "drover/v1/auth.pb.h"
#include "gtest/gtest.h"

namespace drover::queue::auth {
namespace {

using crypto::SigningKey;

class CertificateTest : public ::testing::Test {
 protected:
  CertificateTest()
      : key_(std::make_shared<SigningKey>(SigningKey::Generate())),
        other_key_(std::make_shared<SigningKey>(SigningKey::Generate())),
        clock_(absl::FromUnixSeconds(1700000000)),
        issuer_(key_, clock_),
        verifier_({key_->verify_key()}, clock_) {}

  CertificateRequest Request(absl::Duration lifetime = absl::Hours(1)) {
    return {"user/alice",
            "user/alice",
            {"queue:create-task:*", "secrets:get:a b"},
            clock_.Now(),
            clock_.Now() + lifetime};
  }

  std::string MustIssue(const CertificateRequest& request) {
    auto certificate = issuer_.Issue(request);
    EXPECT_TRUE(certificate.ok()) << certificate.status();
    return certificate.value_or("");
  }

  void ExpectRejected(const std::string& certificate,
                      const std::string& message_part) {
    auto claims = verifier_.Verify(certificate);
    ASSERT_FALSE(claims.ok()) << "accepted: " << certificate.substr(0, 40);
    EXPECT_EQ(claims.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_TRUE(
        HasErrorCode(claims.status(), ErrorCode::kAuthenticationFailed));
    EXPECT_NE(claims.status().message().find(message_part), std::string::npos)
        << claims.status();
  }

  static v1::SignedCertificate Decode(const std::string& certificate) {
    v1::SignedCertificate signed_certificate;
    signed_certificate.ParseFromString(
        crypto::Base64UrlDecode(certificate).value());
    return signed_certificate;
  }
  static std::string Encode(const v1::SignedCertificate& signed_certificate) {
    return crypto::Base64UrlEncode(signed_certificate.SerializeAsString());
  }

  std::shared_ptr<SigningKey> key_;
  std::shared_ptr<SigningKey> other_key_;
  FakeClock clock_;
  CertificateIssuer issuer_;
  CertificateVerifier verifier_;
};

TEST_F(CertificateTest, ValidCertificateVerifiesWithAllClaims) {
  CertificateRequest request = Request();
  std::string certificate = MustIssue(request);
  EXPECT_EQ(
      certificate.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"),
      std::string::npos)
      << "metadata-safe alphabet";
  auto claims = verifier_.Verify(certificate);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->version, 1u);
  EXPECT_EQ(claims->client_id, "user/alice");
  EXPECT_EQ(claims->issuer, "user/alice");
  EXPECT_EQ(claims->scopes, request.scopes);
  EXPECT_EQ(claims->start, request.start);
  EXPECT_EQ(claims->expiry, request.expiry);
  EXPECT_EQ(claims->nonce.size(), 16u);
  EXPECT_EQ(claims->key_id, key_->key_id());
}

TEST_F(CertificateTest, SubSecondTimesSurvive) {
  CertificateRequest request = Request();
  request.start += absl::Milliseconds(123);
  request.expiry += absl::Nanoseconds(456789);
  auto claims = verifier_.Verify(MustIssue(request));
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->start, request.start);
  EXPECT_EQ(claims->expiry, request.expiry);
}

TEST_F(CertificateTest, EveryCertificateIsUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i)
    EXPECT_TRUE(seen.insert(MustIssue(Request())).second);
}

TEST_F(CertificateTest, ExpiredIsRejectedWithoutGrace) {
  std::string certificate = MustIssue(Request(absl::Hours(1)));
  clock_.Advance(absl::Hours(1));
  EXPECT_TRUE(verifier_.Verify(certificate).ok()) << "valid up to expiry";
  clock_.Advance(absl::Seconds(1));
  ExpectRejected(certificate, "expired at 2023-11-14T23:13:20.000Z");
  auto claims = verifier_.Verify(certificate);
  ErrorInfo info = GetErrorInfo(claims.status());
  EXPECT_EQ(info.details["client_id"], "user/alice");
  EXPECT_EQ(info.details["now"], "2023-11-14T23:13:21.000Z");
}

TEST_F(CertificateTest, NotYetValidBeyondSkewIsRejected) {
  CertificateRequest request = Request();
  request.start = clock_.Now() + absl::Minutes(10);
  request.expiry = request.start + absl::Hours(1);
  std::string certificate = MustIssue(request);
  ExpectRejected(certificate, "not valid until");
  clock_.Advance(absl::Minutes(5) - absl::Seconds(1));
  ExpectRejected(certificate, "not valid until");
  clock_.Advance(absl::Seconds(1));
  EXPECT_TRUE(verifier_.Verify(certificate).ok()) << "5 minutes of skew";
}

TEST_F(CertificateTest, SmallClockSkewIsTolerated) {
  CertificateRequest request = Request();
  request.start = clock_.Now() + absl::Minutes(3);
  request.expiry = request.start + absl::Hours(1);
  EXPECT_TRUE(verifier_.Verify(MustIssue(request)).ok());
}

TEST_F(CertificateTest, TamperedPayloadIsRejected) {
  std::string certificate = MustIssue(Request());
  v1::SignedCertificate signed_certificate = Decode(certificate);

  // Flip a bit in the claims.
  v1::SignedCertificate flipped = signed_certificate;
  std::string claims = flipped.claims();
  claims[claims.size() / 2] ^= 0x01;
  flipped.set_claims(claims);
  ExpectRejected(Encode(flipped), "signature does not verify");

  // Escalate the scopes and extend the expiry, keeping the signature.
  v1::CertificateClaims parsed;
  ASSERT_TRUE(parsed.ParseFromString(signed_certificate.claims()));
  parsed.add_scopes("*");
  parsed.mutable_expiry()->set_seconds(parsed.expiry().seconds() + 86400);
  v1::SignedCertificate escalated = signed_certificate;
  escalated.set_claims(parsed.SerializeAsString());
  ExpectRejected(Encode(escalated), "signature does not verify");

  // A flipped signature bit.
  v1::SignedCertificate bad_signature = signed_certificate;
  std::string signature = bad_signature.signature();
  signature[3] ^= 0x40;
  bad_signature.set_signature(signature);
  ExpectRejected(Encode(bad_signature), "signature does not verify");

  // Every single-character change of the encoded form is rejected.
  for (size_t i = 0; i < certificate.size(); i += 7) {
    std::string changed = certificate;
    changed[i] = changed[i] == 'A' ? 'B' : 'A';
    EXPECT_FALSE(verifier_.Verify(changed).ok()) << i;
  }
}

TEST_F(CertificateTest, SignatureFromAnotherKeyIsRejected) {
  CertificateIssuer foreign(other_key_, clock_);
  auto certificate = foreign.Issue(Request());
  ASSERT_TRUE(certificate.ok());
  ExpectRejected(*certificate, "does not trust");
  EXPECT_EQ(
      GetErrorInfo(verifier_.Verify(*certificate).status()).details["key_id"],
      other_key_->key_id());

  // Claiming to be signed by our key does not help.
  v1::SignedCertificate forged = Decode(*certificate);
  forged.set_key_id(key_->key_id());
  ExpectRejected(Encode(forged), "signature does not verify");
}

TEST_F(CertificateTest, RotatedKeysStillVerify) {
  CertificateIssuer old_issuer(other_key_, clock_);
  auto old_certificate = old_issuer.Issue(Request());
  ASSERT_TRUE(old_certificate.ok());
  CertificateVerifier both({key_->verify_key(), other_key_->verify_key()},
                           clock_);
  EXPECT_TRUE(both.Verify(*old_certificate).ok());
  EXPECT_TRUE(both.Verify(MustIssue(Request())).ok());
}

TEST_F(CertificateTest, GarbageIsRejected) {
  ExpectRejected("", "empty");
  ExpectRejected("!!!not base64!!!", "base64url");
  ExpectRejected("QUJD==", "base64url");
  ExpectRejected(std::string(kMaxCertificateSize + 1, 'A'), "larger than");
  ExpectRejected(crypto::Base64UrlEncode("definitely not a protobuf \xff\xff"),
                 "not a signed Drover certificate");
  ExpectRejected(crypto::Base64UrlEncode(""), "empty");
  // Structurally valid but empty parts.
  v1::SignedCertificate empty;
  empty.set_key_id(key_->key_id());
  ExpectRejected(Encode(empty), "not a signed Drover certificate");
  // Signed by us but with nonsense claims (as if the key had signed
  // something else): still rejected.
  v1::SignedCertificate nonsense;
  nonsense.set_claims("\x08\x02");  // version 2
  nonsense.set_key_id(key_->key_id());
  nonsense.set_signature(key_->Sign(std::string("drover-certificate-v1\0", 22) +
                                    nonsense.claims()));
  ExpectRejected(Encode(nonsense), "version 2 is not supported");
  v1::CertificateClaims no_times;
  no_times.set_version(1);
  no_times.set_client_id("c");
  no_times.set_issuer("c");
  nonsense.set_claims(no_times.SerializeAsString());
  nonsense.set_signature(key_->Sign(std::string("drover-certificate-v1\0", 22) +
                                    nonsense.claims()));
  ExpectRejected(Encode(nonsense), "validity window is malformed");
}

TEST_F(CertificateTest, IssueEnforcesTheLifetimeLimit) {
  EXPECT_TRUE(issuer_.Issue(Request(kMaxCertificateLifetime)).ok());
  auto too_long =
      issuer_.Issue(Request(kMaxCertificateLifetime + absl::Seconds(1)));
  ASSERT_FALSE(too_long.ok());
  ErrorInfo info = GetErrorInfo(too_long.status());
  EXPECT_EQ(info.code, ErrorCode::kInputError);
  EXPECT_EQ(info.details["field"], "expiry");
  EXPECT_NE(info.message.find("at most 31 days"), std::string::npos);
}

TEST_F(CertificateTest, IssueRejectsBadRequests) {
  struct Case {
    std::string name;
    CertificateRequest request;
    std::string field;
  };
  CertificateRequest base = Request();
  std::vector<Case> cases;
  cases.push_back({"EmptyClient", base, "client_id"});
  cases.back().request.client_id = "";
  cases.push_back({"SpaceInClient", base, "client_id"});
  cases.back().request.client_id = "user alice";
  cases.push_back({"LongClient", base, "client_id"});
  cases.back().request.client_id = std::string(kMaxClientIdLength + 1, 'c');
  cases.push_back({"BadIssuer", base, "issuer"});
  cases.back().request.issuer = "iss\n";
  cases.push_back({"BadScope", base, "scopes[1]"});
  cases.back().request.scopes = {"ok", "tab\there"};
  cases.push_back({"ExpiryBeforeStart", base, "expiry"});
  cases.back().request.expiry = base.start - absl::Seconds(1);
  cases.push_back({"ExpiryEqualsStart", base, "expiry"});
  cases.back().request.expiry = base.start;
  cases.push_back({"AlreadyExpired", base, "expiry"});
  cases.back().request.start = clock_.Now() - absl::Hours(2);
  cases.back().request.expiry = clock_.Now() - absl::Hours(1);
  cases.push_back({"TooManyScopes", base, "scopes"});
  for (int i = 0; i < 2000; ++i) {
    cases.back().request.scopes.push_back(
        "queue:route:" + std::string(40, 'r') + std::to_string(i));
  }
  for (const Case& c : cases) {
    auto certificate = issuer_.Issue(c.request);
    ASSERT_FALSE(certificate.ok()) << c.name;
    ErrorInfo info = GetErrorInfo(certificate.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError) << c.name;
    EXPECT_EQ(info.details["field"], c.field) << c.name;
  }
}

TEST(ValidateClientIdTest, TaskClusterCharacterSet) {
  for (std::string id : {"user/alice", "task-client/abc_DEF-1/0/on/g/w/until/1",
                         "a!b@c:d.e+f|g"}) {
    EXPECT_TRUE(ValidateClientId("client_id", id).ok()) << id;
  }
  for (std::string id : {"", "a b", "a*", "a#b", "ü"}) {
    EXPECT_FALSE(ValidateClientId("client_id", id).ok()) << id;
  }
}

}  // namespace
}  // namespace drover::queue::auth
