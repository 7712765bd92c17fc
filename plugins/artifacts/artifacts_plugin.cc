#include "plugins/artifacts/artifacts_plugin.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "spdlog/spdlog.h"

namespace drover::plugins::artifacts {
namespace {

constexpr size_t kMaxNameBytes = 990;

absl::Status Malformed(const std::string& field, std::string_view value,
                       std::string_view message) {
  return MakeError(ErrorCode::kMalformedPayload,
                   absl::StrCat(field, ": ", std::string(message)),
                   {{"field", field}, {"value", std::string(value)}});
}

// The rules the queue applies to artifact names (blob key rules), checked
// here too so a bad name fails the payload before the task runs.
std::string NameProblem(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxNameBytes) return "longer than 990 bytes";
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u > 0x7e || c == '\\') {
      return "only printable ASCII characters other than '\\' are allowed";
    }
  }
  if (name.front() == '/' || name.back() == '/') {
    return "must not start or end with '/'";
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    std::string_view segment = name.substr(start, end - start);
    if (segment.empty()) return "empty segment ('//')";
    if (segment == "." || segment == "..") {
      return "'.' and '..' segments are not allowed";
    }
    if (segment.front() == ' ' || segment.back() == ' ') {
      return "segments must not start or end with a space";
    }
    start = end + 1;
  }
  return "";
}

// Relative, inside the working directory by its spelling (symlinks are
// Extract's business).
std::string PathProblem(std::string_view path) {
  if (path.empty()) return "must not be empty";
  if (path.size() > 4096) return "longer than 4096 bytes";
  if (path.front() == '/') {
    return "must be relative to the task's working directory";
  }
  for (const auto& part : std::filesystem::path(path)) {
    if (part == "..")
      return "must not leave the task's working directory ('..')";
  }
  for (char c : path) {
    if (c == '\0') return "must not contain NUL";
  }
  return "";
}

struct Job {
  std::string name;
  std::optional<absl::Time> expires;
  // A blob:
  std::filesystem::path file;
  std::string content_type;
  // Or an error artifact (reason set):
  std::string error_reason;
  std::string error_message;
};

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (bytes < (int64_t{1} << 20)) {
    return absl::StrCat(bytes / 1024, ".", (bytes % 1024) * 10 / 1024, " KiB");
  }
  return absl::StrCat(bytes >> 20, ".", ((bytes >> 10) % 1024) * 10 / 1024,
                      " MiB");
}

class ArtifactsTaskPlugin final : public TaskPlugin {
 public:
  ArtifactsTaskPlugin(const ArtifactsOptions& options, TaskInfo info,
                      std::shared_ptr<client::ArtifactsClient> client,
                      std::vector<ArtifactSpec> specs)
      : options_(options),
        info_(std::move(info)),
        client_(std::move(client)),
        specs_(std::move(specs)) {}

  ~ArtifactsTaskPlugin() override { RemoveTemp(); }

  absl::Status Stopped(engines::Sandbox& sandbox, const engines::Result& result,
                       Outcome& outcome) override {
    if (specs_.empty()) return absl::OkStatus();
    std::random_device rd;
    const std::filesystem::path base =
        options_.temp_dir.empty() ? std::filesystem::temp_directory_path()
                                  : options_.temp_dir;
    temp_ = base / absl::StrCat("drover-artifacts-", info_.task_id, "-",
                                info_.run_id, "-", rd());
    std::error_code ec;
    std::filesystem::create_directories(temp_, ec);
    if (ec) {
      return MakeError(
          ErrorCode::kInternalError,
          "cannot create a directory for artifacts: " + ec.message(),
          {{"path", temp_.string()}});
    }
    bool failed = false;
    for (size_t i = 0; i < specs_.size(); ++i) {
      const ArtifactSpec& spec = specs_[i];
      const std::filesystem::path dest = temp_ / std::to_string(i);
      absl::Status extracted = sandbox.Extract(spec.path, dest);
      if (extracted.ok()) {
        const bool is_dir = std::filesystem::is_directory(dest, ec);
        const bool want_dir = spec.type == ArtifactSpec::Type::kDirectory;
        if (is_dir != want_dir) {
          failed = true;
          AddError(spec, "invalid-resource-on-worker",
                   absl::StrCat("path ", spec.path, " is ",
                                is_dir ? "a directory" : "not a directory",
                                "; the payload says ",
                                want_dir ? "directory" : "file"));
          continue;
        }
        if (!want_dir) {
          jobs_.push_back({spec.name, spec.expires, dest,
                           spec.content_type.empty()
                               ? GuessContentType(spec.path)
                               : spec.content_type});
          continue;
        }
        DROVER_RETURN_IF_ERROR(AddDirectory(spec, dest));
        continue;
      }
      ErrorInfo error = GetErrorInfo(extracted);
      if (error.code == ErrorCode::kResourceNotFound) {
        if (spec.optional) {
          Log(absl::StrCat("artifact ", spec.name, ": optional path ",
                           spec.path, " does not exist; skipped"));
          continue;
        }
        failed = true;
        AddError(spec, "file-missing-on-worker",
                 absl::StrCat("path ", spec.path, " does not exist"));
        continue;
      }
      if (error.code == ErrorCode::kInputError) {
        failed = true;
        AddError(
            spec, "invalid-resource-on-worker",
            absl::StrCat("path ", spec.path, " is refused: ", error.message));
        continue;
      }
      return extracted;
    }
    if (failed && outcome.state == Outcome::State::kCompleted) {
      outcome.state = Outcome::State::kFailed;
      Log("the run fails: an artifact it declares is missing or invalid");
    }
    return absl::OkStatus();
  }

