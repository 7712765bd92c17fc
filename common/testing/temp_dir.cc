#include "common/testing/temp_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace drover::testing {

absl::StatusOr<std::filesystem::path> MakeTempDir(std::string_view prefix) {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) {
    return InternalError(
        absl::StrCat("no usable temporary directory: ", ec.message()));
  }
  std::string pattern = (base / (std::string(prefix) + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    return InternalError(
        absl::StrCat("cannot create ", pattern, ": ", std::strerror(errno)));
  }
  return std::filesystem::path(pattern);
}

}  // namespace drover::testing
