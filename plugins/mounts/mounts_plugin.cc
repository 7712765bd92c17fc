#include "plugins/mounts/mounts_plugin.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/slugid.h"
#include "common/status.h"
#include "engines/docker/tar_extractor.h"

namespace drover::plugins::mounts {
namespace {

absl::Status Malformed(const std::string& field, std::string_view value,
                       std::string_view message) {
  return MakeError(ErrorCode::kMalformedPayload,
                   absl::StrCat(field, ": ", std::string(message)),
                   {{"field", field}, {"value", std::string(value)}});
}

std::string PathProblem(std::string_view path) {
  if (path.empty()) return "must not be empty";
  if (path.size() > 4096) return "longer than 4096 bytes";
  if (path.front() == '/') return "must be relative to the task directory";
  for (const auto& part : std::filesystem::path(path)) {
    if (part == "..") return "must not leave the task directory ('..')";
  }
  for (char c : path) {
    if (c == '\0') return "must not contain NUL";
  }
  return "";
}

// True when `path` (which exists) resolves to `root` or below it.
bool Inside(const std::filesystem::path& root,
            const std::filesystem::path& path) {
  std::error_code ec;
  auto r = std::filesystem::weakly_canonical(root, ec);
  if (ec) return false;
  auto p = std::filesystem::weakly_canonical(path, ec);
  if (ec) return false;
  auto [rend, pit] = std::mismatch(r.begin(), r.end(), p.begin(), p.end());
  return rend == r.end();
}

class MountsTaskPlugin final : public TaskPlugin {
 public:
  MountsTaskPlugin(const MountsOptions& options, TaskInfo info,
                   std::shared_ptr<client::ArtifactsClient> client,
                   std::vector<MountSpec> mounts)
      : options_(options),
        info_(std::move(info)),
        client_(std::move(client)),
        mounts_(std::move(mounts)) {}

  absl::Status Prepare(engines::SandboxSpec& spec) override {
    if (mounts_.empty()) return absl::OkStatus();
    if (spec.task_dir.empty()) {
      return InternalError(
          "mounts need a task directory; the worker gave none");
    }
    for (size_t i = 0; i < mounts_.size(); ++i) {
      const MountSpec& mount = mounts_[i];
      absl::Status status = Fetch(mount, spec.task_dir);
      if (!status.ok()) {
        Log(absl::StrCat("mount ", i, " (", Describe(mount), " -> ",
                         mount.target, "): ", GetErrorInfo(status).message));
        return status;
      }
      Log(absl::StrCat("mount ", i, ": ", Describe(mount), " -> ",
                       mount.target));
    }
    return absl::OkStatus();
  }

 private:
  static std::string Describe(const MountSpec& mount) {
    if (!mount.task_id.empty()) {
      return absl::StrCat("artifact ", mount.artifact, " of task ",
                          mount.task_id);
    }
    return mount.url.substr(0, mount.url.find('?'));
  }

  void Log(const std::string& line) {
    if (info_.log != nullptr) info_.log->Write("[drover] " + line + "\n");
  }

  // The URL to fetch. Errors: ResourceNotFound for inputs that are not
  // there (missing, expired, error artifacts).
  absl::StatusOr<std::string> Resolve(const MountSpec& mount) {
    if (mount.task_id.empty()) return mount.url;
    v1::LatestArtifactRequest request;
    request.set_task_id(mount.task_id);
    request.set_name(mount.artifact);
    auto got = client_->GetLatestArtifact(request);
    if (!got.ok()) {
      ErrorInfo error = GetErrorInfo(got.status());
      if (error.code == ErrorCode::kResourceNotFound ||
          error.code == ErrorCode::kResourceExpired ||
          error.code == ErrorCode::kInsufficientScopes) {
        error.details["mount_task_id"] = mount.task_id;
        error.details["mount_artifact"] = mount.artifact;
        return MakeError(ErrorCode::kResourceNotFound,
                         absl::StrCat("input ", Describe(mount),
                                      " is not available: ", error.message),
                         error.details);
      }
      return got.status();
    }
    if (got->artifact().has_error()) {
      return MakeError(
          ErrorCode::kResourceNotFound,
          absl::StrCat("input ", Describe(mount), " is an error artifact: ",
                       got->artifact().error().reason(), ": ",
                       got->artifact().error().message()),
          {{"mount_task_id", mount.task_id},
           {"mount_artifact", mount.artifact},
           {"reason", got->artifact().error().reason()}});
    }
    return got->url();
  }

