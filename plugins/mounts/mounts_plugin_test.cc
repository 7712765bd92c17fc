// The mounts plugin with the real native engine and a real queue: inputs
// are artifacts of an earlier task (or plain URLs) unpacked into the task
// directory before the task runs; bad inputs are refused precisely.
#include "plugins/mounts/mounts_plugin.h"

#include <zlib.h>

#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "engines/native/native_engine.h"
#include "engines/native/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plugins/artifacts/testing/plugin_test_util.h"
#include "plugins/testing/plugin_harness.h"
#include "queue/artifacts/testing/artifacts_test_env.h"

namespace drover::plugins::mounts {
namespace {

using engines::native::testing::TempDir;
using nlohmann::json;
using ::testing::HasSubstr;

// A minimal ustar writer for test archives (including hostile ones).
class TarWriter {
 public:
  void File(const std::string& name, const std::string& content) {
    Header(name, '0', content.size(), "");
    data_ += content;
    data_.append((512 - content.size() % 512) % 512, '\0');
  }
  void Dir(const std::string& name) { Header(name, '5', 0, ""); }
  void Symlink(const std::string& name, const std::string& target) {
    Header(name, '2', 0, target);
  }
  // The archive, gzip-compressed.
  std::string Gzipped() {
    std::string tar = data_ + std::string(1024, '\0');
    z_stream zs{};
    deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&zs, tar.size()) + 64, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(tar.data());
    zs.avail_in = static_cast<uInt>(tar.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
  }

 private:
  void Header(const std::string& name, char type, size_t size,
              const std::string& link) {
    char h[512] = {};
    std::memcpy(h, name.data(), std::min<size_t>(name.size(), 100));
    std::snprintf(h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
    std::snprintf(h + 108, 8, "%07o", 0);
    std::snprintf(h + 116, 8, "%07o", 0);
    std::snprintf(h + 124, 12, "%011llo",
                  static_cast<unsigned long long>(size));
    std::snprintf(h + 136, 12, "%011o", 0);
    std::memset(h + 148, ' ', 8);
    h[156] = type;
    std::memcpy(h + 157, link.data(), std::min<size_t>(link.size(), 100));
    std::memcpy(h + 257, "ustar", 6);
    std::memcpy(h + 263, "00", 2);
    unsigned sum = 0;
    for (unsigned char c : h) sum += c;
    std::snprintf(h + 148, 8, "%06o", sum);
    data_.append(h, 512);
  }
  std::string data_;
};

TEST(MountsPayloadTest, AcceptsTheDocumentedShapes) {
  auto mounts = ParseMountSpecs(json::parse(R"({"mounts": [
      {"content": {"task_id": "fN1eXoAnTQ2-yX0V6_0a3w",
                   "artifact": "public/bundle.tar.gz"},
       "directory": "inputs", "format": "tar.gz"},
      {"content": {"url": "https://example.com/tool"}, "file": "bin/tool"}]})"));
  ASSERT_TRUE(mounts.ok()) << mounts.status();
  ASSERT_EQ(mounts->size(), 2u);
  EXPECT_TRUE((*mounts)[0].directory);
  EXPECT_EQ((*mounts)[1].url, "https://example.com/tool");
}

TEST(MountsPayloadTest, RefusesBadMountsNamingTheField) {
  struct Case {
    std::string mount;
    std::string field;
  };
  for (
      const Case& c : std::vector<Case>{
          {R"({"content": {"url": "https://x/y"}, "directory": "../up"})",
           "payload.mounts[0].directory"},
          {R"({"content": {"url": "https://x/y"}, "file": "/etc/passwd"})",
           "payload.mounts[0].file"},
          {R"({"content": {"url": "ftp://x/y"}, "file": "f"})",
           "payload.mounts[0].content.url"},
          {R"({"content": {"task_id": "short", "artifact": "a"},
                "file": "f"})",
           "payload.mounts[0].content.task_id"},
          {R"({"content": {"task_id": "fN1eXoAnTQ2-yX0V6_0a3w"}, "file": "f"})",
           "payload.mounts[0].content"},
          {R"({"content": {"url": "https://x/y"}, "file": "f",
                "format": "tar.gz"})",
           "payload.mounts[0].format"},
          {R"({"content": {"url": "https://x/y"}, "directory": "d",
                "format": "none"})",
           "payload.mounts[0].format"},
          {R"({"content": {"url": "https://x/y"}, "directory": "d",
                "file": "f"})",
           "payload.mounts[0].file"},
          {R"({"content": {"url": "https://x/y"}})",
           "payload.mounts[0].directory"},
          {R"({"directory": "d"})", "payload.mounts[0].content"},
          {R"({"content": {"url": "https://x/y"}, "file": "f", "mode": 1})",
           "payload.mounts[0].mode"},
      }) {
    absl::Status status = MountsPlugin({}).ValidatePayload(
        json::parse(absl::StrCat(R"({"mounts": [)", c.mount, "]}")));
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kMalformedPayload)) << c.mount;
    EXPECT_EQ(GetErrorInfo(status).details["field"], c.field) << c.mount;
  }
}

