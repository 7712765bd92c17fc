// Image reference parsing: what the docker engine accepts as payload.image.
#include "engines/docker/image_reference.h"

#include <string>

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::engines::docker {
namespace {

const std::string kDigest = "sha256:" + std::string(64, 'a');

TEST(ImageReferenceTest, PlainNameDefaultsToLatest) {
  auto ref = ParseImageReference("busybox", "payload.image");
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->domain, "");
  EXPECT_EQ(ref->path, "busybox");
  EXPECT_EQ(ref->tag, "");
  EXPECT_EQ(ref->PullTag(), "latest");
  EXPECT_EQ(ref->Canonical(), "busybox:latest");
  EXPECT_EQ(ref->Registry(), "docker.io");
}

TEST(ImageReferenceTest, RegistryWithPortPathAndTag) {
  auto ref = ParseImageReference("127.0.0.1:5000/drover-test/busybox:v1.2_x",
                                 "payload.image");
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->domain, "127.0.0.1:5000");
  EXPECT_EQ(ref->path, "drover-test/busybox");
  EXPECT_EQ(ref->tag, "v1.2_x");
  EXPECT_EQ(ref->Repository(), "127.0.0.1:5000/drover-test/busybox");
  EXPECT_EQ(ref->Registry(), "127.0.0.1:5000");
  EXPECT_EQ(ref->Canonical(), "127.0.0.1:5000/drover-test/busybox:v1.2_x");
}

TEST(ImageReferenceTest, LocalhostIsADomainAndPlainOrgIsNot) {
  auto local = ParseImageReference("localhost/tool", "f");
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(local->domain, "localhost");
  auto org = ParseImageReference("drover-test/busybox", "f");
  ASSERT_TRUE(org.ok());
  EXPECT_EQ(org->domain, "");
  EXPECT_EQ(org->path, "drover-test/busybox");
}

TEST(ImageReferenceTest, DigestWinsOverTagWhenPulling) {
  auto ref = ParseImageReference("repo/name:tag@" + kDigest, "f");
  ASSERT_TRUE(ref.ok()) << ref.status();
  EXPECT_EQ(ref->tag, "tag");
  EXPECT_EQ(ref->digest, kDigest);
  EXPECT_EQ(ref->PullTag(), kDigest);
  EXPECT_EQ(ref->Canonical(), "repo/name@" + kDigest);
}

TEST(ImageReferenceTest, SeparatorsInPathComponents) {
  for (const char* good : {"a.b/c__d/e---f", "a_b", "x9/y-z.w"}) {
    EXPECT_TRUE(ParseImageReference(good, "f").ok()) << good;
  }
}

TEST(ImageReferenceTest, BadReferencesAreMalformedAndNameTheField) {
  const std::string long_name(256, 'a');
  for (const std::string& bad :
       {std::string(""),
        std::string("Busybox"),
        std::string("upper/Case"),
        std::string("bad image"),
        std::string("name:"),
        std::string("name:-tag"),
        std::string("name:" + std::string(129, 't')),
        std::string("name@sha256:abc"),
        std::string("name@md5:" + std::string(32, 'a')),
        std::string("name@sha256:" + std::string(64, 'G')),
        std::string("a//b"),
        std::string("/abs"),
        std::string("trailing/"),
        std::string("-lead"),
        std::string("a..b"),
        std::string("a_._b"),
        std::string("my-host.:5000/x"),
        std::string("host:port/x"),
        std::string("has!bang"),
        long_name}) {
    auto ref = ParseImageReference(bad, "payload.image");
    ASSERT_FALSE(ref.ok()) << "accepted: " << bad;
    ErrorInfo info = GetErrorInfo(ref.status());
    EXPECT_EQ(info.code, ErrorCode::kMalformedPayload) << bad;
    EXPECT_EQ(info.details["field"], "payload.image") << bad;
  }
}

}  // namespace
}  // namespace drover::engines::docker
