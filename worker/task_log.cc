#include "worker/task_log.h"

#include <cerrno>
#include <cstring>

#include "common/status.h"

namespace drover::worker {

absl::StatusOr<std::unique_ptr<TaskLog>> TaskLog::Create(
    const std::filesystem::path& path) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    return InternalError("cannot create task log " + path.string() + ": " +
                         std::strerror(errno));
  }
  return std::unique_ptr<TaskLog>(new TaskLog(path, file));
}

TaskLog::~TaskLog() { std::fclose(file_); }

void TaskLog::Write(std::string_view bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  bytes_ += std::fwrite(bytes.data(), 1, bytes.size(), file_);
  // Readers (the live log, `drover task logs`) follow the file as it grows.
  std::fflush(file_);
}

void TaskLog::Note(std::string_view line) {
  std::string text = "[drover] ";
  text.append(line);
  text.push_back('\n');
  Write(text);
}

uint64_t TaskLog::bytes_written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace drover::worker
