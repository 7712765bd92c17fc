// The artifacts plugin with the real native engine and a real queue
// (PostgreSQL, filesystem blob store over HTTP, Artifacts over gRPC).
#include "plugins/artifacts/artifacts_plugin.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engines/native/native_engine.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/artifacts/testing/plugin_test_util.h"
#include "plugins/testing/plugin_harness.h"
#include "queue/artifacts/testing/artifacts_test_env.h"

namespace drover::plugins::artifacts {
namespace {

using engines::native::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string FieldOf(const absl::Status& status) {
  return GetErrorInfo(status).details["field"];
}

TEST(ArtifactsPayloadTest, AcceptsTheDocumentedShape) {
  auto specs = ParseArtifactSpecs(json::parse(R"({"artifacts": [
      {"type": "file", "path": "out/a.txt", "name": "public/a.txt",
       "expires": "2035-01-01T00:00:00Z", "contentType": "text/plain",
       "optional": true},
      {"type": "directory", "path": "out", "name": "public/out"}]})"));
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 2u);
  EXPECT_TRUE((*specs)[0].optional);
  EXPECT_EQ(*(*specs)[0].expires, absl::FromUnixSeconds(2051222400));
  EXPECT_EQ((*specs)[1].type, ArtifactSpec::Type::kDirectory);
  EXPECT_TRUE(ParseArtifactSpecs(json::object())->empty());
}

TEST(ArtifactsPayloadTest, RefusesEscapingPathsAndBadFieldsPrecisely) {
  struct Case {
    std::string entry;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"type": "file", "path": "../secret", "name": "n"})",
            "payload.artifacts[0].path"},
           {R"({"type": "file", "path": "a/../../secret", "name": "n"})",
            "payload.artifacts[0].path"},
           {R"({"type": "file", "path": "/etc/passwd", "name": "n"})",
            "payload.artifacts[0].path"},
           {R"({"type": "file", "path": "a", "name": "../n"})",
            "payload.artifacts[0].name"},
           {R"({"type": "file", "path": "a", "name": "/n"})",
            "payload.artifacts[0].name"},
           {R"({"type": "link", "path": "a", "name": "n"})",
            "payload.artifacts[0].type"},
           {R"({"path": "a", "name": "n"})", "payload.artifacts[0].type"},
           {R"({"type": "file", "name": "n"})", "payload.artifacts[0].path"},
           {R"({"type": "file", "path": "a"})", "payload.artifacts[0].name"},
           {R"({"type": "file", "path": "a", "name": "n", "expires": "soon"})",
            "payload.artifacts[0].expires"},
           {R"({"type": "file", "path": "a", "name": "n", "optional": 1})",
            "payload.artifacts[0].optional"},
           {R"({"type": "file", "path": "a", "name": "n", "colour": 1})",
            "payload.artifacts[0].colour"},
       }) {
    absl::Status status = ArtifactsPlugin({}).ValidatePayload(
        json::parse(absl::StrCat(R"({"artifacts": [)", c.entry, "]}")));
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kMalformedPayload)) << c.entry;
    EXPECT_EQ(FieldOf(status), c.field) << c.entry;
  }
  absl::Status duplicate = ArtifactsPlugin({}).ValidatePayload(json::parse(
      R"({"artifacts": [{"type": "file", "path": "a", "name": "n"},
                        {"type": "file", "path": "b", "name": "n"}]})"));
  EXPECT_EQ(FieldOf(duplicate), "payload.artifacts[1].name");
}

TEST(ArtifactsPayloadTest, ContentTypesAndCompressibility) {
  EXPECT_EQ(GuessContentType("log.TXT"), "text/plain; charset=utf-8");
  EXPECT_EQ(GuessContentType("a/b/report.json"), "application/json");
  EXPECT_EQ(GuessContentType("bundle.tar.gz"), "application/gzip");
  EXPECT_EQ(GuessContentType("binary"), "application/octet-stream");
  EXPECT_TRUE(IsCompressible("text/plain; charset=utf-8"));
  EXPECT_TRUE(IsCompressible("application/json"));
  EXPECT_TRUE(IsCompressible("application/vnd.api+json"));
  EXPECT_FALSE(IsCompressible("application/gzip"));
  EXPECT_FALSE(IsCompressible("image/png"));
}

TEST(ArtifactsConfigTest, ParsesAndRefusesUnknownKeys) {
  auto options = ParseArtifactsConfig(json{{"concurrency", 8}});
  ASSERT_TRUE(options.ok());
  EXPECT_EQ(options->concurrency, 8);
  EXPECT_EQ(FieldOf(ParseArtifactsConfig(json{{"concurrency", 0}}).status()),
            "plugins.artifacts.concurrency");
  EXPECT_EQ(FieldOf(ParseArtifactsConfig(json{{"speed", 1}}).status()),
            "plugins.artifacts.speed");
}

class ArtifactsPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    queue::artifacts::testing::ArtifactsTestEnvOptions options;
    options.fake_clock = false;
    auto env = queue::artifacts::testing::ArtifactsTestEnv::Create(options);
    if (env.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << "PostgreSQL is unavailable: " << env.status();
    }
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    engines::native::NativeEngineOptions engine_options;
    engine_options.work_dir = dir_.path() / "work";
    auto engine = engines::native::NativeEngine::Create(engine_options);
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
    auto task = env_->StartRunningTask();
    ASSERT_TRUE(task.ok()) << task.status();
    task_id_ = *task;
    task_dir_ = dir_.path() / "task";
    std::filesystem::create_directories(task_dir_);
    auto connection = client::Connection::Create(
        {.url = env_->grpc_target(), .ca_file = "", .credentials = {}});
    ASSERT_TRUE(connection.ok());
    client_ = std::make_unique<client::ArtifactsClient>(*connection);
  }

  plugins::testing::HarnessRun Run(const std::string& script,
                                   const json& artifacts,
                                   ArtifactsOptions options = {}) {
    log_ = std::make_unique<plugins::testing::FileLogSink>(dir_.path() /
                                                           "task.log");
    TaskInfo info = plugins::testing::MakeTaskInfo(
        json{{"command", {"/bin/sh", "-c", script}}, {"artifacts", artifacts}},
        log_.get());
    info.task_id = task_id_;
    info.run_id = 0;
    info.queue_address = env_->grpc_target();
    info.credentials = nullptr;
    ArtifactsPlugin plugin(std::move(options));
    EXPECT_TRUE(plugin.ValidatePayload(info.payload).ok());
    return plugins::testing::RunTask(*engine_, {&plugin}, info, task_dir_);
  }

  std::map<std::string, v1::Artifact> List() {
    std::map<std::string, v1::Artifact> out;
    v1::ListArtifactsRequest request;
    request.set_task_id(task_id_);
    request.set_limit(1000);
    auto page = client_->ListArtifacts(request);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const auto& a : page->artifacts()) out[a.name()] = a;
    }
    return out;
  }

  // Downloads an artifact (gzip transfer encoding undone).
  std::string Fetch(const std::string& name) {
    v1::ArtifactRequest request;
    request.set_task_id(task_id_);
    request.set_name(name);
    auto got = client_->GetArtifact(request);
    EXPECT_TRUE(got.ok()) << got.status();
    if (!got.ok()) return "";
    std::string body;
    auto downloaded = client::Download(
        got->url(), 0,
        [&](std::string_view bytes) {
          body.append(bytes);
          return absl::OkStatus();
        },
        /*decode=*/true);
    EXPECT_TRUE(downloaded.ok()) << downloaded.status();
    return body;
  }

  TempDir dir_;
  std::unique_ptr<queue::artifacts::testing::ArtifactsTestEnv> env_;
  std::unique_ptr<engines::native::NativeEngine> engine_;
  std::unique_ptr<client::ArtifactsClient> client_;
  std::unique_ptr<plugins::testing::FileLogSink> log_;
  std::string task_id_;
  std::filesystem::path task_dir_;
};

TEST_F(ArtifactsPluginTest, FilesAndDirectoriesArriveByteIdentical) {
  auto run =
      Run("set -e; mkdir -p out/sub; "
          "i=0; while [ $i -lt 400 ]; do echo \"text line $i\"; i=$((i+1)); "
          "done > out/a.txt; "
          "head -c 300000 /dev/urandom > out/sub/b.bin; "
          "printf '{\"ok\": true}' > result.json",
          json::parse(R"([
        {"type": "file", "path": "result.json", "name": "public/result.json"},
        {"type": "directory", "path": "out", "name": "public/out"}])"),
          {.concurrency = 2});
  ASSERT_TRUE(run.failed_stage.empty())
      << run.failed_stage << ": " << run.failure << "\n"
      << log_->text();
  EXPECT_EQ(run.outcome.state, Outcome::State::kCompleted);

  auto listed = List();
  EXPECT_EQ(listed.size(), 3u);
  for (const auto& [name, file] : std::map<std::string, std::string>{
           {"public/result.json", "result.json"},
           {"public/out/a.txt", "out/a.txt"},
           {"public/out/sub/b.bin", "out/sub/b.bin"}}) {
    ASSERT_TRUE(listed.count(name)) << name;
    EXPECT_TRUE(listed[name].present()) << name;
    EXPECT_EQ(Fetch(name), plugins::testing::ReadWholeFile(task_dir_ / file))
        << name;
  }
  // Text is stored gzip-encoded; random bytes and tiny files are not.
  EXPECT_EQ(listed["public/out/a.txt"].blob().content_encoding(), "gzip");
  EXPECT_LT(listed["public/out/a.txt"].blob().size(),
            static_cast<int64_t>(
                std::filesystem::file_size(task_dir_ / "out/a.txt")));
  EXPECT_EQ(listed["public/out/sub/b.bin"].blob().content_encoding(), "");
  EXPECT_EQ(listed["public/out/sub/b.bin"].content_type(),
            "application/octet-stream");
  EXPECT_EQ(listed["public/result.json"].content_type(), "application/json");
  EXPECT_THAT(log_->text(), HasSubstr("artifact public/out/a.txt: uploaded"));
}

