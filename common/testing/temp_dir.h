// Temporary directories for tests and test fixtures.
//
// Every test that needs scratch space makes it here, under TMPDIR (or
// /tmp when TMPDIR is unset): scripts/test.sh points TMPDIR at a tmpfs so
// that the suites' many short-lived files never touch the disk.
#ifndef DROVER_COMMON_TESTING_TEMP_DIR_H_
#define DROVER_COMMON_TESTING_TEMP_DIR_H_

#include <filesystem>
#include <string_view>

#include "absl/status/statusor.h"

namespace drover::testing {

// Creates a new, empty directory named `prefix` plus six random characters
// under the temporary directory, with mode 0700 (callers widen it when
// other users, such as postgres or a task's user, must enter it), and
// returns its path. The caller removes it.
//
// Thread-safe. Errors: InternalError naming the directory and the reason
// when the temporary directory is unusable or the directory cannot be made.
absl::StatusOr<std::filesystem::path> MakeTempDir(std::string_view prefix);

}  // namespace drover::testing

#endif  // DROVER_COMMON_TESTING_TEMP_DIR_H_
