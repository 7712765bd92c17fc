// The SigV4 signer against AWS's published vectors: the aws-sig-v4-test-suite
// (generic service, 20150830T123600Z) and the worked S3 examples of the S3
// API reference (examplebucket, 20130524T000000Z). Every expected value
// below is AWS's, none is this signer's own output.
#include "queue/blobstore/s3/sigv4.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace drover::queue::blobstore::s3 {
namespace {

// "20150830T123600Z" (absl's %Y would swallow every digit).
absl::Time ParseAmzDate(const std::string& text) {
  auto field = [&text](size_t pos, size_t len) {
    return std::stoi(text.substr(pos, len));
  };
  absl::Time time = absl::FromCivil(
      absl::CivilSecond(field(0, 4), field(4, 2), field(6, 2), field(9, 2),
                        field(11, 2), field(13, 2)),
      absl::UTCTimeZone());
  EXPECT_EQ(AmzDate(time), text);
  return time;
}

// ---------------------------------------------------------------------------
// aws-sig-v4-test-suite.

constexpr char kSuiteAccessKey[] = "AKIDEXAMPLE";
constexpr char kSuiteSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kSuiteDate[] = "20150830T123600Z";
constexpr char kUnreserved[] =
    "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr char kVanillaSignature[] =
    "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

struct SuiteVector {
  std::string name;
  std::string method = "GET";
  std::string path = "/";
  NameValues query;
  // Besides Host and X-Amz-Date, which every vector has.
  NameValues headers;
  std::string body;
  std::string signed_headers = "host;x-amz-date";
  // Hash of the canonical request (last line of the .sts file); empty when
  // not checked.
  std::string canonical_request_sha256;
  std::string signature;
};

std::vector<SuiteVector> SuiteVectors() {
  return {
      {.name = "get-vanilla",
       .canonical_request_sha256 =
           "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
       .signature = kVanillaSignature},
      {.name = "get-vanilla-empty-query-key",
       .query = {{"Param1", "value1"}},
       .canonical_request_sha256 =
           "1e24db194ed7d0eec2de28d7369675a243488e08526e8c1c73571282f7c517ab",
       .signature =
           "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
      // The suite's two repeated-key cases; published copies disagree on
      // which of them is "order-key" and which "order-value", never on the
      // request/signature pairs.
      {.name = "get-vanilla-query-order-key",
       .query = {{"Param1", "value2"}, {"Param1", "Value1"}},
       .canonical_request_sha256 =
           "704b4cef673542d84cdff252633f065e8daeba5f168b77116f8b1bcaf3d38f89",
       .signature =
           "eedbc4e291e521cf13422ffca22be7d2eb8146eecf653089df300a15b2382bd1"},
      {.name = "get-vanilla-query-order-value",
       .query = {{"Param1", "value2"}, {"Param1", "value1"}},
       .canonical_request_sha256 =
           "c968629d70850097a2d8781c9bf7edcb988b04cac14cca9be4acc3595f884606",
       .signature =
           "5772eed61e12b33fae39ee5e7012498b51d56abc0abb7c60486157bd471c4694"},
      {.name = "get-vanilla-query-order-key-case",
       .query = {{"Param2", "value2"}, {"Param1", "value1"}},
       .canonical_request_sha256 =
           "816cd5b414d056048ba4f7c5386d6e0533120fb1fcfa93762cf0fc39e2cf19e0",
       .signature =
           "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
      {.name = "get-vanilla-query-unreserved",
       .query = {{kUnreserved, kUnreserved}},
       .canonical_request_sha256 =
           "c30d4703d9f799439be92736156d47ccfb2d879ddf56f5befa6d1d6aab979177",
       .signature =
           "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
      {.name = "get-vanilla-utf8-query",
       .query = {{"\xE1\x88\xB4", "bar"}},
       .canonical_request_sha256 =
           "eb30c5bed55734080471a834cc727ae56beb50e5f39d1bff6d0d38cb192a7073",
       .signature =
           "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
      {.name = "get-unreserved",
       .path = absl::StrCat("/", kUnreserved),
       .canonical_request_sha256 =
           "6a968768eefaa713e2a6b16b589a8ea192661f098f37349f4e2c0082757446f9",
       .signature =
           "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
      {.name = "get-header-key-duplicate",
       .headers = {{"My-Header1", "value2"},
                   {"My-Header1", "value2"},
                   {"My-Header1", "value1"}},
       .signed_headers = "host;my-header1;x-amz-date",
       .canonical_request_sha256 =
           "dc7f04a3abfde8d472b0ab1a418b741b7c67174dad1551b4117b15527fbe966c",
       .signature =
           "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
      {.name = "get-header-value-order",
       .headers = {{"My-Header1", "value4"},
                   {"My-Header1", "value1"},
                   {"My-Header1", "value3"},
                   {"My-Header1", "value2"}},
       .signed_headers = "host;my-header1;x-amz-date",
       .canonical_request_sha256 =
           "31ce73cd3f3d9f66977ad3dd957dc47af14df92fcd8509f59b349e9137c58b86",
       .signature =
           "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
      {.name = "get-header-value-trim",
       .headers = {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
       .signed_headers = "host;my-header1;my-header2;x-amz-date",
       .canonical_request_sha256 =
           "a726db9b0df21c14f559d0a978e563112acb1b9e05476f0a6a1c7d68f28605c7",
       .signature =
           "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
      // normalize-path group.
      {.name = "get-relative",
       .path = "/example/..",
       .signature = kVanillaSignature},
      {.name = "get-relative-relative",
       .path = "/example1/example2/../..",
       .signature = kVanillaSignature},
      {.name = "get-slash", .path = "//", .signature = kVanillaSignature},
      {.name = "get-slash-dot-slash",
       .path = "/./",
       .signature = kVanillaSignature},
      {.name = "get-slash-pointless-dot",
       .path = "/./example",
       .signature =
           "ef75d96142cf21edca26f06005da7988e4f8dc83a165a80865db7089db637ec5"},
      {.name = "get-slashes",
       .path = "//example//",
       .signature =
           "9a624bd73a37c9a373b5312afbebe7a714a789de108f0bdfe846570885f57e84"},
      {.name = "post-vanilla",
       .method = "POST",
       .canonical_request_sha256 =
           "553f88c9e4d10fc9e109e2aeb65f030801b70c2f6468faca261d401ae622fc87",
       .signature =
           "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
      {.name = "post-vanilla-query",
       .method = "POST",
       .query = {{"Param1", "value1"}},
       .canonical_request_sha256 =
           "9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
       .signature =
           "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
      {.name = "post-header-key-sort",
       .method = "POST",
       .headers = {{"My-Header1", "value1"}},
       .signed_headers = "host;my-header1;x-amz-date",
       .canonical_request_sha256 =
           "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65",
       .signature =
           "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
      {.name = "post-header-value-case",
       .method = "POST",
       .headers = {{"My-Header1", "VALUE1"}},
       .signed_headers = "host;my-header1;x-amz-date",
       .canonical_request_sha256 =
           "d51ced243e649e3de6ef63afbbdcbca03131a21a7103a1583706a64618606a93",
       .signature =
           "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
      // The .authz and .sts of this case sign Content-Type but not
      // Content-Length (its .creq disagrees with both); the signature is the
      // published one.
      {.name = "post-x-www-form-urlencoded",
       .method = "POST",
       .headers = {{"Content-Type", "application/x-www-form-urlencoded"}},
       .body = "Param1=value1",
       .signed_headers = "content-type;host;x-amz-date",
       .canonical_request_sha256 =
           "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
       .signature =
           "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
  };
}

class SuiteTest : public ::testing::TestWithParam<SuiteVector> {};

TEST_P(SuiteTest, MatchesPublishedSignature) {
  const SuiteVector& v = GetParam();
  SigV4Request request;
  request.method = v.method;
  request.path = v.path;
  request.query = v.query;
  request.headers = {{"Host", "example.amazonaws.com"},
                     {"X-Amz-Date", kSuiteDate}};
  request.headers.insert(request.headers.end(), v.headers.begin(),
                         v.headers.end());
  request.payload_sha256 = HexEncode(Sha256Of(v.body));
  request.normalize_path = true;
  SigningScope scope{"us-east-1", "service", ParseAmzDate(kSuiteDate)};

  std::string string_to_sign = StringToSign(scope, CanonicalRequest(request));
  if (!v.canonical_request_sha256.empty()) {
    EXPECT_EQ(string_to_sign,
              absl::StrCat("AWS4-HMAC-SHA256\n", kSuiteDate,
                           "\n20150830/us-east-1/service/aws4_request\n",
                           v.canonical_request_sha256));
  }
  EXPECT_EQ(
      AuthorizationHeader(request, {kSuiteAccessKey, kSuiteSecret, ""}, scope),
      absl::StrCat("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/"
                   "us-east-1/service/aws4_request, SignedHeaders=",
                   v.signed_headers, ", Signature=", v.signature));
}

INSTANTIATE_TEST_SUITE_P(AwsSigV4TestSuite, SuiteTest,
                         ::testing::ValuesIn(SuiteVectors()),
                         [](const ::testing::TestParamInfo<SuiteVector>& info) {
                           std::string name = info.param.name;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

TEST(SigV4CanonicalTest, PublishedCanonicalRequests) {
  SigV4Request request;
  request.method = "GET";
  request.query = {{"Param1", "value2"}, {"Param1", "Value1"}};
  request.headers = {{"Host", "example.amazonaws.com"},
                     {"X-Amz-Date", kSuiteDate}};
  EXPECT_EQ(CanonicalRequest(request),
            "GET\n/\nParam1=Value1&Param1=value2\n"
            "host:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  request.query = {};
  request.headers = {{"Host", "example.amazonaws.com"},
                     {"My-Header1", " value1"},
                     {"My-Header2", " \"a   b   c\""},
                     {"X-Amz-Date", kSuiteDate}};
  EXPECT_EQ(CanonicalRequest(request),
            "GET\n/\n\nhost:example.amazonaws.com\nmy-header1:value1\n"
            "my-header2:\"a b c\"\nx-amz-date:20150830T123600Z\n\n"
            "host;my-header1;my-header2;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

  request.headers = {{"Host", "example.amazonaws.com"},
                     {"X-Amz-Date", kSuiteDate}};
  request.query = {{"\xE1\x88\xB4", "bar"}};
  EXPECT_EQ(CanonicalQueryString(request.query), "%E1%88%B4=bar");
}

// AWS General Reference, "Deriving the signing key" example.
TEST(SigV4SigningKeyTest, PublishedDerivation) {
  SigningScope scope{"us-east-1", "iam", ParseAmzDate("20120215T000000Z")};
  EXPECT_EQ(HexEncode(SigningKey(kSuiteSecret, scope)),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

// ---------------------------------------------------------------------------
// S3 API reference, "Signature Calculations for the Authorization Header"
// and "Authenticating Requests: Using Query Parameters".

constexpr char kS3AccessKey[] = "AKIAIOSFODNN7EXAMPLE";
constexpr char kS3Secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
constexpr char kS3Date[] = "20130524T000000Z";
constexpr char kS3Host[] = "examplebucket.s3.amazonaws.com";

SigningScope S3Scope() { return {"us-east-1", "s3", ParseAmzDate(kS3Date)}; }

std::string S3Authorization(const std::string& signed_headers,
                            const std::string& signature) {
  // Ours separates the components with ", "; S3's examples show ",". Both
  // are accepted by S3; the signed content is identical.
  return absl::StrCat(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/"
      "s3/aws4_request, SignedHeaders=",
      signed_headers, ", Signature=", signature);
}

TEST(SigV4S3ExamplesTest, GetObjectWithRange) {
  SigV4Request request;
  request.method = "GET";
  request.path = "/test.txt";
  request.headers = {{"Host", kS3Host},
                     {"Range", "bytes=0-9"},
                     {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)},
                     {"x-amz-date", kS3Date}};
  EXPECT_EQ(CanonicalRequest(request),
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\n"
            "range:bytes=0-9\nx-amz-content-sha256:"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n\n"
            "host;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(StringToSign(S3Scope(), CanonicalRequest(request)),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(
      AuthorizationHeader(request, {kS3AccessKey, kS3Secret, ""}, S3Scope()),
      S3Authorization(
          "host;range;x-amz-content-sha256;x-amz-date",
          "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"));
}

TEST(SigV4S3ExamplesTest, PutObject) {
  const std::string payload = "Welcome to Amazon S3.";
  const std::string payload_sha =
      "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
  ASSERT_EQ(HexEncode(Sha256Of(payload)), payload_sha);
  SigV4Request request;
  request.method = "PUT";
  request.path = "/test$file.text";
  request.headers = {{"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                     {"Host", kS3Host},
                     {"x-amz-date", kS3Date},
                     {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                     {"x-amz-content-sha256", payload_sha}};
  request.payload_sha256 = payload_sha;
  EXPECT_EQ(CanonicalUri(request.path, false), "/test%24file.text");
  EXPECT_EQ(StringToSign(S3Scope(), CanonicalRequest(request)),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
  EXPECT_EQ(
      AuthorizationHeader(request, {kS3AccessKey, kS3Secret, ""}, S3Scope()),
      S3Authorization(
          "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
          "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"));
}

TEST(SigV4S3ExamplesTest, GetBucketLifecycle) {
  SigV4Request request;
  request.method = "GET";
  request.path = "/";
  request.query = {{"lifecycle", ""}};
  request.headers = {
      {"Host", kS3Host},
      {"x-amz-date", kS3Date},
      {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)}};
  EXPECT_EQ(StringToSign(S3Scope(), CanonicalRequest(request)),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(
      AuthorizationHeader(request, {kS3AccessKey, kS3Secret, ""}, S3Scope()),
      S3Authorization(
          "host;x-amz-content-sha256;x-amz-date",
          "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"));
}

TEST(SigV4S3ExamplesTest, ListObjects) {
  SigV4Request request;
  request.method = "GET";
  request.path = "/";
  request.query = {{"prefix", "J"}, {"max-keys", "2"}};
  request.headers = {
      {"Host", kS3Host},
      {"x-amz-date", kS3Date},
      {"x-amz-content-sha256", std::string(kEmptyPayloadSha256)}};
  EXPECT_EQ(StringToSign(S3Scope(), CanonicalRequest(request)),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(
      AuthorizationHeader(request, {kS3AccessKey, kS3Secret, ""}, S3Scope()),
      S3Authorization(
          "host;x-amz-content-sha256;x-amz-date",
          "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"));
}

TEST(SigV4S3ExamplesTest, PresignedGetObject) {
  SigV4Request request;
  request.method = "GET";
  request.path = "/test.txt";
  request.headers = {{"host", kS3Host}};
  request.payload_sha256 = std::string(kUnsignedPayload);
  EXPECT_EQ(
      PresignedQueryString(request, {kS3AccessKey, kS3Secret, ""}, S3Scope(),
                           absl::Hours(24)),
      "X-Amz-Algorithm=AWS4-HMAC-SHA256"
      "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
      "aws4_request"
      "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400"
      "&X-Amz-SignedHeaders=host"
      "&X-Amz-Signature="
      "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
}

TEST(SigV4Test, UriEncode) {
  EXPECT_EQ(UriEncode("a b/c+d=e&f~g", true), "a%20b/c%2Bd%3De%26f~g");
  EXPECT_EQ(UriEncode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(UriEncode("\xE1\x88\xB4", false), "%E1%88%B4");
}

TEST(SigV4Test, SessionTokenIsSignedIntoPresignedUrls) {
  SigV4Request request;
  request.method = "GET";
  request.path = "/k";
  request.headers = {{"host", kS3Host}};
  request.payload_sha256 = std::string(kUnsignedPayload);
  std::string with_token = PresignedQueryString(
      request, {kS3AccessKey, kS3Secret, "tok/en+"}, S3Scope(), absl::Hours(1));
  EXPECT_NE(with_token.find("&X-Amz-Security-Token=tok%2Fen%2B&"),
            std::string::npos)
      << with_token;
  std::string without = PresignedQueryString(
      request, {kS3AccessKey, kS3Secret, ""}, S3Scope(), absl::Hours(1));
  EXPECT_NE(with_token.substr(with_token.find("X-Amz-Signature=")),
            without.substr(without.find("X-Amz-Signature=")));
}

}  // namespace
}  // namespace drover::queue::blobstore::s3
