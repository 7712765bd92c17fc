#include "cli/commands/artifacts.h"

#include <chrono>
#include <fstream>
#include <ostream>
#include <set>
#include <string>

#include "absl/strings/str_format.h"
#include "cli/output.h"
#include "common/status.h"

namespace drover::cli::commands {
namespace {

// Files at least this large written with -o get a progress line.
constexpr int64_t kProgressThreshold = 1 << 20;

std::string KindOf(const v1::Artifact& a) {
  switch (a.kind_case()) {
    case v1::Artifact::kBlob:
      return "blob";
    case v1::Artifact::kReference:
      return "reference";
    case v1::Artifact::kLink:
      return "link";
    case v1::Artifact::kError:
      return "error";
    default:
      return "-";
  }
}

std::string FormatBytes(int64_t bytes) {
  if (bytes < 1024) return absl::StrFormat("%d B", bytes);
  if (bytes < (int64_t{1} << 20)) {
    return absl::StrFormat("%.1f KiB", bytes / 1024.0);
  }
  if (bytes < (int64_t{1} << 30)) {
    return absl::StrFormat("%.1f MiB", bytes / 1048576.0);
  }
  return absl::StrFormat("%.2f GiB", bytes / 1073741824.0);
}

std::string Detail(const v1::Artifact& a) {
  switch (a.kind_case()) {
    case v1::Artifact::kBlob:
      return a.present() ? FormatBytes(a.blob().size()) : "(uploading)";
    case v1::Artifact::kReference:
      return a.reference().url();
    case v1::Artifact::kLink:
      return absl::StrFormat("-> %d/%s", a.link().run_id(),
                             a.link().artifact());
    case v1::Artifact::kError:
      return a.error().reason() + ": " + a.error().message();
    default:
      return "-";
  }
}

int RunList(Context& ctx, const std::string& task_id, int run_id,
            int page_size) {
  auto client = ArtifactsClientFor(ctx);
  if (!client.ok()) return ctx.LocalError(client.status());
  v1::ListArtifactsResponse all;
  std::string token;
  std::set<std::string> seen_tokens;
  for (;;) {
    absl::StatusOr<v1::ListArtifactsResponse> page;
    if (run_id >= 0) {
      v1::ListArtifactsRequest request;
      request.set_task_id(task_id);
      request.set_run_id(run_id);
      request.set_limit(page_size);
      request.set_continuation_token(token);
      page = (*client)->ListArtifacts(request);
    } else {
      v1::ListLatestArtifactsRequest request;
      request.set_task_id(task_id);
      request.set_limit(page_size);
      request.set_continuation_token(token);
      page = (*client)->ListLatestArtifacts(request);
    }
    if (!page.ok()) return ctx.RequestError(page.status());
    all.set_run_id(page->run_id());
    for (auto& a : *page->mutable_artifacts()) {
      *all.add_artifacts() = std::move(a);
    }
    token = page->continuation_token();
    if (token.empty() || !seen_tokens.insert(token).second) break;
  }
  if (ctx.options().json) {
    ctx.PrintJson(all);
  } else {
    ctx.out() << FormatArtifacts(all);
  }
  return kExitOk;
}

int RunGet(Context& ctx, const std::string& task_id, const std::string& name,
           int run_id, const std::string& output) {
  auto client = ArtifactsClientFor(ctx);
  if (!client.ok()) return ctx.LocalError(client.status());
  absl::StatusOr<v1::GetArtifactResponse> got;
  if (run_id >= 0) {
    v1::ArtifactRequest request;
    request.set_task_id(task_id);
    request.set_run_id(run_id);
    request.set_name(name);
    got = (*client)->GetArtifact(request);
  } else {
    v1::LatestArtifactRequest request;
    request.set_task_id(task_id);
    request.set_name(name);
    got = (*client)->GetLatestArtifact(request);
  }
  if (!got.ok()) return ctx.RequestError(got.status());
  if (got->artifact().has_error()) {
    ctx.err() << FormatError(
        MakeError(ErrorCode::kResourceNotFound,
                  absl::StrFormat("artifact %s is an error artifact: %s: %s",
                                  name, got->artifact().error().reason(),
                                  got->artifact().error().message()),
                  {{"reason", got->artifact().error().reason()}}));
    return kExitRequestFailed;
  }
  if (ctx.options().json) {
    ctx.PrintJson(*got);
    return kExitOk;
  }
  std::ofstream file;
  std::ostream* out = &ctx.out();
  if (!output.empty() && output != "-") {
    file.open(output, std::ios::binary | std::ios::trunc);
    if (!file) {
      return ctx.LocalError(
          InputError("-o", output, "cannot create the output file"));
    }
    out = &file;
  }
  const bool show_progress =
      out == &file && got->artifact().has_blob() &&
      got->artifact().blob().size() >= kProgressThreshold;
  auto last_print = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  client::ProgressCallback progress;
  if (show_progress) {
    progress = [&](int64_t done, int64_t total) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_print < std::chrono::milliseconds(200) && done != total) {
        return;
      }
      last_print = now;
      ctx.err() << "\r" << FormatProgress(done, total) << std::flush;
    };
  }
  auto downloaded = client::Download(
      got->url(), 0,
      [&](std::string_view bytes) -> absl::Status {
        out->write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!*out) return InternalError("writing the output failed");
        return absl::OkStatus();
      },
      /*decode=*/true, {}, progress);
  if (show_progress) ctx.err() << "\n";
  if (!downloaded.ok()) return ctx.RequestError(downloaded.status());
  out->flush();
  return kExitOk;
}

}  // namespace

