#include "common/crypto/secret_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/status.h"

namespace drover::crypto {
namespace {

constexpr size_t kMaxSecretFileSize = 1 << 20;

std::string ErrnoText(int err) { return std::strerror(err); }

// Closes a descriptor on scope exit.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

absl::Status WriteAll(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return InputError("path", path, "cannot write: " + ErrnoText(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status WriteSecretFile(const std::string& path, std::string_view contents,
                             bool overwrite) {
  if (path.empty()) return InputError("path", path, "must not be empty");
  struct stat existing;
  if (!overwrite && ::lstat(path.c_str(), &existing) == 0) {
    return ConflictError("refusing to overwrite existing secret file " + path,
                         {{"path", path}});
  }
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  // O_EXCL plus the explicit mode means the secret never exists on disk with
  // broader permissions, whatever the umask.
  Fd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    return InputError("path", path,
                      "cannot create " + temp + ": " + ErrnoText(errno));
  }
  absl::Status status = WriteAll(fd.get(), contents, path);
  if (status.ok() && ::fchmod(fd.get(), 0600) != 0) {
    status = InputError("path", path, "cannot chmod: " + ErrnoText(errno));
  }
  if (status.ok() && ::fsync(fd.get()) != 0) {
    status = InputError("path", path, "cannot fsync: " + ErrnoText(errno));
  }
  if (::close(fd.Release()) != 0 && status.ok()) {
    status = InputError("path", path, "cannot close: " + ErrnoText(errno));
  }
  if (!status.ok()) {
    ::unlink(temp.c_str());
    return status;
  }
  if (!overwrite) {
    // link() fails if the target exists, closing the race between the lstat
    // above and the rename a plain rename() would allow.
    if (::link(temp.c_str(), path.c_str()) != 0) {
      int err = errno;
      ::unlink(temp.c_str());
      if (err == EEXIST) {
        return ConflictError(
            "refusing to overwrite existing secret file " + path,
            {{"path", path}});
      }
      return InputError("path", path, "cannot create: " + ErrnoText(err));
    }
    ::unlink(temp.c_str());
    return absl::OkStatus();
  }
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return InputError("path", path,
                      "cannot rename into place: " + ErrnoText(err));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadSecretFile(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) {
    if (errno == ENOENT) return NotFoundError("secret file", path);
    return InputError("path", path, "cannot open: " + ErrnoText(errno));
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) {
    return InputError("path", path, "cannot stat: " + ErrnoText(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return InputError("path", path, "is not a regular file");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(st.st_mode & 07777));
    return InputError("path", path,
                      std::string("holds a secret but has mode ") + mode +
                          "; run chmod 600 on it");
  }
  if (static_cast<size_t>(st.st_size) > kMaxSecretFileSize) {
    return InputError("path", path, "is larger than 1 MiB");
  }
  std::string contents;
  char buffer[4096];
  while (true) {
    ssize_t n = ::read(fd.get(), buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      return InputError("path", path, "cannot read: " + ErrnoText(errno));
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
    if (contents.size() > kMaxSecretFileSize) {
      return InputError("path", path, "is larger than 1 MiB");
    }
  }
  return contents;
}

}  // namespace drover::crypto
