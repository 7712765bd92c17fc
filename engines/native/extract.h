// Copying files out of a task's directory without letting the task reach
// anything else on the host.
//
// A task controls its directory's contents, so every path is checked after
// symlinks are resolved: the relative path may not be absolute or contain
// "..", and neither it nor any symlink met while copying a directory may
// resolve outside the task directory. Symlinks that stay inside are
// followed (their content is copied), so the copy never holds a link that
// could point somewhere else on the host. Meant to run once the task's
// processes are gone, so the tree cannot change underneath.
#ifndef DROVER_ENGINES_NATIVE_EXTRACT_H_
#define DROVER_ENGINES_NATIVE_EXTRACT_H_

#include <filesystem>
#include <string>

#include "absl/status/status.h"

namespace drover::engines::native {

// Copies the file or directory `relative` (below `root`) to `destination`
// (created, with its parents; existing files are overwritten).
// Thread-safe for distinct destinations.
// Errors: InputError (field "path") when `relative` is empty, absolute,
// contains "..", or it or a symlink inside it resolves outside `root`, or
// it holds something other than files, directories and symlinks;
// ResourceNotFound (kind "path") when it does not exist; InternalError when
// copying fails (details carry the path).
absl::Status ExtractFromDirectory(const std::filesystem::path& root,
                                  const std::string& relative,
                                  const std::filesystem::path& destination);

}  // namespace drover::engines::native

#endif  // DROVER_ENGINES_NATIVE_EXTRACT_H_
