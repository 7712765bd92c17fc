#include "engines/native/containment.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace drover::engines::native {
namespace {

constexpr absl::Duration kKillPollInterval = absl::Milliseconds(2);
constexpr absl::Duration kDestroyKillTimeout = absl::Seconds(10);

bool IsSimpleName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

absl::Status ErrnoError(std::string_view what,
                        const std::filesystem::path& path, int error) {
  return MakeError(ErrorCode::kInternalError,
                   absl::StrCat(std::string(what), " ", path.string(), ": ",
                                std::strerror(error)),
                   {{"path", path.string()}, {"errno", std::strerror(error)}});
}

// Reads a whole (small, /proc or /sys) file; nullopt when it cannot be
// opened or read.
std::optional<std::string> ReadSmallFile(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string data;
  char buffer[16384];
  while (true) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    data.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return data;
}

std::vector<pid_t> AllPids() {
  std::vector<pid_t> pids;
  DIR* dir = ::opendir("/proc");
  if (dir == nullptr) return pids;
  while (struct dirent* entry = ::readdir(dir)) {
    int pid;
    if (absl::SimpleAtoi(entry->d_name, &pid) && pid > 0) pids.push_back(pid);
  }
  ::closedir(dir);
  return pids;
}

// ---------------------------------------------------------------- cgroup

class CgroupContainment final : public Containment {
 public:
  CgroupContainment(std::filesystem::path dir, int procs_fd)
      : dir_(std::move(dir)), procs_fd_(procs_fd) {
    has_kill_ = ::access((dir_ / "cgroup.kill").c_str(), W_OK) == 0;
  }

