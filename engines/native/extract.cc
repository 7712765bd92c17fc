#include "engines/native/extract.h"

#include <sys/stat.h>

#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace drover::engines::native {
namespace {

namespace fs = std::filesystem;

// True when `path` is `root` or below it (both canonical).
bool IsWithin(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

// Where a path whose symlink target does not exist would point.
fs::path ResolveDangling(const fs::path& path, std::error_code& ec) {
  if (fs::is_symlink(fs::symlink_status(path, ec))) {
    fs::path target = fs::read_symlink(path, ec);
    if (ec) return {};
    if (!target.is_absolute()) target = path.parent_path() / target;
    return fs::weakly_canonical(target, ec);
  }
  return fs::weakly_canonical(path, ec);
}

absl::Status Escapes(const std::string& shown) {
  return InputError(
      "path", shown,
      absl::StrCat(shown, " resolves outside the task directory"));
}

absl::Status CopyFailed(const fs::path& path, const std::error_code& ec) {
  return MakeError(
      ErrorCode::kInternalError,
      absl::StrCat("cannot copy ", path.string(), ": ", ec.message()),
      {{"path", path.string()}, {"error", ec.message()}});
}

class Copier {
 public:
  explicit Copier(fs::path root) : root_(std::move(root)) {}

  // Copies the canonical, checked `source`; `shown` is its task-relative
  // name for errors.
  absl::Status Copy(const fs::path& source, const fs::path& destination,
                    const std::string& shown) {
    struct stat st;
    if (::stat(source.c_str(), &st) != 0) return NotFoundError("path", shown);
    std::error_code ec;
    if (S_ISREG(st.st_mode)) {
      if (destination.has_parent_path()) {
        fs::create_directories(destination.parent_path(), ec);
        if (ec) return CopyFailed(destination.parent_path(), ec);
      }
      fs::copy_file(source, destination, fs::copy_options::overwrite_existing,
                    ec);
      if (ec) return CopyFailed(source, ec);
      return absl::OkStatus();
    }
    if (!S_ISDIR(st.st_mode)) {
      return InputError(
          "path", shown,
          absl::StrCat(shown, " is not a regular file or directory"));
    }
    // A symlink to an ancestor would recurse forever; the same directory
    // reached twice by different routes is merely copied twice.
    auto key = std::make_pair(st.st_dev, st.st_ino);
    if (!ancestors_.insert(key).second) return absl::OkStatus();
    fs::create_directories(destination, ec);
    if (ec) return CopyFailed(destination, ec);
    absl::Status status;
    for (const auto& entry : fs::directory_iterator(source, ec)) {
      std::string child_shown =
          absl::StrCat(shown, "/", entry.path().filename().string());
      fs::path child = entry.path();
      if (entry.is_symlink(ec)) {
        std::error_code resolve_ec;
        fs::path target = fs::canonical(child, resolve_ec);
        if (resolve_ec) {
          // A dangling link has no content to copy; it is refused only when
          // it points outside.
          fs::path lexical = ResolveDangling(child, resolve_ec);
          if (!resolve_ec && !IsWithin(lexical, root_)) {
            status = Escapes(child_shown);
            break;
          }
          continue;
        }
        if (!IsWithin(target, root_)) {
          status = Escapes(child_shown);
          break;
        }
        child = target;
      }
      status = Copy(child, destination / entry.path().filename(), child_shown);
      if (!status.ok()) break;
    }
    ancestors_.erase(key);
    if (status.ok() && ec) return CopyFailed(source, ec);
    return status;
  }

 private:
  const fs::path root_;
  std::set<std::pair<dev_t, ino_t>> ancestors_;
};

}  // namespace

absl::Status ExtractFromDirectory(const fs::path& root,
                                  const std::string& relative,
                                  const fs::path& destination) {
  if (relative.empty() || relative.find('\0') != std::string::npos) {
    return InputError("path", relative,
                      "a non-empty relative path is required");
  }
  fs::path rel(relative);
  if (rel.is_absolute()) {
    return InputError("path", relative,
                      "paths are relative to the task directory");
  }
  for (const auto& part : rel) {
    if (part == "..") {
      return InputError("path", relative,
                        "paths cannot leave the task directory with ..");
    }
  }
  std::error_code ec;
  fs::path canonical_root = fs::canonical(root, ec);
  if (ec) {
    return MakeError(ErrorCode::kInternalError,
                     absl::StrCat("the task directory is gone: ", ec.message()),
                     {{"path", root.string()}});
  }
  fs::path source = canonical_root / rel;
  struct stat st;
  if (::lstat(source.c_str(), &st) != 0) {
    // Missing, but the part that exists may already lead outside (a
    // symlink to ".." followed by a name that is not there).
    fs::path lexical = fs::weakly_canonical(source, ec);
    if (!ec && !IsWithin(lexical, canonical_root)) return Escapes(relative);
    return NotFoundError("path", relative);
  }
  fs::path resolved = fs::canonical(source, ec);
  if (ec) {
    // A dangling symlink somewhere along the path.
    fs::path lexical = ResolveDangling(source, ec);
    if (!ec && !IsWithin(lexical, canonical_root)) return Escapes(relative);
    return NotFoundError("path", relative);
  }
  if (!IsWithin(resolved, canonical_root)) return Escapes(relative);
  return Copier(canonical_root).Copy(resolved, destination, relative);
}

}  // namespace drover::engines::native
