// TaskLog: the log of one task run on the worker, kept in a file under the
// work directory so a task printing gigabytes costs disk, not memory.
// Plugins may wrap it (timestamps) or tee it (live log) through
// SandboxSpec::log.
#ifndef DROVER_WORKER_TASK_LOG_H_
#define DROVER_WORKER_TASK_LOG_H_

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engines/engine.h"

namespace drover::worker {

class TaskLog final : public engines::LogSink {
 public:
  // Creates (truncates) the log file. Errors: InternalError when the file
  // cannot be created.
  static absl::StatusOr<std::unique_ptr<TaskLog>> Create(
      const std::filesystem::path& path);
  ~TaskLog() override;

  // Thread-safe. Write errors are counted, not raised: a full disk must not
  // take the task down with it.
  void Write(std::string_view bytes) override;
  // Writes `line` followed by a newline, prefixed "[drover] ".
  void Note(std::string_view line);

  const std::filesystem::path& path() const { return path_; }
  uint64_t bytes_written() const;

 private:
  TaskLog(std::filesystem::path path, std::FILE* file)
      : path_(std::move(path)), file_(file) {}

  const std::filesystem::path path_;
  mutable std::mutex mu_;
  std::FILE* file_;
  uint64_t bytes_ = 0;
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_TASK_LOG_H_