  absl::Status Finished(engines::Sandbox& sandbox,
                        const Outcome& outcome) override {
    if (jobs_.empty()) return absl::OkStatus();
    std::atomic<size_t> next{0};
    std::mutex mu;
    absl::Status first_error;
    auto worker = [&] {
      for (size_t i = next++; i < jobs_.size(); i = next++) {
        {
          std::lock_guard<std::mutex> lock(mu);
          if (!first_error.ok()) return;
        }
        absl::Status status = Publish(jobs_[i]);
        if (!status.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.ok()) first_error = status;
          return;
        }
      }
    };
    const int threads = std::max(
        1, std::min<int>(options_.concurrency, static_cast<int>(jobs_.size())));
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(worker);
    worker();
    for (auto& t : pool) t.join();
    RemoveTemp();
    return first_error;
  }

  void Dispose() override { RemoveTemp(); }

 private:
  void Log(const std::string& line) {
    if (info_.log != nullptr) info_.log->Write("[drover] " + line + "\n");
  }

  void AddError(const ArtifactSpec& spec, const std::string& reason,
                const std::string& message) {
    Log(absl::StrCat("artifact ", spec.name, ": ", message));
    Job job;
    job.name = spec.name;
    job.expires = spec.expires;
    job.error_reason = reason;
    job.error_message = message;
    jobs_.push_back(std::move(job));
  }

  absl::Status AddDirectory(const ArtifactSpec& spec,
                            const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
         !ec && it != std::filesystem::recursive_directory_iterator();
         it.increment(ec)) {
      if (it->is_regular_file()) files.push_back(it->path());
    }
    if (ec) {
      return MakeError(ErrorCode::kInternalError,
                       "cannot list extracted directory: " + ec.message(),
                       {{"path", spec.path}});
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) {
      // By spelling: std::filesystem::relative would resolve a symlink
      // (which the docker engine's extraction keeps when it stays inside)
      // and name the file after its target, twice over.
      const std::string relative =
          file.lexically_relative(dir).generic_string();
      Job job;
      job.name = spec.name + "/" + relative;
      job.expires = spec.expires;
      job.file = file;
      job.content_type = GuessContentType(relative);
      if (std::string problem = NameProblem(job.name); !problem.empty()) {
        AddError(spec, "invalid-resource-on-worker",
                 absl::StrCat("file ", relative, " gives artifact name ",
                              job.name, ", which ", problem));
        continue;
      }
      jobs_.push_back(std::move(job));
    }
    return absl::OkStatus();
  }

  absl::Status Publish(const Job& job) {
    if (!job.error_reason.empty()) {
      v1::CreateArtifactRequest request;
      request.set_task_id(info_.task_id);
      request.set_run_id(info_.run_id);
      request.set_name(job.name);
      if (job.expires) {
        request.mutable_expires()->set_seconds(
            absl::ToUnixSeconds(*job.expires));
      }
      request.mutable_error()->set_reason(job.error_reason);
      request.mutable_error()->set_message(job.error_message);
      auto created = client_->CreateArtifact(request);
      if (!created.ok()) return Failed(job, created.status());
      return absl::OkStatus();
    }
    std::error_code ec;
    const int64_t size =
        static_cast<int64_t>(std::filesystem::file_size(job.file, ec));
    client::BlobArtifactUpload upload;
    upload.task_id = info_.task_id;
    upload.run_id = info_.run_id;
    upload.name = job.name;
    upload.content_type = job.content_type;
    upload.expires = job.expires;
    upload.file = job.file;
    if (!ec && size >= options_.gzip_min_bytes &&
        IsCompressible(job.content_type)) {
      std::filesystem::path gz = job.file;
      gz += ".gz";
      if (client::GzipFile(job.file, gz).ok()) {
        upload.file = gz;
        upload.content_encoding = "gzip";
      }
    }
    auto uploaded =
        client::UploadBlobArtifact(*client_, upload, options_.transfer);
    if (!uploaded.ok()) return Failed(job, uploaded.status());
    Log(absl::StrCat("artifact ", job.name, ": uploaded ", FormatBytes(size),
                     upload.content_encoding.empty() ? "" : " (gzip)"));
    return absl::OkStatus();
  }

  absl::Status Failed(const Job& job, const absl::Status& status) {
    ErrorInfo error = GetErrorInfo(status);
    Log(absl::StrCat("artifact ", job.name,
                     ": upload failed: ", error.message));
    error.details["artifact"] = job.name;
    error.details["cause"] = std::string(ErrorCodeName(error.code));
    // The worker's failure to publish, whatever the queue answered: the
    // run resolves exception/internal-error (and is retried).
    return MakeError(ErrorCode::kInternalError,
                     absl::StrCat("publishing artifact ", job.name,
                                  " failed: ", error.message),
                     error.details);
  }

  void RemoveTemp() {
    if (temp_.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(temp_, ec);
    temp_.clear();
  }

  const ArtifactsOptions& options_;
  const TaskInfo info_;
  const std::shared_ptr<client::ArtifactsClient> client_;
  const std::vector<ArtifactSpec> specs_;
  std::filesystem::path temp_;
  std::vector<Job> jobs_;
};

}  // namespace

