// Helpers shared by the artifacts, livelog and mounts plugin tests.
#ifndef DROVER_PLUGINS_ARTIFACTS_TESTING_PLUGIN_TEST_UTIL_H_
#define DROVER_PLUGINS_ARTIFACTS_TESTING_PLUGIN_TEST_UTIL_H_

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>

#include "engines/engine.h"

namespace drover::plugins::testing {

// A LogSink writing through to a file, as the worker's task log does, and
// (unless told not to, for memory measurements) keeping a copy for
// assertions. Thread-safe.
class FileLogSink final : public engines::LogSink {
 public:
  explicit FileLogSink(std::filesystem::path path, bool keep_text = true)
      : path_(std::move(path)), keep_text_(keep_text) {
    file_ = std::fopen(path_.c_str(), "wb");
  }
  ~FileLogSink() override {
    if (file_ != nullptr) std::fclose(file_);
  }
  void Write(std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::fwrite(bytes.data(), 1, bytes.size(), file_);
    std::fflush(file_);
    if (keep_text_) text_.append(bytes);
  }
  std::string text() const {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  const std::filesystem::path path_;
  const bool keep_text_;
  std::FILE* file_;
  mutable std::mutex mu_;
  std::string text_;
};

inline std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace drover::plugins::testing

#endif  // DROVER_PLUGINS_ARTIFACTS_TESTING_PLUGIN_TEST_UTIL_H_
