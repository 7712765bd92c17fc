// The multiplexed stdout/stderr frame decoder, fed in every possible split.
#include "engines/docker/stream_decoder.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace drover::engines::docker {
namespace {

std::string Frame(uint8_t stream, const std::string& payload) {
  std::string out(8, '\0');
  out[0] = static_cast<char>(stream);
  uint32_t n = static_cast<uint32_t>(payload.size());
  out[4] = static_cast<char>(n >> 24);
  out[5] = static_cast<char>(n >> 16);
  out[6] = static_cast<char>(n >> 8);
  out[7] = static_cast<char>(n);
  return out + payload;
}

struct Collected {
  std::string out;
  std::string err;
};

TEST(MultiplexedStreamDecoderTest, SplitsAtEveryOffsetDecodeTheSame) {
  std::string big(70000, 'x');  // a size needing three bytes
  std::string stream = Frame(1, "hello ") + Frame(2, "oops\n") + Frame(1, "") +
                       Frame(1, big) + Frame(2, "end");
  for (size_t cut = 0; cut <= stream.size(); cut += (cut < 64 ? 1 : 997)) {
    Collected c;
    MultiplexedStreamDecoder d([&](StreamKind k, std::string_view b) {
      (k == StreamKind::kStderr ? c.err : c.out).append(b);
    });
    ASSERT_TRUE(d.Feed(std::string_view(stream).substr(0, cut)).ok());
    ASSERT_TRUE(d.Feed(std::string_view(stream).substr(cut)).ok());
    ASSERT_TRUE(d.Finish().ok()) << cut;
    EXPECT_EQ(c.out, "hello " + big) << cut;
    EXPECT_EQ(c.err, "oops\nend") << cut;
  }
}

TEST(MultiplexedStreamDecoderTest, ByteAtATime) {
  std::string stream = Frame(1, "abc") + Frame(2, "de");
  std::string all;
  MultiplexedStreamDecoder d(
      [&](StreamKind, std::string_view b) { all.append(b); });
  for (char ch : stream) ASSERT_TRUE(d.Feed(std::string_view(&ch, 1)).ok());
  EXPECT_TRUE(d.Finish().ok());
  EXPECT_EQ(all, "abcde");
}

TEST(MultiplexedStreamDecoderTest, TruncatedStreamsAreReported) {
  std::string stream = Frame(1, "abcdef");
  for (size_t len : {size_t{3}, size_t{8}, size_t{11}}) {
    MultiplexedStreamDecoder d([](StreamKind, std::string_view) {});
    ASSERT_TRUE(d.Feed(std::string_view(stream).substr(0, len)).ok());
    EXPECT_FALSE(d.Finish().ok()) << len;
  }
}

TEST(MultiplexedStreamDecoderTest, RawStreamIsRejected) {
  // A TTY stream has no frames: plain text fails the header check.
  MultiplexedStreamDecoder d([](StreamKind, std::string_view) {});
  EXPECT_FALSE(d.Feed("plain text output\n").ok());
  EXPECT_FALSE(d.Feed(Frame(1, "x")).ok()) << "must stay failed";
  EXPECT_FALSE(d.Finish().ok());
}

}  // namespace
}  // namespace drover::engines::docker
