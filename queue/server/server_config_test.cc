// drover-queue configuration: durations, flags, the JSON config file and
// DROVER_* environment variables.
#include "queue/server/server_config.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::queue::server {
namespace {

TEST(ParseDurationFlagTest, AcceptsUnitsDaysAndBareSeconds) {
  EXPECT_EQ(*ParseDurationFlag("f", "20m"), absl::Minutes(20));
  EXPECT_EQ(*ParseDurationFlag("f", "1h30m"), absl::Minutes(90));
  EXPECT_EQ(*ParseDurationFlag("f", "250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDurationFlag("f", "5d"), absl::Hours(120));
  EXPECT_EQ(*ParseDurationFlag("f", "30"), absl::Seconds(30));
  for (const char* bad : {"", "5x", "-1s", "d", "1.5d"}) {
    auto parsed = ParseDurationFlag("poll-timeout", bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(GetErrorInfo(parsed.status()).details["field"], "poll-timeout");
  }
}

class ServerFlagsTest : public ::testing::Test {
 protected:
  void TearDown() override {
    for (const auto& name : env_) unsetenv(name.c_str());
  }
  void SetEnv(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    env_.push_back(name);
  }
  // Parses `args` (argv without the program name).
  absl::Status Parse(std::vector<std::string> args, ServerConfig* config) {
    CLI::App app;
    ServerFlags flags(app, config);
    std::vector<const char*> argv = {"drover-queue"};
    for (const auto& a : args) argv.push_back(a.c_str());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      return InputError("argv", e.what(), "parse error");
    }
    return flags.Resolve();
  }
  std::vector<std::string> env_;
};

TEST_F(ServerFlagsTest, Defaults) {
  ServerConfig config;
  ASSERT_TRUE(Parse({}, &config).ok());
  EXPECT_EQ(config.data_dir, "./.drover");
  EXPECT_EQ(config.database_url, "");
  EXPECT_EQ(config.listen, "127.0.0.1:50051");
  EXPECT_EQ(config.http_listen, "127.0.0.1:8080");
  EXPECT_EQ(config.service.claim.claim_timeout, absl::Minutes(20));
  EXPECT_EQ(config.service.claim.poll_timeout, absl::Seconds(20));
  EXPECT_EQ(config.service.limits.max_deadline, absl::Hours(24 * 5));
  EXPECT_EQ(config.service.limits.max_payload_bytes, 256u * 1024);
  EXPECT_EQ(config.db_pool_size, 8);
  EXPECT_EQ(config.db_plan_refresh, absl::Seconds(5));
  EXPECT_EQ(config.report_batch, 64);
  EXPECT_EQ(config.report_batches_in_flight, 1);
  EXPECT_EQ(config.log.format, LogFormat::kText);
  EXPECT_EQ(config.resolvers.event_retention, absl::Hours(24 * 7));
  EXPECT_EQ(config.resolvers.event_retention_interval, absl::Minutes(5));
  const std::map<std::string, std::string> embedded = {
      {"checkpoint_timeout", "15min"}, {"max_wal_size", "4GB"}};
  EXPECT_EQ(config.embedded_postgres_settings, embedded);
}

TEST_F(ServerFlagsTest, EmbeddedPostgresSettingsAddToAndOverrideDefaults) {
  ServerConfig config;
  absl::Status status = Parse({"--embedded-postgres-setting", "max_wal_size=8GB",
                               "--embedded-postgres-setting",
                               "shared_buffers=256MB",
                               "--embedded-postgres-setting",
                               "log_line_prefix=%m [%p] a=b "},
                              &config);
  ASSERT_TRUE(status.ok()) << status;
  const std::map<std::string, std::string> expected = {
      {"checkpoint_timeout", "15min"},
      {"log_line_prefix", "%m [%p] a=b "},  // split at the first '=' only
      {"max_wal_size", "8GB"},
      {"shared_buffers", "256MB"}};
  EXPECT_EQ(config.embedded_postgres_settings, expected);

  // The environment holds one setting; the config file a list.
  SetEnv("DROVER_EMBEDDED_POSTGRES_SETTING", "work_mem=7MB");
  ServerConfig from_env;
  status = Parse({}, &from_env);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(from_env.embedded_postgres_settings["work_mem"], "7MB");
  EXPECT_EQ(from_env.embedded_postgres_settings["max_wal_size"], "4GB");
  std::string path = ::testing::TempDir() + "/drover_embedded_config.json";
  {
    std::ofstream out(path);
    out << R"({"embedded-postgres-setting": ["max_wal_size=2GB",
                                              "search_path=a,b"]})";
  }
  ServerConfig from_file;
  status = Parse({"--config", path}, &from_file);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(from_file.embedded_postgres_settings["max_wal_size"], "2GB");
  EXPECT_EQ(from_file.embedded_postgres_settings["search_path"], "a,b");
  EXPECT_EQ(from_file.embedded_postgres_settings["checkpoint_timeout"],
            "15min");
}

TEST_F(ServerFlagsTest, EventRetentionFromFlagEnvironmentOrConfigFile) {
  ServerConfig from_flag;
  ASSERT_TRUE(
      Parse({"--event-retention", "30d", "--event-retention-interval", "90s"},
            &from_flag)
          .ok());
  EXPECT_EQ(from_flag.resolvers.event_retention, absl::Hours(24 * 30));
  EXPECT_EQ(from_flag.resolvers.event_retention_interval, absl::Seconds(90));
  SetEnv("DROVER_EVENT_RETENTION", "36h");
  ServerConfig from_env;
  ASSERT_TRUE(Parse({}, &from_env).ok());
  EXPECT_EQ(from_env.resolvers.event_retention, absl::Hours(36));
  std::string path = ::testing::TempDir() + "/drover_retention_config.json";
  {
    std::ofstream out(path);
    out << R"({"event-retention": "2d"})";
  }
  ServerConfig from_file;
  ASSERT_TRUE(Parse({"--config", path}, &from_file).ok());
  EXPECT_EQ(from_file.resolvers.event_retention, absl::Hours(48));
}

