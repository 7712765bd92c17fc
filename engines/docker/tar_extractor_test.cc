// The streaming tar extractor: archives from the system's GNU tar (gnu and
// pax formats) must round-trip byte for byte, and hand-made hostile
// archives must not write anything outside the target.
#include "engines/docker/tar_extractor.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::engines::docker {
namespace {

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void WriteFile(const fs::path& p, const std::string& content) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
}

// Relative path -> content ("<dir>", "-> target" for links).
std::map<std::string, std::string> Tree(const fs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = fs::recursive_directory_iterator(root);
       it != fs::recursive_directory_iterator(); ++it) {
    std::string rel = it->path().lexically_relative(root).string();
    if (it->is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      out[rel] = "<dir>";
    } else {
      out[rel] = ReadFile(it->path());
    }
  }
  return out;
}

class TarExtractorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           absl::StrCat("drover-tar-test-", getpid(), "-",
                        std::random_device()() % 1000000);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Runs GNU tar over `what` (relative to `from`) and returns the archive.
  std::string GnuTar(const fs::path& from, const std::string& what,
                     const std::string& format) {
    fs::path out = dir_ / "archive.tar";
    std::string cmd =
        absl::StrCat("tar --format=", format, " -C '", from.string(), "' -cf '",
                     out.string(), "' '", what, "' 2>&1");
    FILE* p = ::popen(cmd.c_str(), "r");
    EXPECT_NE(p, nullptr);
    char buf[256];
    std::string msg;
    while (p && fgets(buf, sizeof buf, p)) msg += buf;
    int rc = p ? ::pclose(p) : -1;
    EXPECT_EQ(rc, 0) << cmd << ": " << msg;
    return ReadFile(out);
  }

  // Feeds `archive` in random chunk sizes (seeded: reproducible).
  absl::Status Extract(const std::string& archive, const fs::path& target,
                       const std::string& top) {
    extractor_ = std::make_unique<TarExtractor>(target, top);
    std::mt19937 rng(42);
    size_t at = 0;
    while (at < archive.size()) {
      size_t n = std::min<size_t>(archive.size() - at, 1 + rng() % 3000);
      absl::Status s =
          extractor_->Feed(std::string_view(archive).substr(at, n));
      if (!s.ok()) return s;
      at += n;
    }
    return extractor_->Finish();
  }

  fs::path dir_;
  std::unique_ptr<TarExtractor> extractor_;
};

// ---------------------------------------------------------------- hand-made

// One ustar header block for `name`.
std::string Header(const std::string& name, char type, size_t size,
                   const std::string& link = "", int mode = 0644) {
  std::string h(512, '\0');
  auto put = [&](size_t off, size_t len, const std::string& v) {
    h.replace(off, std::min(len, v.size()), v.substr(0, len));
  };
  auto octal = [&](size_t off, size_t len, uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*llo", static_cast<int>(len - 1),
                  static_cast<unsigned long long>(v));
    put(off, len - 1, buf);
  };
  put(0, 100, name);
  octal(100, 8, mode);
  octal(108, 8, 0);
  octal(116, 8, 0);
  octal(124, 12, size);
  octal(136, 12, 0);
  h[156] = type;
  put(157, 100, link);
  put(257, 6, std::string("ustar\0", 6));
  put(263, 2, "00");
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (unsigned char c : h) sum += c;
  char chk[8];
  std::snprintf(chk, sizeof chk, "%06o", sum);
  h.replace(148, 7, std::string(chk, 6) + '\0');
  return h;
}

std::string Entry(const std::string& name, char type,
                  const std::string& data = "", const std::string& link = "") {
  std::string out = Header(name, type, data.size(), link) + data;
  out.append((512 - data.size() % 512) % 512, '\0');
  return out;
}

std::string End() { return std::string(1024, '\0'); }

TEST_F(TarExtractorTest, GnuAndPaxArchivesRoundTrip) {
  fs::path src = dir_ / "in" / "src";
  std::string binary("\x00\x01\xff\xfe binary\n", 12);
  WriteFile(src / "a.txt", "A");
  WriteFile(src / "empty.txt", "");
  WriteFile(src / "sub" / "bin.dat", binary);
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  WriteFile(src / "sub" / "big.dat", big);
  std::string long_dir(120, 'd');
  WriteFile(src / long_dir / (std::string(110, 'f') + ".txt"), "long");
  fs::create_directories(src / "emptydir");
  fs::create_symlink("sub/bin.dat", src / "alias");
  fs::create_symlink("../a.txt", src / "sub" / "up-alias");
  auto expected = Tree(src);

  for (const char* format : {"gnu", "pax"}) {
    fs::path target = dir_ / "out" / format / "copy";
    absl::Status s = Extract(GnuTar(dir_ / "in", "src", format), target, "src");
    ASSERT_TRUE(s.ok()) << format << ": " << s;
    EXPECT_EQ(Tree(target), expected) << format;
    EXPECT_TRUE(extractor_->skipped().empty());
  }
}

