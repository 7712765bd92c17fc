// Streaming tar extraction for the Engine API's archive endpoint
// (GET /containers/{id}/archive), with path-escape ("zip-slip") protection.
//
// Docker returns a tar whose first path component is the base name of the
// requested path. The extractor maps that component onto a host path of the
// caller's choosing and everything below it under that path. It never
// writes outside the target:
//   - entries with absolute names, ".." components or a first component
//     other than the expected one are refused (InputError);
//   - entries are never written through a symbolic link (a parent that is a
//     link is refused; the final component is opened with O_NOFOLLOW);
//   - symbolic links must be relative, and once the archive is complete
//     each must resolve (following further links) inside the target;
//     otherwise extraction fails with InputError. Links that stay inside
//     are kept as links;
//   - hard links must point at a regular file extracted earlier;
//   - device nodes and FIFOs are skipped and reported.
// Reads ustar, GNU long names (L/K) and PAX headers (path, linkpath, size).
#ifndef DROVER_ENGINES_DOCKER_TAR_EXTRACTOR_H_
#define DROVER_ENGINES_DOCKER_TAR_EXTRACTOR_H_

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace drover::engines::docker {

class TarExtractor {
 public:
  // Extracts entries whose first component is `top_name` to `target`
  // (created with its parents). An empty `top_name` maps the archive root
  // onto `target` instead.
  TarExtractor(std::filesystem::path target, std::string top_name);
  ~TarExtractor();

  TarExtractor(const TarExtractor&) = delete;
  TarExtractor& operator=(const TarExtractor&) = delete;

  // Consumes the next chunk of the archive. Errors: InputError for an entry
  // that would escape the target (field "archive.entry", the entry name),
  // InternalError for a corrupt archive or a failed write (naming the host
  // path). After an error the extractor refuses further input. Not
  // thread-safe.
  absl::Status Feed(std::string_view chunk);

  // Ok when the archive ended cleanly (end marker or a block boundary after
  // the last entry) and every symbolic link stays inside the target.
  // Errors: InputError naming a link that leads outside; InternalError when
  // the archive ended inside an entry, or held no entry at all.
  absl::Status Finish();

  // Entries that were skipped (device nodes, FIFOs, unknown types), each as
  // "name (reason)".
  const std::vector<std::string>& skipped() const { return skipped_; }
  // Entries extracted (files, directories, links).
  int extracted() const { return extracted_; }

 private:
  enum class Phase { kHeader, kData, kPadding, kEnd };

  absl::Status OnHeader();
  absl::Status BeginEntry(char type, const std::string& name,
                          const std::string& link, uint64_t size,
                          uint32_t mode);
  absl::Status OnDataChunk(std::string_view data);
  absl::Status EndEntry();
  // Maps an archive name to a host path under target_, creating missing
  // parent directories. Errors: InputError when it escapes.
  absl::Status MapName(const std::string& name, bool create_parents,
                       std::filesystem::path* out);
  void ParsePax(std::string_view records);
  absl::Status Fail(absl::Status status);

  const std::filesystem::path target_;
  const std::string top_name_;

  Phase phase_ = Phase::kHeader;
  char block_[512] = {};
  size_t block_len_ = 0;
  uint64_t data_left_ = 0;
  uint64_t padding_left_ = 0;
  bool saw_zero_block_ = false;
  absl::Status error_;

  // The current entry.
  char entry_type_ = 0;
  std::string entry_name_;
  std::string meta_;  // contents of a PAX or GNU long-name entry
  int fd_ = -1;
  std::filesystem::path entry_path_;
  uint32_t entry_mode_ = 0;

  // Overrides for the next entry from PAX or GNU long-name headers.
  std::optional<std::string> next_name_;
  std::optional<std::string> next_link_;
  std::optional<uint64_t> next_size_;

  // Symbolic links created, with their archive names, checked at Finish.
  std::vector<std::pair<std::filesystem::path, std::string>> links_;
  std::vector<std::string> skipped_;
  int extracted_ = 0;
};

}  // namespace drover::engines::docker

#endif  // DROVER_ENGINES_DOCKER_TAR_EXTRACTOR_H_