absl::StatusOr<std::vector<ArtifactSpec>> ParseArtifactSpecs(
    const nlohmann::json& payload) {
  std::vector<ArtifactSpec> specs;
  if (!payload.is_object() || !payload.contains("artifacts")) return specs;
  const nlohmann::json& list = payload["artifacts"];
  if (!list.is_array()) {
    return Malformed("payload.artifacts", list.dump(), "expected an array");
  }
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = absl::StrCat("payload.artifacts[", i, "]");
    const nlohmann::json& item = list[i];
    if (!item.is_object()) {
      return Malformed(at, item.dump(), "expected an object");
    }
    ArtifactSpec spec;
    bool has_type = false;
    for (const auto& [key, value] : item.items()) {
      const std::string field = at + "." + key;
      if (key == "type") {
        if (value == "file") {
          spec.type = ArtifactSpec::Type::kFile;
        } else if (value == "directory") {
          spec.type = ArtifactSpec::Type::kDirectory;
        } else {
          return Malformed(field, value.dump(),
                           "expected \"file\" or \"directory\"");
        }
        has_type = true;
      } else if (key == "path") {
        if (!value.is_string()) {
          return Malformed(field, value.dump(), "expected a string");
        }
        spec.path = value.get<std::string>();
        if (std::string problem = PathProblem(spec.path); !problem.empty()) {
          return Malformed(field, spec.path, problem);
        }
      } else if (key == "name") {
        if (!value.is_string()) {
          return Malformed(field, value.dump(), "expected a string");
        }
        spec.name = value.get<std::string>();
        if (std::string problem = NameProblem(spec.name); !problem.empty()) {
          return Malformed(field, spec.name, problem);
        }
      } else if (key == "expires") {
        absl::Time t;
        std::string error;
        if (!value.is_string() ||
            !absl::ParseTime(absl::RFC3339_full, value.get<std::string>(), &t,
                             &error)) {
          return Malformed(field, value.dump(),
                           "expected an RFC 3339 time such as "
                           "2030-01-01T00:00:00Z");
        }
        spec.expires = t;
      } else if (key == "contentType") {
        if (!value.is_string() ||
            value.get<std::string>().find('/') == std::string::npos) {
          return Malformed(field, value.dump(),
                           "expected a MIME type such as text/plain");
        }
        spec.content_type = value.get<std::string>();
      } else if (key == "optional") {
        if (!value.is_boolean()) {
          return Malformed(field, value.dump(), "expected true or false");
        }
        spec.optional = value.get<bool>();
      } else {
        return Malformed(field, key,
                         "unknown key (type, path, name, expires, "
                         "contentType, optional)");
      }
    }
    if (!has_type) return Malformed(at + ".type", "", "type is required");
    if (spec.path.empty())
      return Malformed(at + ".path", "", "path is required");
    if (spec.name.empty())
      return Malformed(at + ".name", "", "name is required");
    if (!names.insert(spec.name).second) {
      return Malformed(at + ".name", spec.name,
                       "another artifact has the same name");
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

std::string GuessContentType(std::string_view file_name) {
  static const std::map<std::string, std::string> kTypes = {
      {".txt", "text/plain; charset=utf-8"},
      {".log", "text/plain; charset=utf-8"},
      {".md", "text/markdown; charset=utf-8"},
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".css", "text/css"},
      {".csv", "text/csv"},
      {".js", "application/javascript"},
      {".json", "application/json"},
      {".xml", "application/xml"},
      {".yml", "application/yaml"},
      {".yaml", "application/yaml"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".pdf", "application/pdf"},
      {".zip", "application/zip"},
      {".gz", "application/gzip"},
      {".tgz", "application/gzip"},
      {".tar", "application/x-tar"},
      {".xz", "application/x-xz"},
      {".zst", "application/zstd"},
      {".bz2", "application/x-bzip2"},
  };
  std::string ext = absl::AsciiStrToLower(
      std::filesystem::path(std::string(file_name)).extension().string());
  auto it = kTypes.find(ext);
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

bool IsCompressible(std::string_view content_type) {
  std::string type = absl::AsciiStrToLower(
      std::string(content_type.substr(0, content_type.find(';'))));
  if (type.rfind("text/", 0) == 0) return true;
  static const std::set<std::string> kTypes = {
      "application/json",     "application/xml",   "application/javascript",
      "application/yaml",     "image/svg+xml",     "application/x-tar",
      "application/x-ndjson", "application/x-yaml"};
  return kTypes.count(type) > 0 ||
         type.size() > 5 && type.substr(type.size() - 5) == "+json";
}

absl::StatusOr<ArtifactsOptions> ParseArtifactsConfig(
    const nlohmann::json& config, std::string_view field) {
  const std::string prefix(field);
  ArtifactsOptions options;
  if (config.is_null()) return options;
  if (!config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  for (const auto& [key, value] : config.items()) {
    const std::string key_field = absl::StrCat(prefix, ".", key);
    if (key == "concurrency") {
      if (!value.is_number_integer() || value.get<int>() < 1 ||
          value.get<int>() > 64) {
        return InputError(key_field, value.dump(), "expected 1..64");
      }
      options.concurrency = value.get<int>();
    } else if (key == "gzip_min_bytes") {
      if (!value.is_number_integer() || value.get<int64_t>() < 0) {
        return InputError(key_field, value.dump(),
                          "expected a whole number of bytes");
      }
      options.gzip_min_bytes = value.get<int64_t>();
    } else if (key == "ca_file") {
      if (!value.is_string()) {
        return InputError(key_field, value.dump(), "expected a file path");
      }
      options.ca_file = value.get<std::string>();
      options.transfer.ca_file = options.ca_file;
    } else {
      return InputError(key_field, key,
                        "unknown artifacts option (concurrency, "
                        "gzip_min_bytes, ca_file)");
    }
  }
  return options;
}

ArtifactsPlugin::ArtifactsPlugin(ArtifactsOptions options,
                                 ArtifactsClientFactory clients)
    : options_(std::move(options)),
      clients_(clients ? std::move(clients)
                       : TaskArtifactsClientFactory(options_.ca_file)) {}

absl::Status ArtifactsPlugin::ValidatePayload(
    const nlohmann::json& payload) const {
  return ParseArtifactSpecs(payload).status();
}

absl::StatusOr<std::unique_ptr<TaskPlugin>> ArtifactsPlugin::NewTaskPlugin(
    const TaskInfo& info) {
  DROVER_ASSIGN_OR_RETURN(std::vector<ArtifactSpec> specs,
                          ParseArtifactSpecs(info.payload));
  std::shared_ptr<client::ArtifactsClient> client;
  if (!specs.empty()) {
    DROVER_ASSIGN_OR_RETURN(client, clients_(info));
  }
  return std::unique_ptr<TaskPlugin>(new ArtifactsTaskPlugin(
      options_, info, std::move(client), std::move(specs)));
}

absl::StatusOr<std::unique_ptr<Plugin>> NewArtifactsPlugin(
    const nlohmann::json& config, std::string_view field) {
  DROVER_ASSIGN_OR_RETURN(ArtifactsOptions options,
                          ParseArtifactsConfig(config, field));
  return std::unique_ptr<Plugin>(new ArtifactsPlugin(std::move(options)));
}

}  // namespace drover::plugins::artifacts