TEST_F(TarExtractorTest, ASingleFileLandsOnTheTargetPath) {
  WriteFile(dir_ / "in" / "report.bin", "payload\n");
  fs::path target = dir_ / "out" / "nested" / "renamed.bin";
  ASSERT_TRUE(
      Extract(GnuTar(dir_ / "in", "report.bin", "gnu"), target, "report.bin")
          .ok());
  EXPECT_EQ(ReadFile(target), "payload\n");
  EXPECT_EQ(extractor_->extracted(), 1);
}

TEST_F(TarExtractorTest, ModesAreKept) {
  WriteFile(dir_ / "in" / "t" / "run.sh", "#!/bin/sh\n");
  fs::permissions(dir_ / "in" / "t" / "run.sh", fs::perms(0755));
  fs::path target = dir_ / "out" / "t";
  ASSERT_TRUE(Extract(GnuTar(dir_ / "in", "t", "gnu"), target, "t").ok());
  EXPECT_EQ(fs::status(target / "run.sh").permissions() & fs::perms(0777),
            fs::perms(0755));
}

// Every hostile archive must fail with InputError naming the entry and
// leave nothing outside `target`.
TEST_F(TarExtractorTest, HostileArchivesAreRefused) {
  struct Case {
    std::string description;
    std::string archive;
  };
  std::vector<Case> cases = {
      {"dot-dot entry", Entry("top/", '5') + Entry("top/../evil", '0', "x")},
      {"absolute entry", Entry("/top/evil", '0', "x")},
      {"outside the requested top", Entry("other/evil", '0', "x")},
      {"symlink to an absolute path", Entry("top/l", '2', "", "/etc")},
      {"symlink climbing out", Entry("top/l", '2', "", "../../outside")},
      {"write through an inside symlink", Entry("top/sub/", '5') +
                                              Entry("top/l", '2', "", "sub") +
                                              Entry("top/l/evil", '0', "x")},
      {"file over a symlink",
       Entry("top/l", '2', "", "x") + Entry("top/l", '0', "x")},
      {"symlink chain climbing out", Entry("top/d/", '5') +
                                         Entry("top/d/b", '2', "", "..") +
                                         Entry("top/a", '2', "", "d/b/../..")},
      {"hard link to outside", Entry("top/h", '1', "", "../x")},
  };
  for (const Case& c : cases) {
    fs::path base = dir_ / c.description;
    fs::create_directories(base);
    fs::path target = base / "target";
    absl::Status s = Extract(c.archive + End(), target, "top");
    EXPECT_TRUE(HasErrorCode(s, ErrorCode::kInputError))
        << c.description << ": " << s;
    EXPECT_EQ(GetErrorInfo(s).details["field"], "archive.entry")
        << c.description;
    for (const auto& entry : fs::directory_iterator(base)) {
      EXPECT_EQ(entry.path().filename(), "target")
          << c.description << " wrote " << entry.path();
    }
    EXPECT_FALSE(fs::exists(dir_ / "evil")) << c.description;
  }
}

TEST_F(TarExtractorTest, FifosAreSkippedAndReported) {
  std::string archive = Entry("top/", '5') + Entry("top/pipe", '6') +
                        Entry("top/file", '0', "ok") + End();
  fs::path target = dir_ / "out";
  ASSERT_TRUE(Extract(archive, target, "top").ok());
  EXPECT_EQ(ReadFile(target / "file"), "ok");
  EXPECT_FALSE(fs::exists(target / "pipe"));
  ASSERT_EQ(extractor_->skipped().size(), 1u);
  EXPECT_NE(extractor_->skipped()[0].find("top/pipe"), std::string::npos);
}

TEST_F(TarExtractorTest, CorruptAndTruncatedArchivesFail) {
  std::string good = Entry("top", '0', std::string(1000, 'z')) + End();
  std::string bad_sum = good;
  bad_sum[0] = 'T';  // changes the header without fixing its checksum
  EXPECT_TRUE(HasErrorCode(Extract(bad_sum, dir_ / "a", "top"),
                           ErrorCode::kInternalError));
  EXPECT_TRUE(HasErrorCode(Extract(good.substr(0, 700), dir_ / "b", "top"),
                           ErrorCode::kInternalError));
  EXPECT_TRUE(HasErrorCode(Extract(End(), dir_ / "c", "top"),
                           ErrorCode::kInternalError))
      << "an empty archive is not a copy";
}

}  // namespace
}  // namespace drover::engines::docker