  // Fetch failures other than our own disk: the input is unavailable.
  absl::Status Unavailable(const MountSpec& mount, const absl::Status& status) {
    ErrorInfo error = GetErrorInfo(status);
    if (error.code == ErrorCode::kMalformedPayload ||
        error.code == ErrorCode::kInternalError) {
      return status;
    }
    if (error.code == ErrorCode::kInputError &&
        error.details["field"] == "gzip") {
      return MakeError(
          ErrorCode::kMalformedPayload,
          absl::StrCat("input ", Describe(mount),
                       " is not a valid tar.gz archive: ", error.message),
          error.details);
    }
    return MakeError(
        ErrorCode::kResourceNotFound,
        absl::StrCat("fetching ", Describe(mount), " failed: ", error.message),
        error.details);
  }

  absl::Status Fetch(const MountSpec& mount,
                     const std::filesystem::path& task_dir) {
    DROVER_ASSIGN_OR_RETURN(std::string url, Resolve(mount));
    const std::filesystem::path target = task_dir / mount.target;
    std::error_code ec;
    std::filesystem::create_directories(
        mount.directory ? target : target.parent_path(), ec);
    if (ec) {
      return MakeError(ErrorCode::kInternalError,
                       "cannot create the mount's directory: " + ec.message(),
                       {{"path", target.string()}});
    }
    if (!Inside(task_dir, mount.directory ? target : target.parent_path())) {
      return MakeError(
          ErrorCode::kMalformedPayload,
          absl::StrCat("mount target ", mount.target,
                       " leads outside the task directory"),
          {{"field", "payload.mounts.target"}, {"value", mount.target}});
    }
    if (mount.directory) {
      engines::docker::TarExtractor extractor(target, "");
      client::GzipDecoder gunzip([&](std::string_view tar) {
        absl::Status s = extractor.Feed(tar);
        return ArchiveError(s);
      });
      auto fetched = client::Download(
          url, 0, [&](std::string_view bytes) { return gunzip.Feed(bytes); },
          /*decode=*/true, options_.transfer);
      if (!fetched.ok()) return Unavailable(mount, fetched.status());
      if (absl::Status s = gunzip.Finish(); !s.ok()) {
        return Unavailable(mount, s);
      }
      return ArchiveError(extractor.Finish());
    }
    // O_NOFOLLOW: never write through a link an earlier mount left there.
    int fd =
        ::open(target.c_str(),
               O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      return MakeError(ErrorCode::kInternalError,
                       absl::StrCat("cannot create ", mount.target, ": ",
                                    std::strerror(errno)),
                       {{"path", target.string()}});
    }
    auto fetched = client::Download(
        url, 0,
        [&](std::string_view bytes) -> absl::Status {
          while (!bytes.empty()) {
            ssize_t n = ::write(fd, bytes.data(), bytes.size());
            if (n < 0) {
              if (errno == EINTR) continue;
              return InternalError(absl::StrCat("writing ", mount.target, ": ",
                                                std::strerror(errno)));
            }
            bytes.remove_prefix(static_cast<size_t>(n));
          }
          return absl::OkStatus();
        },
        /*decode=*/true, options_.transfer);
    ::close(fd);
    if (!fetched.ok()) return Unavailable(mount, fetched.status());
    return absl::OkStatus();
  }

  // Entries escaping the directory are the archive's fault.
  static absl::Status ArchiveError(const absl::Status& status) {
    if (!HasErrorCode(status, ErrorCode::kInputError)) return status;
    ErrorInfo error = GetErrorInfo(status);
    return MakeError(ErrorCode::kMalformedPayload,
                     "the archive is refused: " + error.message, error.details);
  }

