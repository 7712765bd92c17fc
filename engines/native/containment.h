// Containment: the set of every process a task started, including daemons
// that double-forked and called setsid() to leave the task's session and
// process group, so that all of them can be killed when the task ends.
//
// Two kinds:
//  - cgroup: a cgroup v2 directory per sandbox. The child joins it before
//    exec, every descendant inherits it and no process can leave it without
//    privileges; killing uses cgroup.kill (Linux >= 5.14) or repeated
//    SIGKILL of cgroup.procs. Needs a writable cgroup2 hierarchy (root, or
//    systemd Delegate=yes).
//  - environ-marker: an environment variable DROVER_SANDBOX=<namespace>/<id>
//    added to the task's environment; killing scans /proc/*/environ and
//    SIGKILLs matches until none are left. Works without privileges, but a
//    process that execs with a cleared environment escapes it.
// MakeContainmentProvider picks the cgroup kind when it works and falls back
// to the marker in kAuto mode.
#ifndef DROVER_ENGINES_NATIVE_CONTAINMENT_H_
#define DROVER_ENGINES_NATIVE_CONTAINMENT_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace drover::engines::native {

// The environment variable carrying the environ-marker.
inline constexpr std::string_view kSandboxMarkerVariable = "DROVER_SANDBOX";

// What a process does to join a containment.
struct ContainmentJoin {
  // Variables added to the process's environment.
  std::vector<std::pair<std::string, std::string>> env;
  // When >= 0, the child writes "0" to this (cgroup.procs) descriptor.
  int cgroup_procs_fd = -1;
};

class Containment {
 public:
  // Kills whatever is still inside and removes the containment.
  virtual ~Containment() = default;

  // "cgroup" or "environ-marker".
  virtual std::string_view Kind() const = 0;

  // How a process joins. The descriptor stays owned by the containment.
  virtual ContainmentJoin Join() const = 0;

  // SIGKILLs every process inside, repeating until none is left. Thread-
  // safe. Errors: InternalError when processes remain after `timeout`.
  virtual absl::Status KillAll(absl::Duration timeout) = 0;

  // The live processes inside now (zombies excluded). Thread-safe.
  // Errors: InternalError when the kernel's list cannot be read.
  virtual absl::StatusOr<std::vector<pid_t>> Members() const = 0;
};

class ContainmentProvider {
 public:
  virtual ~ContainmentProvider() = default;

  virtual std::string_view Kind() const = 0;

  // A new, empty containment; `id` is unique among live ones ([A-Za-z0-9_-]).
  // Thread-safe. Errors: InputError (field "id"); InternalError when the
  // kernel refuses (details carry the path and errno).
  virtual absl::StatusOr<std::unique_ptr<Containment>> Create(
      const std::string& id) = 0;

  // Kills everything in containments of this provider's namespace that an
  // earlier (crashed) worker left behind, and removes them. Call only while
  // no containment of this namespace is live. Errors: InternalError.
  virtual absl::Status CleanUpLeftovers() = 0;
};

enum class ContainmentMode { kAuto, kCgroup, kEnvironMarker };

// "auto", "cgroup", "environ-marker". Errors: InputError naming `field`.
absl::StatusOr<ContainmentMode> ParseContainmentMode(std::string_view value,
                                                     std::string_view field);

// Makes a provider. `name_space` ([A-Za-z0-9_-]) keeps engines sharing a
// host apart (each kills only its own leftovers). `cgroup_parent`, when
// set, is the cgroup v2 directory under which per-sandbox cgroups go;
// otherwise the worker's own cgroup (from /proc/self/cgroup) is used.
// Errors: InternalError in kCgroup mode when no writable cgroup2 hierarchy
// is found (the message says why); InputError (field "namespace").
absl::StatusOr<std::unique_ptr<ContainmentProvider>> MakeContainmentProvider(
    ContainmentMode mode, const std::string& name_space,
    const std::filesystem::path& cgroup_parent = {});

}  // namespace drover::engines::native

#endif  // DROVER_ENGINES_NATIVE_CONTAINMENT_H_
