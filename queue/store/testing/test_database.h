// Test fixture: a real, throw-away PostgreSQL for tests.
//
// The first use in a test binary starts ONE private cluster (the same
// EmbeddedPostgres code the server uses) in a temporary directory, with
// durability switched off for speed, and migrates a template database.
// Every TestDatabase is then a fresh copy of that template (CREATE DATABASE
// ... TEMPLATE), dropped again when destroyed. The cluster is stopped and
// its directory removed when the binary exits. With DROVER_TEST_DATABASE_URL
// set (a keyword/value libpq string of a role that may CREATE DATABASE) an
// existing server is used instead.
//
// When PostgreSQL cannot start on the machine, Create() returns an
// absl::StatusCode::kUnavailable status with the reason and DatabaseTest
// skips the test with it (GTEST_SKIP), never passing silently; any other
// failure (a migration that does not apply) fails the test.
#ifndef DROVER_QUEUE_STORE_TESTING_TEST_DATABASE_H_
#define DROVER_QUEUE_STORE_TESTING_TEST_DATABASE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "gtest/gtest.h"

namespace drover::queue::store::testing {

class TestDatabase {
 public:
  // A fresh database with the current schema. Thread-safe. Errors:
  // Unavailable (absl code) when PostgreSQL cannot start here; otherwise
  // the InternalError/RequestConflict of creating or migrating it.
  static absl::StatusOr<std::unique_ptr<TestDatabase>> Create();
  // A fresh database without any schema (for migration tests).
  static absl::StatusOr<std::unique_ptr<TestDatabase>> CreateEmpty();

  // Drops the database (terminating connections still open to it).
  ~TestDatabase();

  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  const std::string& name() const { return name_; }
  // libpq connection string (unix socket of the shared cluster).
  const std::string& connection_string() const { return connection_string_; }

 private:
  TestDatabase(std::string name, std::string connection_string)
      : name_(std::move(name)),
        connection_string_(std::move(connection_string)) {}
  static absl::StatusOr<std::unique_ptr<TestDatabase>> Make(bool migrated);

  std::string name_;
  std::string connection_string_;
};

// Connection string of the shared cluster's `postgres` database, for tests
// that need to act on the server itself (pg_terminate_backend). Errors as
// TestDatabase::Create.
absl::StatusOr<std::string> AdminConnectionString();

// Base fixture: each test gets db() (a fresh migrated database) or is
// skipped with the reason PostgreSQL is unavailable.
class DatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override;
  TestDatabase& db() { return *db_; }
  const std::string& connection_string() const {
    return db_->connection_string();
  }

 private:
  std::unique_ptr<TestDatabase> db_;
};

}  // namespace drover::queue::store::testing

#endif  // DROVER_QUEUE_STORE_TESTING_TEST_DATABASE_H_
