// Test helpers for the crypto module: a private temporary directory.
#ifndef DROVER_COMMON_CRYPTO_TEST_UTIL_H_
#define DROVER_COMMON_CRYPTO_TEST_UTIL_H_

#include <stdlib.h>
#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include "common/testing/temp_dir.h"

namespace drover::crypto::testing {

// A fresh directory under TMPDIR (or /tmp), removed on destruction. A test
// cannot go on without it (File() would name paths under "/"), so failing
// to make it aborts with the reason.
class TempDir {
 public:
  TempDir() {
    auto dir = drover::testing::MakeTempDir("drover-crypto-");
    if (!dir.ok()) {
      std::cerr << "crypto TempDir: " << dir.status() << "\n";
      std::abort();
    }
    path_ = dir->string();
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  std::string File(std::string_view name) const {
    return path_ + "/" + std::string(name);
  }
  // Writes `contents` to `name` with the given mode; returns the path.
  std::string Write(std::string_view name, std::string_view contents,
                    mode_t mode) const {
    std::string path = File(name);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << contents;
    ::chmod(path.c_str(), mode);
    return path;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace drover::crypto::testing

#endif  // DROVER_COMMON_CRYPTO_TEST_UTIL_H_