  const MountsOptions& options_;
  const TaskInfo info_;
  const std::shared_ptr<client::ArtifactsClient> client_;
  const std::vector<MountSpec> mounts_;
};

}  // namespace

absl::StatusOr<std::vector<MountSpec>> ParseMountSpecs(
    const nlohmann::json& payload) {
  std::vector<MountSpec> mounts;
  if (!payload.is_object() || !payload.contains("mounts")) return mounts;
  const nlohmann::json& list = payload["mounts"];
  if (!list.is_array()) {
    return Malformed("payload.mounts", list.dump(), "expected an array");
  }
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = absl::StrCat("payload.mounts[", i, "]");
    const nlohmann::json& item = list[i];
    if (!item.is_object())
      return Malformed(at, item.dump(), "expected an object");
    MountSpec mount;
    std::string format;
    bool has_content = false;
    bool has_target = false;
    for (const auto& [key, value] : item.items()) {
      const std::string field = at + "." + key;
      if (key == "content") {
        has_content = true;
        if (!value.is_object()) {
          return Malformed(field, value.dump(),
                           "expected {\"task_id\", \"artifact\"} or "
                           "{\"url\"}");
        }
        for (const auto& [ckey, cvalue] : value.items()) {
          const std::string cfield = field + "." + ckey;
          if (!cvalue.is_string()) {
            return Malformed(cfield, cvalue.dump(), "expected a string");
          }
          const std::string text = cvalue.get<std::string>();
          if (ckey == "task_id") {
            if (!IsValidSlugId(text)) {
              return Malformed(cfield, text, "expected a task id (slug id)");
            }
            mount.task_id = text;
          } else if (ckey == "artifact") {
            if (text.empty() || text.size() > 990 || text.front() == '/') {
              return Malformed(cfield, text, "expected an artifact name");
            }
            mount.artifact = text;
          } else if (ckey == "url") {
            if (text.rfind("http://", 0) != 0 &&
                text.rfind("https://", 0) != 0) {
              return Malformed(cfield, text,
                               "expected an http:// or https:// URL");
            }
            mount.url = text;
          } else {
            return Malformed(cfield, ckey,
                             "unknown key (task_id, artifact, url)");
          }
        }
        const bool artifact = !mount.task_id.empty() || !mount.artifact.empty();
        if (artifact && !mount.url.empty()) {
          return Malformed(field, value.dump(),
                           "give either task_id and artifact, or url");
        }
        if (artifact && (mount.task_id.empty() || mount.artifact.empty())) {
          return Malformed(field, value.dump(),
                           "task_id and artifact go together");
        }
        if (!artifact && mount.url.empty()) {
          return Malformed(field, value.dump(),
                           "expected {\"task_id\", \"artifact\"} or "
                           "{\"url\"}");
        }
      } else if (key == "directory" || key == "file") {
        if (has_target) {
          return Malformed(field, key, "give either directory or file");
        }
        has_target = true;
        if (!value.is_string()) {
          return Malformed(field, value.dump(), "expected a string");
        }
        mount.target = value.get<std::string>();
        mount.directory = key == "directory";
        if (std::string problem = PathProblem(mount.target); !problem.empty()) {
          return Malformed(field, mount.target, problem);
        }
      } else if (key == "format") {
        if (value != "tar.gz" && value != "none") {
          return Malformed(field, value.dump(),
                           "expected \"tar.gz\" or \"none\"");
        }
        format = value.get<std::string>();
      } else {
        return Malformed(field, key,
                         "unknown key (content, directory, file, format)");
      }
    }
    if (!has_content)
      return Malformed(at + ".content", "", "content is required");
    if (!has_target) {
      return Malformed(at + ".directory", "",
                       "a directory or a file is required");
    }
    if (mount.directory && format == "none") {
      return Malformed(at + ".format", format,
                       "a directory mount unpacks a tar.gz archive");
    }
    if (!mount.directory && format == "tar.gz") {
      return Malformed(at + ".format", format,
                       "a file mount stores the bytes as they are (none); "
                       "use directory to unpack");
    }
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

absl::StatusOr<MountsOptions> ParseMountsConfig(const nlohmann::json& config,
                                                std::string_view field) {
  const std::string prefix(field);
  MountsOptions options;
  if (config.is_null()) return options;
  if (!config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  for (const auto& [key, value] : config.items()) {
    const std::string key_field = absl::StrCat(prefix, ".", key);
    if (key == "ca_file" && value.is_string()) {
      options.ca_file = value.get<std::string>();
      options.transfer.ca_file = options.ca_file;
    } else if (key == "ca_file") {
      return InputError(key_field, value.dump(), "expected a file path");
    } else {
      return InputError(key_field, key, "unknown mounts option (ca_file)");
    }
  }
  return options;
}

MountsPlugin::MountsPlugin(MountsOptions options,
                           artifacts::ArtifactsClientFactory clients)
    : options_(std::move(options)),
      clients_(clients
                   ? std::move(clients)
                   : artifacts::TaskArtifactsClientFactory(options_.ca_file)) {}

absl::Status MountsPlugin::ValidatePayload(
    const nlohmann::json& payload) const {
  return ParseMountSpecs(payload).status();
}

absl::StatusOr<std::unique_ptr<TaskPlugin>> MountsPlugin::NewTaskPlugin(
    const TaskInfo& info) {
  DROVER_ASSIGN_OR_RETURN(std::vector<MountSpec> mounts,
                          ParseMountSpecs(info.payload));
  std::shared_ptr<client::ArtifactsClient> client;
  if (!mounts.empty()) {
    DROVER_ASSIGN_OR_RETURN(client, clients_(info));
  }
  return std::unique_ptr<TaskPlugin>(new MountsTaskPlugin(
      options_, info, std::move(client), std::move(mounts)));
}

absl::StatusOr<std::unique_ptr<Plugin>> NewMountsPlugin(
    const nlohmann::json& config, std::string_view field) {
  DROVER_ASSIGN_OR_RETURN(MountsOptions options,
                          ParseMountsConfig(config, field));
  return std::unique_ptr<Plugin>(new MountsPlugin(std::move(options)));
}

}  // namespace drover::plugins::mounts
