// Helpers shared by the native engine's unit tests.
#ifndef DROVER_ENGINES_NATIVE_TEST_UTIL_H_
#define DROVER_ENGINES_NATIVE_TEST_UTIL_H_

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engines/engine.h"

namespace drover::engines::native::testing {

// A LogSink that keeps everything. Thread-safe.
class CaptureSink final : public LogSink {
 public:
  void Write(std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    text_.append(bytes);
    cv_.notify_all();
  }
  std::string text() const {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  bool WaitFor(std::string_view needle,
               std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(
        lock, timeout, [&] { return text_.find(needle) != std::string::npos; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
};

inline std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void WriteFile(const std::filesystem::path& path,
                      const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
}

// True when `pid` is gone or a zombie.
inline bool ProcessGone(pid_t pid) {
  if (::kill(pid, 0) != 0) return errno == ESRCH;
  std::ifstream stat(absl::StrCat("/proc/", pid, "/stat"));
  std::string content((std::istreambuf_iterator<char>(stat)),
                      std::istreambuf_iterator<char>());
  size_t close = content.rfind(')');
  return close != std::string::npos && close + 2 < content.size() &&
         content[close + 2] == 'Z';
}

// Polls ProcessGone for up to `timeout`.
inline bool EventuallyGone(
    pid_t pid, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ProcessGone(pid)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return ProcessGone(pid);
}

// A fresh directory under the temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            absl::StrCat("drover-native-test-", ::getpid(), "-", rd());
    std::filesystem::create_directories(path_);
    std::filesystem::permissions(path_,
                                 std::filesystem::perms::owner_all |
                                     std::filesystem::perms::group_exec |
                                     std::filesystem::perms::others_exec);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace drover::engines::native::testing

#endif  // DROVER_ENGINES_NATIVE_TEST_UTIL_H_