class MountsPluginTest : public ::testing::Test {
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
    auto producer = env_->StartRunningTask();
    ASSERT_TRUE(producer.ok());
    producer_ = *producer;
    auto consumer = env_->StartRunningTask();
    ASSERT_TRUE(consumer.ok());
    consumer_ = *consumer;
    task_dir_ = dir_.path() / "task";
    std::filesystem::create_directories(task_dir_);
    log_ = std::make_unique<plugins::testing::FileLogSink>(dir_.path() /
                                                           "task.log");
    auto connection = client::Connection::Create(
        {.url = env_->grpc_target(), .ca_file = "", .credentials = {}});
    ASSERT_TRUE(connection.ok());
    client_ = std::make_unique<client::ArtifactsClient>(*connection);
  }

  // Publishes `content` as an artifact of the producer task.
  void Publish(const std::string& name, const std::string& content,
               const std::string& content_type = "application/gzip") {
    const std::filesystem::path file = dir_.path() / "upload.bin";
    std::ofstream(file, std::ios::binary) << content;
    client::BlobArtifactUpload upload;
    upload.task_id = producer_;
    upload.name = name;
    upload.content_type = content_type;
    upload.file = file;
    auto uploaded = client::UploadBlobArtifact(*client_, upload);
    ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  }

  plugins::testing::HarnessRun Run(const json& mounts,
                                   const std::string& script) {
    TaskInfo info = plugins::testing::MakeTaskInfo(
        json{{"command", {"/bin/sh", "-c", script}}, {"mounts", mounts}},
        log_.get());
    info.task_id = consumer_;
    info.run_id = 0;
    info.queue_address = env_->grpc_target();
    info.credentials = nullptr;
    MountsPlugin plugin({});
    EXPECT_TRUE(plugin.ValidatePayload(info.payload).ok());
    return plugins::testing::RunTask(*engine_, {&plugin}, info, task_dir_);
  }

  json ArtifactMount(const std::string& artifact, const std::string& key,
                     const std::string& target) {
    return json{{"content", {{"task_id", producer_}, {"artifact", artifact}}},
                {key, target}};
  }

  TempDir dir_;
  std::unique_ptr<queue::artifacts::testing::ArtifactsTestEnv> env_;
  std::unique_ptr<engines::native::NativeEngine> engine_;
  std::unique_ptr<client::ArtifactsClient> client_;
  std::unique_ptr<plugins::testing::FileLogSink> log_;
  std::string producer_;
  std::string consumer_;
  std::filesystem::path task_dir_;
};

TEST_F(MountsPluginTest, APreviousTasksArtifactsAreThereWhenTheTaskStarts) {
  TarWriter tar;
  tar.Dir("dir/");
  tar.File("a.txt", "alpha\n");
  tar.File("dir/b.txt", "beta\n");
  tar.Symlink("dir/link", "b.txt");  // stays inside: kept
  Publish("public/bundle.tar.gz", tar.Gzipped());
  Publish("public/config.json", "{\"mode\": \"fast\"}\n", "application/json");

  auto run = Run(
      json::array(
          {ArtifactMount("public/bundle.tar.gz", "directory", "inputs"),
           ArtifactMount("public/config.json", "file", "conf/config.json")}),
      "cat inputs/a.txt inputs/dir/b.txt inputs/dir/link "
      "conf/config.json");
  ASSERT_TRUE(run.failed_stage.empty())
      << run.failed_stage << ": " << run.failure << "\n"
      << log_->text();
  EXPECT_EQ(run.outcome.state, Outcome::State::kCompleted);
  EXPECT_THAT(log_->text(),
              HasSubstr("alpha\nbeta\nbeta\n{\"mode\": \"fast\"}\n"));
  EXPECT_THAT(log_->text(),
              HasSubstr("mount 0: artifact public/bundle.tar.gz"));
}

