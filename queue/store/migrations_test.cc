// Migrations against a real PostgreSQL: fresh apply, idempotence, racing
// migrators, refusing newer or foreign schemas, rollback of a failed step.
#include "queue/store/migrations.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "common/status.h"
#include "gtest/gtest.h"
#include "pqxx/pqxx"
#include "queue/store/testing/test_database.h"

namespace drover::queue::store {
namespace {

using testing::TestDatabase;

// An empty database, or a skip with the reason PostgreSQL is unavailable.
#define EMPTY_DATABASE_OR_SKIP(var)                                 \
  auto var##_or = TestDatabase::CreateEmpty();                      \
  if (!var##_or.ok() &&                                             \
      var##_or.status().code() == absl::StatusCode::kUnavailable) { \
    GTEST_SKIP() << var##_or.status().message();                    \
  }                                                                 \
  ASSERT_TRUE(var##_or.ok()) << var##_or.status();                  \
  std::unique_ptr<TestDatabase> var = std::move(var##_or).value()

int CountRows(const std::string& conn_string, const std::string& query) {
  pqxx::connection conn(conn_string);
  return pqxx::nontransaction(conn).exec1(query)[0].as<int>();
}

TEST(EmbeddedMigrationsTest, AreNumberedInOrderAndCarryTheSchema) {
  auto all = EmbeddedMigrations();
  ASSERT_FALSE(all.empty());
  EXPECT_EQ(all.front().version, 1);
  EXPECT_EQ(all.front().name, "initial");
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_GT(all[i].version, all[i - 1].version);
  }
  EXPECT_EQ(LatestKnownSchemaVersion(), all.back().version);
  EXPECT_NE(all.front().sql.find("CREATE TABLE tasks"), std::string::npos);
}

TEST(EmbeddedMigrationsTest, MatchTheSourceFilesExactly) {
  std::map<int, std::pair<std::string, std::string>> files;
  for (const auto& entry :
       std::filesystem::directory_iterator(DROVER_MIGRATIONS_SOURCE_DIR)) {
    std::string file = entry.path().filename().string();
    if (entry.path().extension() != ".sql") continue;
    ASSERT_GT(file.size(), 9u) << file;
    int version = std::stoi(file.substr(0, 4));
    std::string name = file.substr(5, file.size() - 5 - 4);
    std::ifstream in(entry.path());
    std::stringstream sql;
    sql << in.rdbuf();
    files[version] = {name, sql.str()};
  }
  auto embedded = EmbeddedMigrations();
  ASSERT_EQ(embedded.size(), files.size());
  size_t i = 0;
  for (const auto& [version, file] : files) {
    EXPECT_EQ(embedded[i].version, version);
    EXPECT_EQ(embedded[i].name, file.first);
    EXPECT_TRUE(embedded[i].sql == file.second) << file.first;
    ++i;
  }
}

TEST(CheckSchemaVersionTest, NamesBothVersions) {
  EXPECT_TRUE(CheckSchemaVersion(3, 3).ok());
  absl::Status newer = CheckSchemaVersion(4, 3);
  EXPECT_EQ(GetErrorInfo(newer).code, ErrorCode::kRequestConflict);
  EXPECT_NE(newer.message().find("4"), std::string::npos);
  EXPECT_NE(newer.message().find("(3)"), std::string::npos);
  EXPECT_NE(newer.message().find("newer"), std::string::npos);
  EXPECT_EQ(GetErrorInfo(newer).details["schema_version"], "4");
  EXPECT_EQ(GetErrorInfo(newer).details["binary_schema_version"], "3");
  absl::Status older = CheckSchemaVersion(2, 3);
  EXPECT_NE(older.message().find("migrate"), std::string::npos);
}

TEST(MigrateTest, AppliesEverythingOnceAndRecordsIt) {
  EMPTY_DATABASE_OR_SKIP(db);
  auto before = SchemaVersion(db->connection_string());
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(*before, 0);
  EXPECT_FALSE(CheckSchema(db->connection_string()).ok());

  ASSERT_TRUE(Migrate(db->connection_string()).ok());
  auto after = SchemaVersion(db->connection_string());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, LatestKnownSchemaVersion());
  EXPECT_TRUE(CheckSchema(db->connection_string()).ok());
  int recorded = CountRows(db->connection_string(),
                           "SELECT count(*) FROM schema_migrations");
  EXPECT_EQ(recorded, static_cast<int>(EmbeddedMigrations().size()));

  // Again: nothing to do, nothing recorded twice.
  ASSERT_TRUE(Migrate(db->connection_string()).ok());
  EXPECT_EQ(CountRows(db->connection_string(),
                      "SELECT count(*) FROM schema_migrations"),
            recorded);
  EXPECT_EQ(CountRows(db->connection_string(),
                      "SELECT count(*) FROM information_schema.tables WHERE "
                      "table_name IN ('tasks', 'runs', 'task_dependencies', "
                      "'task_groups', 'pending', 'task_queues', 'events')"),
            7);
}

TEST(MigrateTest, ConcurrentMigratorsTakeTurns) {
  EMPTY_DATABASE_OR_SKIP(db);
  std::vector<absl::Status> results(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back(
        [&, i] { results[i] = Migrate(db->connection_string()); });
  }
  for (auto& t : threads) t.join();
  for (const auto& s : results) EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(CountRows(db->connection_string(),
                      "SELECT count(*) FROM schema_migrations"),
            static_cast<int>(EmbeddedMigrations().size()));
}

TEST(MigrateTest, RefusesASchemaNewerThanItKnows) {
  EMPTY_DATABASE_OR_SKIP(db);
  ASSERT_TRUE(Migrate(db->connection_string()).ok());
  {
    pqxx::connection conn(db->connection_string());
    pqxx::nontransaction(conn).exec_params(
        "INSERT INTO schema_migrations (version, name) VALUES ($1, 'future')",
        LatestKnownSchemaVersion() + 5);
  }
  std::string newer = std::to_string(LatestKnownSchemaVersion() + 5);
  std::string known = std::to_string(LatestKnownSchemaVersion());
  for (const absl::Status& s : {CheckSchema(db->connection_string()),
                                Migrate(db->connection_string())}) {
    EXPECT_EQ(GetErrorInfo(s).code, ErrorCode::kRequestConflict);
    EXPECT_NE(s.message().find(newer), std::string::npos) << s;
    EXPECT_NE(s.message().find(known), std::string::npos) << s;
  }
}

TEST(MigrateTest, FailedMigrationRollsBackAndIsNamed) {
  EMPTY_DATABASE_OR_SKIP(db);
  const EmbeddedMigration good[] = {{1, "one", "CREATE TABLE a (x int);"}};
  ASSERT_TRUE(ApplyMigrations(db->connection_string(), good).ok());
  const EmbeddedMigration bad[] = {
      {1, "one", "CREATE TABLE a (x int);"},
      {2, "two", "CREATE TABLE b (x int); SELECT 1 / 0;"}};
  absl::Status s = ApplyMigrations(db->connection_string(), bad);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("0002_two"), std::string::npos) << s;
  EXPECT_EQ(*SchemaVersion(db->connection_string()), 1);
  EXPECT_EQ(CountRows(db->connection_string(),
                      "SELECT count(*) FROM information_schema.tables "
                      "WHERE table_name = 'b'"),
            0);
}

TEST(MigrateTest, AppliesAMissingLowerVersionFromAnotherArea) {
  EMPTY_DATABASE_OR_SKIP(db);
  const EmbeddedMigration before[] = {{1, "core", "CREATE TABLE a (x int);"},
                                      {100, "area", "CREATE TABLE c (x int);"}};
  ASSERT_TRUE(ApplyMigrations(db->connection_string(), before).ok());
  const EmbeddedMigration after[] = {{1, "core", "CREATE TABLE a (x int);"},
                                     {2, "more", "CREATE TABLE b (x int);"},
                                     {100, "area", "CREATE TABLE c (x int);"}};
  ASSERT_TRUE(ApplyMigrations(db->connection_string(), after).ok());
  EXPECT_EQ(CountRows(db->connection_string(),
                      "SELECT count(*) FROM schema_migrations"),
            3);
  EXPECT_EQ(CountRows(db->connection_string(),
                      "SELECT count(*) FROM information_schema.tables "
                      "WHERE table_name = 'b'"),
            1);
}

TEST(MigrateTest, CheckSchemaListsMissingMigrations) {
  EMPTY_DATABASE_OR_SKIP(db);
  ASSERT_TRUE(Migrate(db->connection_string()).ok());
  {
    pqxx::connection conn(db->connection_string());
    pqxx::nontransaction(conn).exec_params(
        "DELETE FROM schema_migrations WHERE version = $1",
        EmbeddedMigrations().front().version);
  }
  absl::Status s = CheckSchema(db->connection_string());
  EXPECT_EQ(GetErrorInfo(s).code, ErrorCode::kRequestConflict);
  EXPECT_NE(s.message().find("0001_initial"), std::string::npos) << s;
  EXPECT_NE(s.message().find("migrate"), std::string::npos) << s;
}

TEST(MigrateTest, RefusesAForeignHistory) {
  EMPTY_DATABASE_OR_SKIP(db);
  const EmbeddedMigration ours[] = {{1, "one", "CREATE TABLE a (x int);"}};
  const EmbeddedMigration theirs[] = {{1, "uno", "CREATE TABLE a (x int);"},
                                      {2, "dos", "CREATE TABLE b (x int);"}};
  ASSERT_TRUE(ApplyMigrations(db->connection_string(), ours).ok());
  absl::Status s = ApplyMigrations(db->connection_string(), theirs);
  EXPECT_EQ(GetErrorInfo(s).code, ErrorCode::kRequestConflict);
  EXPECT_NE(s.message().find("0001_one"), std::string::npos) << s;
  EXPECT_EQ(*SchemaVersion(db->connection_string()), 1);
}

TEST(MigrateTest, UnreachableDatabaseIsAnInternalError) {
  absl::Status s =
      Migrate("host=/nonexistent-drover-socket-dir dbname=x connect_timeout=2");
  EXPECT_EQ(GetErrorInfo(s).code, ErrorCode::kInternalError);
  EXPECT_NE(s.message().find("cannot connect"), std::string::npos);
}

}  // namespace
}  // namespace drover::queue::store