  ~CgroupContainment() override {
    (void)KillAll(kDestroyKillTimeout);
    if (procs_fd_ >= 0) ::close(procs_fd_);
    // rmdir fails with EBUSY for a moment after the last process left.
    for (int attempt = 0; attempt < 500; ++attempt) {
      if (::rmdir(dir_.c_str()) == 0 || errno == ENOENT) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  std::string_view Kind() const override { return "cgroup"; }

  ContainmentJoin Join() const override { return {{}, procs_fd_}; }

  absl::Status KillAll(absl::Duration timeout) override {
    absl::Time deadline = absl::Now() + timeout;
    while (true) {
      DROVER_ASSIGN_OR_RETURN(std::vector<pid_t> members, Members());
      if (members.empty()) return absl::OkStatus();
      if (absl::Now() >= deadline) {
        return MakeError(
            ErrorCode::kInternalError,
            absl::StrCat(members.size(), " processes survived SIGKILL in ",
                         dir_.string()),
            {{"path", dir_.string()},
             {"first_pid", absl::StrCat(members.front())}});
      }
      // cgroup.kill is atomic against forks; without it, repeated rounds
      // catch children forked while the previous round was sent.
      bool killed = false;
      if (has_kill_) {
        int fd = ::open((dir_ / "cgroup.kill").c_str(), O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
          killed = ::write(fd, "1", 1) == 1;
          ::close(fd);
        }
      }
      if (!killed) {
        for (pid_t pid : members) ::kill(pid, SIGKILL);
      }
      std::this_thread::sleep_for(
          absl::ToChronoMilliseconds(kKillPollInterval));
    }
  }

  absl::StatusOr<std::vector<pid_t>> Members() const override {
    auto procs = ReadSmallFile(dir_ / "cgroup.procs");
    if (!procs) return ErrnoError("cannot read", dir_ / "cgroup.procs", errno);
    std::vector<pid_t> pids;
    for (absl::string_view line :
         absl::StrSplit(*procs, '\n', absl::SkipEmpty())) {
      int pid;
      if (absl::SimpleAtoi(line, &pid)) pids.push_back(pid);
    }
    return pids;
  }

 private:
  const std::filesystem::path dir_;
  const int procs_fd_;
  bool has_kill_ = false;
};

absl::StatusOr<std::unique_ptr<Containment>> OpenCgroup(
    const std::filesystem::path& dir) {
  int fd = ::open((dir / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", dir / "cgroup.procs", errno);
  return std::unique_ptr<Containment>(new CgroupContainment(dir, fd));
}

class CgroupProvider final : public ContainmentProvider {
 public:
  explicit CgroupProvider(std::filesystem::path root)
      : root_(std::move(root)) {}
  // The namespace's cgroup goes too once nothing is left in it (rmdir
  // refuses otherwise, which is what we want).
  ~CgroupProvider() override { ::rmdir(root_.c_str()); }

  std::string_view Kind() const override { return "cgroup"; }

  absl::StatusOr<std::unique_ptr<Containment>> Create(
      const std::string& id) override {
    if (!IsSimpleName(id)) {
      return InputError("id", id, "containment ids are [A-Za-z0-9_-]+");
    }
    if (::mkdir(root_.c_str(), 0755) < 0 && errno != EEXIST) {
      return ErrnoError("cannot create cgroup", root_, errno);
    }
    std::filesystem::path dir = root_ / id;
    if (::mkdir(dir.c_str(), 0755) < 0) {
      return ErrnoError("cannot create cgroup", dir, errno);
    }
    auto made = OpenCgroup(dir);
    if (!made.ok()) ::rmdir(dir.c_str());
    return made;
  }

  absl::Status CleanUpLeftovers() override {
    std::error_code ec;
    if (!std::filesystem::is_directory(root_, ec)) return absl::OkStatus();
    absl::Status result;
    for (const auto& entry : std::filesystem::directory_iterator(root_, ec)) {
      if (!entry.is_directory(ec)) continue;
      auto leftover = OpenCgroup(entry.path());
      if (!leftover.ok()) {
        result.Update(leftover.status());
        continue;
      }
      result.Update((*leftover)->KillAll(kDestroyKillTimeout));
      // The destructor removes the directory.
    }
    if (ec) return ErrnoError("cannot list", root_, ec.value());
    return result;
  }

 private:
  const std::filesystem::path root_;
};

// Where the cgroup2 hierarchy is mounted and which cgroup this process is
// in, joined: the directory our own cgroup lives at.
absl::StatusOr<std::filesystem::path> OwnCgroupDir() {
  auto mountinfo = ReadSmallFile("/proc/self/mountinfo");
  if (!mountinfo) return InternalError("cannot read /proc/self/mountinfo");
  std::string mount_point, mount_root;
  for (absl::string_view line : absl::StrSplit(*mountinfo, '\n')) {
    std::vector<absl::string_view> halves = absl::StrSplit(line, " - ");
    if (halves.size() != 2) continue;
    if (!absl::StartsWith(halves[1], "cgroup2 ")) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(halves[0], ' ', absl::SkipEmpty());
    if (fields.size() < 5) continue;
    mount_root = std::string(fields[3]);
    mount_point = std::string(fields[4]);
    break;
  }
  if (mount_point.empty()) {
    return InternalError("no cgroup2 hierarchy is mounted");
  }
  auto cgroups = ReadSmallFile("/proc/self/cgroup");
  if (!cgroups) return InternalError("cannot read /proc/self/cgroup");
  std::string own;
  for (absl::string_view line : absl::StrSplit(*cgroups, '\n')) {
    if (absl::StartsWith(line, "0::")) own = std::string(line.substr(3));
  }
  if (own.empty()) {
    return InternalError("/proc/self/cgroup has no cgroup2 entry");
  }
  if (mount_root != "/" && absl::StartsWith(own, mount_root)) {
    own = own.substr(mount_root.size());
  }
  std::filesystem::path dir(mount_point);
  for (absl::string_view part : absl::StrSplit(own, '/', absl::SkipEmpty())) {
    dir /= std::string(part);
  }
  return dir;
}

// Proves that a process can be moved into a cgroup below `root` (needs
// write access up the tree, and a hierarchy that accepts processes there)
// by moving a short-lived child into a probe cgroup.
absl::Status ProbeCgroup(const std::filesystem::path& root) {
  if (::mkdir(root.c_str(), 0755) < 0 && errno != EEXIST) {
    return ErrnoError("cannot create cgroup", root, errno);
  }
  std::filesystem::path probe =
      root /
      absl::StrCat("probe-", ::getpid(), "-", absl::ToUnixNanos(absl::Now()));
  if (::mkdir(probe.c_str(), 0755) < 0) {
    return ErrnoError("cannot create cgroup", probe, errno);
  }
  absl::Status status;
  int fd = ::open((probe / "cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    status = ErrnoError("cannot open", probe / "cgroup.procs", errno);
  } else {
    pid_t pid = fork();
    if (pid == 0) _exit(::write(fd, "0", 1) == 1 ? 0 : 1);
    int wstatus = 0;
    if (pid < 0) {
      status = ErrnoError("fork failed while probing", probe, errno);
    } else {
      while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
      }
      if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        status = MakeError(
            ErrorCode::kInternalError,
            absl::StrCat("cannot move a process into ", probe.string()),
            {{"path", probe.string()}});
      }
    }
    ::close(fd);
  }
  for (int attempt = 0; attempt < 500; ++attempt) {
    if (::rmdir(probe.c_str()) == 0 || errno == ENOENT) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return status;
}

// -------------------------------------------------------- environ-marker

// True when the NUL-separated `environ` holds an entry starting with
// `entry_prefix` (which includes "NAME="); with `exact`, the entry must be
// exactly `entry_prefix`.
bool EnvironHas(std::string_view environ, std::string_view entry_prefix,
                bool exact) {
  size_t start = 0;
  while (start < environ.size()) {
    size_t end = environ.find('\0', start);
    if (end == std::string_view::npos) end = environ.size();
    std::string_view entry = environ.substr(start, end - start);
    if (exact ? entry == entry_prefix
              : entry.substr(0, entry_prefix.size()) == entry_prefix) {
      return true;
    }
    start = end + 1;
  }
  return false;
}

std::vector<pid_t> PidsWithMarker(std::string_view entry_prefix, bool exact) {
  std::vector<pid_t> found;
  const pid_t self = ::getpid();
  for (pid_t pid : AllPids()) {
    if (pid == self) continue;
    auto environ = ReadSmallFile(absl::StrCat("/proc/", pid, "/environ"));
    if (environ && EnvironHas(*environ, entry_prefix, exact)) {
      found.push_back(pid);
    }
  }
  return found;
}

absl::Status KillMarked(std::string_view entry_prefix, bool exact,
                        absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::vector<pid_t> pids = PidsWithMarker(entry_prefix, exact);
    if (pids.empty()) return absl::OkStatus();
    if (absl::Now() >= deadline) {
      return MakeError(
          ErrorCode::kInternalError,
          absl::StrCat(pids.size(), " processes marked ",
                       std::string(entry_prefix), " survived SIGKILL"),
          {{"marker", std::string(entry_prefix)},
           {"first_pid", absl::StrCat(pids.front())}});
    }
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(kKillPollInterval));
  }
}

class MarkerContainment final : public Containment {
 public:
  explicit MarkerContainment(std::string value)
      : value_(std::move(value)),
        entry_(absl::StrCat(std::string(kSandboxMarkerVariable), "=", value_)) {
  }

  ~MarkerContainment() override { (void)KillAll(kDestroyKillTimeout); }

  std::string_view Kind() const override { return "environ-marker"; }

  ContainmentJoin Join() const override {
    return {{{std::string(kSandboxMarkerVariable), value_}}, -1};
  }

  absl::Status KillAll(absl::Duration timeout) override {
    return KillMarked(entry_, /*exact=*/true, timeout);
  }

  absl::StatusOr<std::vector<pid_t>> Members() const override {
    return PidsWithMarker(entry_, /*exact=*/true);
  }

 private:
  const std::string value_;
  const std::string entry_;
};

class MarkerProvider final : public ContainmentProvider {
 public:
  explicit MarkerProvider(std::string name_space)
      : name_space_(std::move(name_space)) {}

  std::string_view Kind() const override { return "environ-marker"; }

  absl::StatusOr<std::unique_ptr<Containment>> Create(
      const std::string& id) override {
    if (!IsSimpleName(id)) {
      return InputError("id", id, "containment ids are [A-Za-z0-9_-]+");
    }
    return std::unique_ptr<Containment>(
        new MarkerContainment(absl::StrCat(name_space_, "/", id)));
  }

  absl::Status CleanUpLeftovers() override {
    return KillMarked(absl::StrCat(std::string(kSandboxMarkerVariable), "=",
                                   name_space_, "/"),
                      /*exact=*/false, kDestroyKillTimeout);
  }

 private:
  const std::string name_space_;
};

}  // namespace

absl::StatusOr<ContainmentMode> ParseContainmentMode(std::string_view value,
                                                     std::string_view field) {
  if (value == "auto") return ContainmentMode::kAuto;
  if (value == "cgroup") return ContainmentMode::kCgroup;
  if (value == "environ-marker") return ContainmentMode::kEnvironMarker;
  return InputError(field, value,
                    "expected \"auto\", \"cgroup\" or \"environ-marker\"");
}

absl::StatusOr<std::unique_ptr<ContainmentProvider>> MakeContainmentProvider(
    ContainmentMode mode, const std::string& name_space,
    const std::filesystem::path& cgroup_parent) {
  if (!IsSimpleName(name_space)) {
    return InputError("namespace", name_space,
                      "a containment namespace is [A-Za-z0-9_-]+");
  }
  if (mode != ContainmentMode::kEnvironMarker) {
    absl::StatusOr<std::filesystem::path> parent = cgroup_parent;
    if (cgroup_parent.empty()) parent = OwnCgroupDir();
    absl::Status usable = parent.status();
    std::filesystem::path root;
    if (usable.ok()) {
      root = *parent / absl::StrCat("drover-", name_space);
      usable = ProbeCgroup(root);
    }
    if (usable.ok()) {
      return std::unique_ptr<ContainmentProvider>(new CgroupProvider(root));
    }
    if (mode == ContainmentMode::kCgroup) {
      return MakeError(ErrorCode::kInternalError,
                       absl::StrCat("cgroup containment is not available: ",
                                    usable.message()),
                       {{"field", "containment"}, {"value", "cgroup"}});
    }
  }
  return std::unique_ptr<ContainmentProvider>(new MarkerProvider(name_space));
}

}  // namespace drover::engines::native