TEST_F(MountsPluginTest, AUrlMountFetchesTheBytes) {
  Publish("private/tool.sh", "#!/bin/sh\necho tool ran\n",
          "text/x-shellscript");
  auto url = env_->blobs().PresignDownload(producer_ + "/0/private/tool.sh",
                                           absl::Minutes(5));
  ASSERT_TRUE(url.ok());
  auto run = Run(json::array({json{{"content", {{"url", *url}}},
                                   {"file", "bin/tool.sh"}}}),
                 "sh bin/tool.sh");
  ASSERT_TRUE(run.failed_stage.empty()) << run.failure;
  EXPECT_THAT(log_->text(), HasSubstr("tool ran\n"));
  // The signature never reaches the log.
  EXPECT_THAT(log_->text(), ::testing::Not(HasSubstr("sig=")));
}

TEST_F(MountsPluginTest, AMissingInputIsResourceNotFoundAndTheTaskNeverRuns) {
  auto run = Run(json::array({ArtifactMount("public/missing.tar.gz",
                                            "directory", "inputs")}),
                 "touch ran");
  EXPECT_EQ(run.failed_stage, "prepare");
  EXPECT_TRUE(HasErrorCode(run.failure, ErrorCode::kResourceNotFound))
      << run.failure;
  EXPECT_THAT(log_->text(), HasSubstr("mount 0 (artifact public/missing.tar.gz"
                                      " of task " +
                                      producer_));
  EXPECT_THAT(log_->text(), HasSubstr("not available"));
  EXPECT_FALSE(std::filesystem::exists(task_dir_ / "ran"));
}

TEST_F(MountsPluginTest, AnErrorArtifactAsInputIsResourceNotFound) {
  v1::CreateArtifactRequest error;
  error.set_task_id(producer_);
  error.set_name("public/out.tar.gz");
  error.mutable_error()->set_reason("file-missing-on-worker");
  error.mutable_error()->set_message("path out.tar.gz does not exist");
  ASSERT_TRUE(client_->CreateArtifact(error).ok());
  auto run = Run(
      json::array({ArtifactMount("public/out.tar.gz", "directory", "inputs")}),
      "true");
  EXPECT_TRUE(HasErrorCode(run.failure, ErrorCode::kResourceNotFound));
  EXPECT_THAT(log_->text(), HasSubstr("file-missing-on-worker"));
}

TEST_F(MountsPluginTest, ZipSlipEntriesAreRefused) {
  struct Case {
    std::string label;
    TarWriter tar;
  };
  std::vector<Case> cases(4);
  cases[0].label = "dot-dot";
  cases[0].tar.File("../escaped.txt", "evil");
  cases[1].label = "absolute";
  cases[1].tar.File("/tmp/drover-mounts-escaped.txt", "evil");
  cases[2].label = "through a link";
  cases[2].tar.Symlink("up", "../..");
  cases[2].tar.File("up/escaped.txt", "evil");
  cases[3].label = "link out";
  cases[3].tar.Symlink("passwd", "../../../../../etc/passwd");
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string name = absl::StrCat("public/evil", i, ".tar.gz");
    Publish(name, cases[i].tar.Gzipped());
    std::filesystem::remove_all(task_dir_);
    std::filesystem::create_directories(task_dir_);
    auto run =
        Run(json::array({ArtifactMount(name, "directory", "in")}), "touch ran");
    EXPECT_EQ(run.failed_stage, "prepare") << cases[i].label;
    EXPECT_TRUE(HasErrorCode(run.failure, ErrorCode::kMalformedPayload))
        << cases[i].label << ": " << run.failure;
    EXPECT_FALSE(std::filesystem::exists(task_dir_ / "ran")) << cases[i].label;
    EXPECT_FALSE(std::filesystem::exists(task_dir_ / "escaped.txt"));
    EXPECT_FALSE(std::filesystem::exists(dir_.path() / "escaped.txt"));
  }
  EXPECT_FALSE(std::filesystem::exists("/tmp/drover-mounts-escaped.txt"));
  EXPECT_THAT(log_->text(), HasSubstr("the archive is refused"));
}

TEST_F(MountsPluginTest, ACorruptArchiveIsRefused) {
  Publish("public/corrupt.tar.gz", "this is not gzip at all");
  auto run = Run(
      json::array({ArtifactMount("public/corrupt.tar.gz", "directory", "in")}),
      "true");
  EXPECT_EQ(run.failed_stage, "prepare");
  EXPECT_TRUE(HasErrorCode(run.failure, ErrorCode::kMalformedPayload))
      << run.failure;
}

}  // namespace
}  // namespace drover::plugins::mounts