TEST_F(ArtifactsPluginTest, MissingPathFailsTheRunWithAnErrorArtifact) {
  auto run = Run("echo hi > here.txt", json::parse(R"([
        {"type": "file", "path": "here.txt", "name": "public/here.txt"},
        {"type": "file", "path": "nope.txt", "name": "public/nope.txt"},
        {"type": "file", "path": "maybe.txt", "name": "public/maybe.txt",
         "optional": true}])"));
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  EXPECT_EQ(run.outcome.state, Outcome::State::kFailed);
  EXPECT_THAT(log_->text(),
              HasSubstr("artifact public/nope.txt: path nope.txt does not "
                        "exist"));
  EXPECT_THAT(log_->text(), HasSubstr("optional path maybe.txt does not "
                                      "exist; skipped"));
  auto listed = List();
  ASSERT_TRUE(listed.count("public/nope.txt"));
  EXPECT_EQ(listed["public/nope.txt"].error().reason(),
            "file-missing-on-worker");
  EXPECT_THAT(listed["public/nope.txt"].error().message(),
              HasSubstr("nope.txt"));
  EXPECT_FALSE(listed.count("public/maybe.txt"));
  // What did exist is still published.
  EXPECT_EQ(Fetch("public/here.txt"), "hi\n");
}

TEST_F(ArtifactsPluginTest, SymlinkLeavingTheTaskDirectoryIsRefused) {
  auto run = Run("ln -s /etc/hostname leak; mkdir d; ln -s /etc d/etc",
                 json::parse(R"([
        {"type": "file", "path": "leak", "name": "public/leak"},
        {"type": "directory", "path": "d", "name": "public/d"}])"));
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  EXPECT_EQ(run.outcome.state, Outcome::State::kFailed);
  auto listed = List();
  ASSERT_EQ(listed.size(), 2u);
  EXPECT_EQ(listed["public/leak"].error().reason(),
            "invalid-resource-on-worker");
  EXPECT_EQ(listed["public/d"].error().reason(), "invalid-resource-on-worker");
  EXPECT_THAT(log_->text(), HasSubstr("path leak is refused"));
}

TEST_F(ArtifactsPluginTest, ATypeMismatchFailsTheRun) {
  auto run = Run("mkdir dir; echo x > file", json::parse(R"([
        {"type": "file", "path": "dir", "name": "public/dir"},
        {"type": "directory", "path": "file", "name": "public/file"}])"));
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  EXPECT_EQ(run.outcome.state, Outcome::State::kFailed);
  auto listed = List();
  EXPECT_EQ(listed["public/dir"].error().reason(),
            "invalid-resource-on-worker");
  EXPECT_THAT(listed["public/file"].error().message(),
              HasSubstr("is not a directory"));
}

TEST_F(ArtifactsPluginTest, ManyFilesUploadWithBoundedConcurrency) {
  auto run =
      Run("mkdir many; i=0; while [ $i -lt 40 ]; do echo $i > many/f$i.txt; "
          "i=$((i+1)); done",
          json::parse(R"([{"type": "directory", "path": "many",
                       "name": "public/many"}])"),
          {.concurrency = 3});
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  auto listed = List();
  EXPECT_EQ(listed.size(), 40u);
  EXPECT_EQ(Fetch("public/many/f17.txt"), "17\n");
}

TEST_F(ArtifactsPluginTest, AnUnreachableQueueFailsFinishedAsInternalError) {
  ArtifactsOptions options;
  options.transfer.max_attempts = 2;
  options.transfer.initial_backoff = absl::Milliseconds(10);
  log_ =
      std::make_unique<plugins::testing::FileLogSink>(dir_.path() / "task.log");
  TaskInfo info = plugins::testing::MakeTaskInfo(
      json{{"command", {"/bin/sh", "-c", "echo x > f"}},
           {"artifacts", json::parse(R"([{"type": "file", "path": "f",
                                          "name": "public/f"}])")}},
      log_.get());
  info.task_id = task_id_;
  info.run_id = 0;
  info.queue_address = "127.0.0.1:1";  // nothing listens there
  ArtifactsPlugin plugin(options);
  auto run = plugins::testing::RunTask(*engine_, {&plugin}, info, task_dir_);
  EXPECT_EQ(run.failed_stage, "finished");
  EXPECT_TRUE(HasErrorCode(run.failure, ErrorCode::kInternalError))
      << run.failure;
  EXPECT_EQ(GetErrorInfo(run.failure).details["artifact"], "public/f");
}

}  // namespace
}  // namespace drover::plugins::artifacts