TEST_F(ServerFlagsTest, FlagsBeatConfigFileWhichBeatsEnvironment) {
  std::string path = ::testing::TempDir() + "/drover_queue_config.json";
  {
    std::ofstream out(path);
    out << R"({"listen": "127.0.0.1:6000", "poll_timeout": "7s",
               "db-pool-size": 3, "log_format": "json"})";
  }
  SetEnv("DROVER_LISTEN", "127.0.0.1:7000");
  SetEnv("DROVER_CLAIM_TIMEOUT", "2m");
  SetEnv("DROVER_POLL_TIMEOUT", "9s");
  ServerConfig config;
  absl::Status status =
      Parse({"--config", path, "--poll-timeout", "3s"}, &config);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_EQ(config.service.claim.poll_timeout, absl::Seconds(3));   // flag
  EXPECT_EQ(config.listen, "127.0.0.1:6000");                       // file
  EXPECT_EQ(config.db_pool_size, 3);                                // file
  EXPECT_EQ(config.log.format, LogFormat::kJson);                   // file
  EXPECT_EQ(config.service.claim.claim_timeout, absl::Minutes(2));  // env
}

TEST_F(ServerFlagsTest, RejectsBadValuesNamingTheFlag) {
  struct Case {
    std::vector<std::string> args;
    std::string field;
  };
  std::vector<Case> cases = {
      {{"--claim-timeout", "soon"}, "claim-timeout"},
      {{"--claim-timeout", "100ms"}, "claim-timeout"},
      {{"--max-deadline", "0s"}, "max-deadline"},
      {{"--db-pool-size", "0"}, "db-pool-size"},
      {{"--db-plan-refresh", "often"}, "db-plan-refresh"},
      {{"--report-batch", "0"}, "report-batch"},
      {{"--report-batches-in-flight", "9"}, "report-batches-in-flight"},
      {{"--log-format", "xml"}, "log-format"},
      {{"--listen", ""}, "listen"},
      {{"--resolver-batch", "0"}, "resolver-batch"},
      {{"--blob-store", "ftp"}, "blob-store"},
      {{"--embedded-postgres-setting", "max_wal_size"},
       "embedded-postgres-setting"},
      {{"--embedded-postgres-setting", "=4GB"}, "embedded-postgres-setting"},
      {{"--embedded-postgres-setting", "max_wal_size="},
       "embedded-postgres-setting"},
      {{"--embedded-postgres-setting", "max wal=1"},
       "embedded-postgres-setting"},
      {{"--embedded-postgres-setting", "work_mem=1MB\nfsync=off"},
       "embedded-postgres-setting"},
      {{"--blob-store", "s3", "--s3-bucket", "b", "--s3-access-key-id", "k",
        "--s3-secret-access-key", "s"},
       "s3-endpoint"},
      {{"--blob-store", "s3", "--s3-endpoint", "http://127.0.0.1:4569",
        "--s3-access-key-id", "k", "--s3-secret-access-key", "s"},
       "s3-bucket"},
      {{"--blob-public-url", "queue.example.com"}, "blob-public-url"},
      {{"--artifact-upload-url-ttl", "1s"}, "artifact-upload-url-ttl"},
      {{"--artifact-download-url-ttl", "later"}, "artifact-download-url-ttl"},
      {{"--artifact-expiry-interval", "0s"}, "artifact-expiry-interval"},
      {{"--event-retention", "forever"}, "event-retention"},
      {{"--event-retention", "30m"}, "event-retention"},
      {{"--event-retention-interval", "0s"}, "event-retention-interval"},
  };
  for (const auto& c : cases) {
    ServerConfig config;
    absl::Status status = Parse(c.args, &config);
    ASSERT_FALSE(status.ok()) << c.field;
    EXPECT_EQ(GetErrorInfo(status).details["field"], c.field);
  }
}

TEST_F(ServerFlagsTest, BlobStoreSettings) {
  ServerConfig defaults;
  ASSERT_TRUE(Parse({}, &defaults).ok());
  EXPECT_EQ(defaults.blobs.kind, "filesystem");
  EXPECT_EQ(defaults.blobs.dir, "");
  EXPECT_EQ(defaults.artifacts.upload_url_ttl, absl::Hours(1));
  EXPECT_EQ(defaults.artifacts.download_url_ttl, absl::Minutes(10));
  EXPECT_EQ(defaults.artifacts.expiry_interval, absl::Minutes(5));

  SetEnv("DROVER_S3_SECRET_ACCESS_KEY", "from-the-environment");
  ServerConfig s3;
  ASSERT_TRUE(
      Parse({"--blob-store", "s3", "--s3-endpoint", "http://127.0.0.1:4569",
             "--s3-bucket", "artifacts", "--s3-access-key-id", "key",
             "--s3-path-style", "true", "--artifact-expiry-interval", "30s"},
            &s3)
          .ok());
  EXPECT_EQ(s3.blobs.kind, "s3");
  EXPECT_EQ(s3.blobs.s3_secret_access_key, "from-the-environment");
  EXPECT_TRUE(s3.blobs.s3_path_style);
  EXPECT_EQ(s3.artifacts.expiry_interval, absl::Seconds(30));
}

}  // namespace
}  // namespace drover::queue::server