absl::StatusOr<std::unique_ptr<client::ArtifactsClient>> ArtifactsClientFor(
    Context& context) {
  DROVER_ASSIGN_OR_RETURN(const client::QueueClient* queue, context.Queue());
  // The Context owns the connection and outlives the command, so the
  // client may borrow it without sharing ownership.
  std::shared_ptr<const client::Connection> borrowed(
      std::shared_ptr<const client::Connection>(), &queue->connection());
  return std::make_unique<client::ArtifactsClient>(borrowed, queue->defaults());
}

std::string FormatArtifacts(const v1::ListArtifactsResponse& listing) {
  Table table({"NAME", "KIND", "SIZE/TARGET", "CONTENT-TYPE", "EXPIRES"});
  for (const auto& a : listing.artifacts()) {
    table.AddRow({a.name(), KindOf(a), Detail(a), a.content_type(),
                  FormatTimestamp(a.has_expires(), a.expires())});
  }
  return table.Render();
}

std::string FormatProgress(int64_t done, int64_t total) {
  if (total <= 0) return FormatBytes(done);
  return absl::StrFormat("%s / %s (%d%%)", FormatBytes(done),
                         FormatBytes(total),
                         static_cast<int>(done * 100 / total));
}

void AddArtifactCommands(CLI::App& app, Context& context) {
  CLI::App* group = app.add_subcommand("artifacts", "List and fetch artifacts")
                        ->require_subcommand(1);

  struct ListArgs {
    std::string task_id;
    int run_id = -1;
    int page_size = 0;
  };
  auto list_args = std::make_shared<ListArgs>();
  CLI::App* list = group->add_subcommand(
      "list", "List a run's artifacts (the latest run by default)");
  list->add_option("TASK_ID", list_args->task_id, "The task's id")->required();
  list->add_option("--run", list_args->run_id, "Run id (default: latest)")
      ->check(CLI::Range(0, 49));
  list->add_option("--page-size", list_args->page_size,
                   "Artifacts per request (1..1000; default: the server's)")
      ->check(CLI::Range(1, 1000));
  list->callback([&context, list_args] {
    context.set_exit_code(RunList(context, list_args->task_id,
                                  list_args->run_id, list_args->page_size));
  });

  struct GetArgs {
    std::string task_id;
    std::string name;
    int run_id = -1;
    std::string output;
  };
  auto get_args = std::make_shared<GetArgs>();
  CLI::App* get = group->add_subcommand(
      "get", "Download an artifact (links followed) to stdout or a file");
  get->add_option("TASK_ID", get_args->task_id, "The task's id")->required();
  get->add_option("NAME", get_args->name, "Artifact name")->required();
  get->add_option("--run", get_args->run_id, "Run id (default: latest)")
      ->check(CLI::Range(0, 49));
  get->add_option("-o,--output", get_args->output,
                  "Write to this file instead of stdout");
  get->callback([&context, get_args] {
    context.set_exit_code(RunGet(context, get_args->task_id, get_args->name,
                                 get_args->run_id, get_args->output));
  });
}

}  // namespace drover::cli::commands
