// The Artifacts service end to end on real components: PostgreSQL (store
// test fixture), the filesystem blob store behind its HTTP routes on
// 127.0.0.1, gRPC over loopback, libcurl for the uploads and downloads.
#include "queue/artifacts/artifacts_service.h"

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/rpc/grpc_status.h"
#include "common/slugid.h"
#include "common/status.h"
#include "drover/v1/queue.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "pqxx/pqxx"
#include "queue/artifacts/testing/artifacts_test_env.h"
#include "queue/blobstore/sha256.h"
#include "queue/blobstore/testing/curl_client.h"

namespace drover::queue::artifacts {
namespace {

using blobstore::testing::CurlRequest;
using blobstore::testing::CurlResponse;
using blobstore::testing::Perform;
using testing::ArtifactsTestEnv;
using ::testing::HasSubstr;

std::string Sha256Hex(std::string_view data) {
  return blobstore::HexEncode(blobstore::Sha256Of(data));
}

std::string FieldOf(const absl::Status& status) {
  return GetErrorInfo(status).details["field"];
}

google::protobuf::Timestamp Ts(absl::Time t) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(absl::ToUnixSeconds(t));
  return ts;
}

class ArtifactsServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::ArtifactsTestEnvOptions options;
    options.service.tail_poll_interval = absl::Milliseconds(200);
    auto env = ArtifactsTestEnv::Create(options);
    if (env.status().code() == absl::StatusCode::kUnavailable) {
      GTEST_SKIP() << "PostgreSQL is unavailable: " << env.status();
    }
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = std::move(*env);
    stub_ = env_->NewStub();
    auto task = env_->StartRunningTask(absl::Hours(2));
    ASSERT_TRUE(task.ok()) << task.status();
    task_id_ = *task;
  }

  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(
      grpc::Status (v1::Artifacts::Stub::*method)(grpc::ClientContext*,
                                                  const Request&, Response*),
      const Request& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(30));
    Response response;
    grpc::Status status = ((*stub_).*method)(&context, request, &response);
    if (!status.ok()) return rpc::FromGrpcStatus(status);
    return response;
  }

  v1::CreateArtifactRequest BlobRequest(const std::string& name,
                                        const std::string& content) {
    v1::CreateArtifactRequest r;
    r.set_task_id(task_id_);
    r.set_run_id(0);
    r.set_name(name);
    r.set_content_type("text/plain");
    r.mutable_blob()->set_size(static_cast<int64_t>(content.size()));
    r.mutable_blob()->set_sha256(Sha256Hex(content));
    return r;
  }

  absl::StatusOr<v1::CreateArtifactResponse> Create(
      const v1::CreateArtifactRequest& r) {
    return Call(&v1::Artifacts::Stub::CreateArtifact, r);
  }

  absl::StatusOr<v1::FinishArtifactResponse> Finish(const std::string& name) {
    v1::ArtifactRequest r;
    r.set_task_id(task_id_);
    r.set_run_id(0);
    r.set_name(name);
    return Call(&v1::Artifacts::Stub::FinishArtifact, r);
  }

  absl::StatusOr<v1::GetArtifactResponse> Get(const std::string& name,
                                              int run_id = 0) {
    v1::ArtifactRequest r;
    r.set_task_id(task_id_);
    r.set_run_id(run_id);
    r.set_name(name);
    return Call(&v1::Artifacts::Stub::GetArtifact, r);
  }

  static CurlResponse Upload(const v1::PresignedUpload& upload,
                             const std::string& body) {
    CurlRequest request;
    request.method = upload.method();
    request.url = upload.url();
    for (const auto& [k, v] : upload.headers()) request.headers[k] = v;
    request.body = body;
    return Perform(request);
  }

  // Create, upload and finish.
  absl::Status PutBlob(const std::string& name, const std::string& content,
                       std::optional<absl::Time> expires = std::nullopt) {
    auto request = BlobRequest(name, content);
    if (expires) *request.mutable_expires() = Ts(*expires);
    DROVER_ASSIGN_OR_RETURN(auto created, Create(request));
    CurlResponse put = Upload(created.upload(), content);
    if (put.status != 200) {
      return InternalError(
          absl::StrCat("upload: HTTP ", put.status, " ", put.body, put.error));
    }
    return Finish(name).status();
  }

  int64_t CountRows(const std::string& query) {
    pqxx::connection conn(env_->connection_string());
    pqxx::nontransaction txn(conn);
    return txn.exec(query)[0][0].as<int64_t>();
  }

  std::unique_ptr<ArtifactsTestEnv> env_;
  std::unique_ptr<v1::Artifacts::Stub> stub_;
  std::string task_id_;
};

TEST_F(ArtifactsServiceTest, BlobIsUploadedFinishedAndDownloadedByteIdentical) {
  std::string content;
  for (int i = 0; i < 100000; ++i) content += static_cast<char>(i * 7 % 251);
  auto created = Create(BlobRequest("public/data.bin", content));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->artifact().present());
  ASSERT_EQ(created->upload().method(), "PUT");
  EXPECT_THAT(created->upload().url(), HasSubstr(env_->http_base_url()));

  // Not readable until finished.
  EXPECT_TRUE(HasErrorCode(Get("public/data.bin").status(),
                           ErrorCode::kResourceNotFound));

  CurlResponse put = Upload(created->upload(), content);
  ASSERT_EQ(put.status, 200) << put.body << put.error;
  auto finished = Finish("public/data.bin");
  ASSERT_TRUE(finished.ok()) << finished.status();
  EXPECT_TRUE(finished->artifact().present());
  // Finishing again is harmless.
  ASSERT_TRUE(Finish("public/data.bin").ok());

  auto got = Get("public/data.bin");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->artifact().blob().sha256(), Sha256Hex(content));
  CurlRequest download;
  download.url = got->url();
  download.keep_body_bytes = content.size();
  CurlResponse body = Perform(download);
  ASSERT_EQ(body.status, 200) << body.error;
  EXPECT_EQ(body.body, content);
  EXPECT_EQ(body.headers["content-type"], "text/plain");
  // One event, when the blob became readable.
  EXPECT_EQ(CountRows("SELECT count(*) FROM events WHERE kind = "
                      "'artifact-created' AND body->'artifact'->>'name' = "
                      "'public/data.bin'"),
            1);
}

TEST_F(ArtifactsServiceTest, RepeatingAnIdenticalCreateIsIdempotent) {
  auto request = BlobRequest("public/a.txt", "hello");
  auto first = Create(request);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Create(request);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(first->artifact().created().seconds(),
            second->artifact().created().seconds());
  EXPECT_FALSE(second->upload().url().empty());

  v1::CreateArtifactRequest ref;
  ref.set_task_id(task_id_);
  ref.set_name("public/ref");
  ref.mutable_reference()->set_url("https://example.com/a");
  ASSERT_TRUE(Create(ref).ok());
  ASSERT_TRUE(Create(ref).ok());
  EXPECT_EQ(CountRows("SELECT count(*) FROM artifacts"), 2);
  EXPECT_EQ(CountRows("SELECT count(*) FROM events WHERE kind = "
                      "'artifact-created'"),
            1);  // the reference; the blob is not finished
}

TEST_F(ArtifactsServiceTest, SameNameWithADifferentKindIsAConflict) {
  v1::CreateArtifactRequest ref;
  ref.set_task_id(task_id_);
  ref.set_name("public/x");
  ref.mutable_reference()->set_url("https://example.com/x");
  ASSERT_TRUE(Create(ref).ok());

  absl::Status status = Create(BlobRequest("public/x", "data")).status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kRequestConflict)) << status;
  ErrorInfo info = GetErrorInfo(status);
  EXPECT_EQ(info.details["field"], "name");
  EXPECT_EQ(info.details["existing_kind"], "reference");
  EXPECT_EQ(info.details["requested_kind"], "blob");
  // Nothing changed.
  auto got = Get("public/x");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->url(), "https://example.com/x");

  // Same kind, other content: a conflict naming the field.
  ref.mutable_reference()->set_url("https://example.com/y");
  status = Create(ref).status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kRequestConflict));
  EXPECT_EQ(FieldOf(status), "reference.url");
}

TEST_F(ArtifactsServiceTest, ExpiresBeyondTheTaskIsRefusedAndNothingStored) {
  auto request = BlobRequest("public/late", "x");
  *request.mutable_expires() = Ts(env_->clock().Now() + absl::Hours(3));
  absl::Status status = Create(request).status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << status;
  ErrorInfo info = GetErrorInfo(status);
  EXPECT_EQ(info.details["field"], "expires");
  EXPECT_FALSE(info.details["task_expires"].empty());
  EXPECT_TRUE(
      HasErrorCode(Get("public/late").status(), ErrorCode::kResourceNotFound));

  *request.mutable_expires() = Ts(env_->clock().Now() - absl::Minutes(1));
  EXPECT_EQ(FieldOf(Create(request).status()), "expires");
  EXPECT_EQ(CountRows("SELECT count(*) FROM artifacts"), 0);
}

TEST_F(ArtifactsServiceTest, ExpiryIsOnlyEverExtended) {
  const absl::Time now = env_->clock().Now();
  v1::CreateArtifactRequest r;
  r.set_task_id(task_id_);
  r.set_name("public/err");
  r.mutable_error()->set_reason("file-missing-on-worker");
  r.mutable_error()->set_message("gone");
  *r.mutable_expires() = Ts(now + absl::Minutes(20));
  ASSERT_TRUE(Create(r).ok());
  *r.mutable_expires() = Ts(now + absl::Minutes(40));
  auto extended = Create(r);
  ASSERT_TRUE(extended.ok()) << extended.status();
  EXPECT_EQ(extended->artifact().expires().seconds(),
            absl::ToUnixSeconds(now + absl::Minutes(40)));
  *r.mutable_expires() = Ts(now + absl::Minutes(30));
  absl::Status shrink = Create(r).status();
  EXPECT_TRUE(HasErrorCode(shrink, ErrorCode::kRequestConflict));
  EXPECT_EQ(FieldOf(shrink), "expires");
  auto got = Get("public/err");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->artifact().expires().seconds(),
            absl::ToUnixSeconds(now + absl::Minutes(40)));
  EXPECT_EQ(got->artifact().error().reason(), "file-missing-on-worker");
  EXPECT_TRUE(got->url().empty());
}

TEST_F(ArtifactsServiceTest, FinishRefusesASizeOrHashMismatch) {
  const std::string declared = "0123456789";
  ASSERT_TRUE(Create(BlobRequest("public/size", declared)).ok());
  ASSERT_TRUE(Create(BlobRequest("public/hash", declared)).ok());
  // Write other bytes straight into the store, as a store that does not
  // enforce the signed length and hash would have accepted them.
  blobstore::UploadOptions loose;
  loose.content_type = "text/plain";
  const std::string longer = "0123456789abc";
  ASSERT_TRUE(env_->blobs()
                  .Put(task_id_ + "/0/public/size", loose,
                       blobstore::StringSource(longer))
                  .ok());
  const std::string same_length = "9876543210";
  ASSERT_TRUE(env_->blobs()
                  .Put(task_id_ + "/0/public/hash", loose,
                       blobstore::StringSource(same_length))
                  .ok());

  absl::Status size = Finish("public/size").status();
  EXPECT_TRUE(HasErrorCode(size, ErrorCode::kInputError)) << size;
  EXPECT_EQ(GetErrorInfo(size).details["field"], "size");
  EXPECT_EQ(GetErrorInfo(size).details["value"], "13");
  EXPECT_EQ(GetErrorInfo(size).details["declared"], "10");

  absl::Status hash = Finish("public/hash").status();
  EXPECT_TRUE(HasErrorCode(hash, ErrorCode::kInputError)) << hash;
  EXPECT_EQ(GetErrorInfo(hash).details["field"], "sha256");
  EXPECT_EQ(GetErrorInfo(hash).details["declared"], Sha256Hex(declared));

  // Neither became readable.
  EXPECT_FALSE(Get("public/size").ok());
  EXPECT_FALSE(Get("public/hash").ok());
  EXPECT_EQ(CountRows("SELECT count(*) FROM artifacts WHERE present"), 0);
}

TEST_F(ArtifactsServiceTest, FinishBeforeUploadIsAConflict) {
  ASSERT_TRUE(Create(BlobRequest("public/never", "x")).ok());
  absl::Status status = Finish("public/never").status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kRequestConflict)) << status;
  EXPECT_EQ(FieldOf(status), "name");
}

TEST_F(ArtifactsServiceTest, UploadUrlUsedAfterExpiryIsRefused) {
  auto created = Create(BlobRequest("public/slow", "payload"));
  ASSERT_TRUE(created.ok());
  env_->fake_clock()->Advance(absl::Hours(1) + absl::Seconds(5));
  CurlResponse put = Upload(created->upload(), "payload");
  EXPECT_EQ(put.status, 403) << put.body;
  EXPECT_THAT(put.body, HasSubstr("ResourceExpired"));
  EXPECT_TRUE(HasErrorCode(Finish("public/slow").status(),
                           ErrorCode::kRequestConflict));
  // Creating again hands out a fresh URL that works.
  auto again = Create(BlobRequest("public/slow", "payload"));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(Upload(again->upload(), "payload").status, 200);
  EXPECT_TRUE(Finish("public/slow").ok());
}

TEST_F(ArtifactsServiceTest, UploadOfOtherBytesIsRefusedByTheStore) {
  auto created = Create(BlobRequest("public/bound", "expected"));
  ASSERT_TRUE(created.ok());
  EXPECT_NE(Upload(created->upload(), "tampered").status, 200);
  EXPECT_FALSE(Finish("public/bound").ok());
}

TEST_F(ArtifactsServiceTest, PathTraversalInNamesIsRefused) {
  for (const std::string name :
       {"../../etc/passwd", "public/../../x", "/etc/passwd", "public/./x"}) {
    absl::Status status = Create(BlobRequest(name, "x")).status();
    EXPECT_TRUE(HasErrorCode(status, ErrorCode::kInputError)) << name;
    EXPECT_EQ(FieldOf(status), "name") << name;
  }
  EXPECT_EQ(CountRows("SELECT count(*) FROM artifacts"), 0);
}

TEST_F(ArtifactsServiceTest, LinksAreFollowedAndMustPointSomewhere) {
  ASSERT_TRUE(PutBlob("public/real.txt", "content").ok());
  v1::CreateArtifactRequest link;
  link.set_task_id(task_id_);
  link.set_name("public/latest.txt");
  link.mutable_link()->set_artifact("public/real.txt");
  ASSERT_TRUE(Create(link).ok());
  v1::CreateArtifactRequest link2 = link;
  link2.set_name("public/alias");
  link2.mutable_link()->set_artifact("public/latest.txt");
  ASSERT_TRUE(Create(link2).ok());

  auto got = Get("public/alias");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->artifact().name(), "public/real.txt");
  EXPECT_THAT(got->links_followed(),
              ::testing::ElementsAre("0/public/alias", "0/public/latest.txt"));
  CurlRequest download;
  download.url = got->url();
  EXPECT_EQ(Perform(download).body, "content");

  link.set_name("public/dangling");
  link.mutable_link()->set_artifact("public/missing");
  absl::Status dangling = Create(link).status();
  EXPECT_TRUE(HasErrorCode(dangling, ErrorCode::kInputError));
  EXPECT_EQ(FieldOf(dangling), "link.artifact");
  link.set_name("public/self");
  link.mutable_link()->set_artifact("public/self");
  EXPECT_EQ(FieldOf(Create(link).status()), "link.artifact");
}

TEST_F(ArtifactsServiceTest, ExpiredArtifactsAnswerResourceExpired) {
  v1::CreateArtifactRequest r;
  r.set_task_id(task_id_);
  r.set_name("public/short");
  r.mutable_reference()->set_url("https://example.com/");
  *r.mutable_expires() = Ts(env_->clock().Now() + absl::Minutes(1));
  ASSERT_TRUE(Create(r).ok());
  env_->fake_clock()->Advance(absl::Minutes(2));
  absl::Status status = Get("public/short").status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kResourceExpired)) << status;
}

TEST_F(ArtifactsServiceTest, CreatingOnAResolvedRunIsAConflict) {
  ASSERT_TRUE(env_->ResolveRun(task_id_, 0).ok());
  absl::Status status = Create(BlobRequest("public/late", "x")).status();
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kRequestConflict)) << status;
  EXPECT_EQ(GetErrorInfo(status).details["state"], "completed");
  v1::CreateArtifactRequest missing = BlobRequest("public/x", "x");
  missing.set_run_id(3);
  EXPECT_EQ(GetErrorInfo(Create(missing).status()).details["kind"], "run");
}

TEST_F(ArtifactsServiceTest, PagesOverTwoAndAHalfThousandArtifacts) {
  constexpr int kCount = 2500;
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      auto stub = env_->NewStub();
      for (int i = next++; i < kCount; i = next++) {
        v1::CreateArtifactRequest r;
        r.set_task_id(task_id_);
        r.set_name(absl::StrFormat("public/many/%05d", i));
        r.mutable_reference()->set_url(absl::StrCat("https://example.com/", i));
        grpc::ClientContext context;
        v1::CreateArtifactResponse response;
        if (!stub->CreateArtifact(&context, r, &response).ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);

  for (int limit : {1000, 100}) {
    std::vector<std::string> names;
    std::string token;
    int pages = 0;
    do {
      v1::ListArtifactsRequest r;
      r.set_task_id(task_id_);
      r.set_run_id(0);
      r.set_limit(limit);
      r.set_continuation_token(token);
      auto page = Call(&v1::Artifacts::Stub::ListArtifacts, r);
      ASSERT_TRUE(page.ok()) << page.status();
      ASSERT_LE(page->artifacts_size(), limit);
      for (const auto& a : page->artifacts()) names.push_back(a.name());
      token = page->continuation_token();
      ++pages;
    } while (!token.empty() && pages < 100);
    EXPECT_EQ(pages, (kCount + limit - 1) / limit) << "limit " << limit;
    ASSERT_EQ(names.size(), kCount);
    for (int i = 0; i < kCount; ++i) {
      EXPECT_EQ(names[i], absl::StrFormat("public/many/%05d", i));
    }
  }

  v1::ListLatestArtifactsRequest latest;
  latest.set_task_id(task_id_);
  latest.set_limit(1000);
  auto first = Call(&v1::Artifacts::Stub::ListLatestArtifacts, latest);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->run_id(), 0);
  EXPECT_EQ(first->artifacts_size(), 1000);
  latest.set_continuation_token(first->continuation_token());
  auto second = Call(&v1::Artifacts::Stub::ListLatestArtifacts, latest);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->artifacts(0).name(), "public/many/01000");

  v1::ListArtifactsRequest forged;
  forged.set_task_id(task_id_);
  forged.set_continuation_token("not-a-token");
  EXPECT_EQ(FieldOf(Call(&v1::Artifacts::Stub::ListArtifacts, forged).status()),
            "continuation_token");
}

TEST_F(ArtifactsServiceTest, ReaperDeletesExpiredRowsAndBlobsInBatches) {
  const absl::Time now = env_->clock().Now();
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(PutBlob(absl::StrCat("public/old", i), absl::StrCat("old", i),
                        now + absl::Minutes(10))
                    .ok());
  }
  ASSERT_TRUE(PutBlob("public/keep", "keep", now + absl::Hours(1)).ok());
  v1::CreateArtifactRequest ref;
  ref.set_task_id(task_id_);
  ref.set_name("public/old-ref");
  ref.mutable_reference()->set_url("https://example.com/");
  *ref.mutable_expires() = Ts(now + absl::Minutes(10));
  ASSERT_TRUE(Create(ref).ok());

  // Nothing is due yet.
  auto none = ReapExpiredArtifacts(env_->artifact_store(), env_->blobs(), 2);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);

  env_->fake_clock()->Advance(absl::Minutes(11));
  int passes = 0;
  int total = 0;
  for (;;) {
    auto reaped =
        ReapExpiredArtifacts(env_->artifact_store(), env_->blobs(), 2);
    ASSERT_TRUE(reaped.ok()) << reaped.status();
    ++passes;
    total += *reaped;
    if (*reaped == 0) break;
    ASSERT_LT(passes, 20);
  }
  EXPECT_GE(passes, 4);     // batches of 2
  EXPECT_EQ(total, 6 + 5);  // rows + blobs
  EXPECT_EQ(CountRows("SELECT count(*) FROM artifacts"), 1);
  EXPECT_EQ(CountRows("SELECT count(*) FROM artifact_blob_deletions"), 0);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(HasErrorCode(
        env_->blobs().Stat(absl::StrCat(task_id_, "/0/public/old", i)).status(),
        ErrorCode::kResourceNotFound));
  }
  EXPECT_TRUE(env_->blobs().Stat(task_id_ + "/0/public/keep").ok());
  EXPECT_TRUE(Get("public/keep").ok());
}

TEST_F(ArtifactsServiceTest, LatestRunVariantsUseTheNewestRun) {
  ASSERT_TRUE(PutBlob("public/r0", "run zero").ok());
  v1::LatestArtifactRequest latest;
  latest.set_task_id(task_id_);
  latest.set_name("public/r0");
  auto got = Call(&v1::Artifacts::Stub::GetLatestArtifact, latest);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->artifact().run_id(), 0);
  latest.set_task_id("AAAAAAAAAAAAAAAAAAAAAA");
  absl::Status unknown =
      Call(&v1::Artifacts::Stub::GetLatestArtifact, latest).status();
  EXPECT_TRUE(HasErrorCode(unknown, ErrorCode::kResourceNotFound));
  EXPECT_EQ(GetErrorInfo(unknown).details["kind"], "task");
}

// ---- live logs ------------------------------------------------------------

class LiveLogTest : public ArtifactsServiceTest {
 protected:
  absl::StatusOr<int64_t> Append(int64_t offset, const std::string& data) {
    v1::AppendLogRequest r;
    r.set_task_id(task_id_);
    r.set_run_id(0);
    r.set_offset(offset);
    r.set_data(data);
    DROVER_ASSIGN_OR_RETURN(auto response,
                            Call(&v1::Artifacts::Stub::AppendLog, r));
    return response.length();
  }

  // Reads a TailLog stream to its end on its own thread.
  struct Tail {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<v1::TailLogResponse>> reader;
    std::mutex mu;
    std::condition_variable cv;
    std::string text;
    std::string remaining_url;
    int64_t remaining_offset = -1;
    bool done = false;
    grpc::Status status;
    std::thread thread;

    bool WaitFor(const std::string& needle, absl::Duration timeout) {
      std::unique_lock<std::mutex> lock(mu);
      return cv.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
        return text.find(needle) != std::string::npos;
      });
    }
    bool WaitDone(absl::Duration timeout) {
      std::unique_lock<std::mutex> lock(mu);
      return cv.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                         [&] { return done; });
    }
    ~Tail() {
      context.TryCancel();
      if (thread.joinable()) thread.join();
    }
  };

  std::unique_ptr<Tail> StartTail(v1::Artifacts::Stub& stub, int64_t offset,
                                  std::optional<int> run_id = 0) {
    auto tail = std::make_unique<Tail>();
    v1::TailLogRequest r;
    r.set_task_id(task_id_);
    if (run_id) r.set_run_id(*run_id);
    r.set_offset(offset);
    tail->reader = stub.TailLog(&tail->context, r);
    Tail* t = tail.get();
    tail->thread = std::thread([t, offset] {
      v1::TailLogResponse message;
      int64_t expected = offset;
      while (t->reader->Read(&message)) {
        std::lock_guard<std::mutex> lock(t->mu);
        EXPECT_EQ(message.offset(), expected);
        expected += static_cast<int64_t>(message.data().size());
        t->text += message.data();
        if (!message.remaining_url().empty()) {
          t->remaining_url = message.remaining_url();
          t->remaining_offset = message.offset();
        }
        t->cv.notify_all();
      }
      grpc::Status status = t->reader->Finish();
      std::lock_guard<std::mutex> lock(t->mu);
      t->status = status;
      t->done = true;
      t->cv.notify_all();
    });
    return tail;
  }
};

TEST_F(LiveLogTest, AppendsAreIdempotentByOffsetAndRefuseGaps) {
  auto first = Append(0, "abc");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, 3);
  EXPECT_EQ(*Append(0, "abc"), 3);  // a retry
  absl::Status other = Append(0, "xyz").status();
  EXPECT_TRUE(HasErrorCode(other, ErrorCode::kRequestConflict));
  EXPECT_EQ(GetErrorInfo(other).details["expected_offset"], "3");
  absl::Status gap = Append(5, "x").status();
  EXPECT_TRUE(HasErrorCode(gap, ErrorCode::kRequestConflict));
  EXPECT_EQ(GetErrorInfo(gap).details["expected_offset"], "3");
  EXPECT_EQ(*Append(3, "de"), 5);
  auto read = env_->artifact_store().ReadLog(task_id_, 0, 1, 100);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->data, "bcde");

  ASSERT_TRUE(env_->ResolveRun(task_id_, 0).ok());
  absl::Status late = Append(5, "f").status();
  EXPECT_TRUE(HasErrorCode(late, ErrorCode::kRequestConflict));
}

TEST_F(LiveLogTest, TailFollowsAppendsFromAnotherReplicaUntilResolution) {
  auto replica = env_->AddReplica();
  ASSERT_TRUE(replica.ok()) << replica.status();
  auto other_stub = env_->NewStub(*replica);
  ASSERT_TRUE(Append(0, "line 1\n").ok());
  auto tail = StartTail(*other_stub, 0);
  ASSERT_TRUE(tail->WaitFor("line 1\n", absl::Seconds(10)));

  // Appends through replica 0 reach the follower on replica 1 through
  // LISTEN/NOTIFY.
  int64_t offset = 7;
  for (int i = 2; i <= 20; ++i) {
    std::string line = absl::StrCat("line ", i, "\n");
    auto length = Append(offset, line);
    ASSERT_TRUE(length.ok()) << length.status();
    offset = *length;
    ASSERT_TRUE(tail->WaitFor(line, absl::Seconds(10))) << line;
  }
  EXPECT_FALSE(tail->WaitDone(absl::Milliseconds(300)));
  ASSERT_TRUE(env_->ResolveRun(task_id_, 0).ok());
  // No live.log blob: the stream ends once the poll notices the
  // resolution.
  ASSERT_TRUE(tail->WaitDone(absl::Seconds(10)));
  EXPECT_TRUE(tail->status.ok()) << tail->status.error_message();
  std::lock_guard<std::mutex> lock(tail->mu);
  EXPECT_THAT(tail->text, HasSubstr("line 20\n"));
  EXPECT_EQ(static_cast<int64_t>(tail->text.size()), offset);
}

TEST_F(LiveLogTest, FinishedLiveLogReplacesTheChunks) {
  const std::string log = "first part\nsecond part\n";
  ASSERT_TRUE(Append(0, log.substr(0, 11)).ok());
  ASSERT_TRUE(Append(11, log.substr(11)).ok());
  auto tail = StartTail(*stub_, 0);
  ASSERT_TRUE(tail->WaitFor("second part", absl::Seconds(10)));

  ASSERT_TRUE(PutBlob(std::string(kLiveLogName), log).ok());
  // Finishing the blob dropped the chunks and ended the follower's stream.
  EXPECT_EQ(CountRows("SELECT count(*) FROM log_chunks"), 0);
  ASSERT_TRUE(tail->WaitDone(absl::Seconds(10)));
  EXPECT_TRUE(tail->status.ok());
  absl::Status more = Append(static_cast<int64_t>(log.size()), "more").status();
  EXPECT_TRUE(HasErrorCode(more, ErrorCode::kRequestConflict));

  // A late reader gets the rest as a URL into the blob.
  auto late = StartTail(*stub_, 6, std::nullopt);
  ASSERT_TRUE(late->WaitDone(absl::Seconds(10)));
  EXPECT_TRUE(late->status.ok());
  ASSERT_FALSE(late->remaining_url.empty());
  EXPECT_EQ(late->remaining_offset, 6);
  CurlRequest range;
  range.url = late->remaining_url;
  range.headers["Range"] = "bytes=6-";
  CurlResponse rest = Perform(range);
  EXPECT_EQ(rest.status, 206);
  EXPECT_EQ(rest.body, log.substr(6));
}

TEST_F(LiveLogTest, TailOfAnUnknownTaskFails) {
  v1::TailLogRequest r;
  r.set_task_id("AAAAAAAAAAAAAAAAAAAAAA");
  grpc::ClientContext context;
  auto reader = stub_->TailLog(&context, r);
  v1::TailLogResponse message;
  EXPECT_FALSE(reader->Read(&message));
  absl::Status status = rpc::FromGrpcStatus(reader->Finish());
  EXPECT_TRUE(HasErrorCode(status, ErrorCode::kResourceNotFound)) << status;
}

// artifact-created reaches WatchEvents: once per artifact (blobs when
// finished), after the run's task-running, with the task's group, queue
// and routes, the run, and a body naming the artifact.
TEST_F(ArtifactsServiceTest, ArtifactCreatedEventsReplayThroughWatchEvents) {
  store::PgStore& queue_store = env_->store();
  store::Task task;
  task.task_id = NewSlugId();
  task.task_queue_id = "artifacts-test/events";
  task.scheduler_id = "-";
  task.task_group_id = NewSlugId();
  task.routes = {"index.artifacts.events", "notify.artifacts"};
  task.retries = 0;
  task.created = absl::FromUnixMicros(absl::ToUnixMicros(env_->clock().Now()));
  task.deadline = task.created + absl::Hours(1);
  task.expires = task.created + absl::Hours(3);
  ASSERT_TRUE(queue_store.CreateTask(task).ok());
  auto claimed =
      queue_store.ClaimWork(task.task_queue_id, "g", "w", 1, absl::Hours(1));
  ASSERT_TRUE(claimed.ok()) << claimed.status();
  ASSERT_EQ(claimed->size(), 1u);
  task_id_ = task.task_id;

  v1::CreateArtifactRequest ref;
  ref.set_task_id(task_id_);
  ref.set_name("public/ref");
  ref.mutable_reference()->set_url("https://example.com/ref");
  ASSERT_TRUE(Create(ref).ok());
  v1::CreateArtifactRequest error;
  error.set_task_id(task_id_);
  error.set_name("public/err");
  error.set_content_type("text/plain");
  error.mutable_error()->set_reason("file-missing-on-worker");
  error.mutable_error()->set_message("gone");
  ASSERT_TRUE(Create(error).ok());
  // A blob declared and not finished is not "created" yet.
  ASSERT_TRUE(Create(BlobRequest("public/pending.txt", "later")).ok());
  ASSERT_TRUE(PutBlob("public/data.txt", "some bytes").ok());

  auto queue = v1::Queue::NewStub(env_->channel());
  auto replay = [&](const std::vector<std::string>& kinds, size_t count) {
    v1::WatchEventsRequest request;
    request.set_after_event_id(0);
    request.set_task_group_id(task.task_group_id);
    for (const auto& k : kinds) request.add_kinds(k);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(20));
    auto reader = queue->WatchEvents(&context, request);
    std::vector<v1::Event> out;
    v1::Event event;
    while (out.size() < count && reader->Read(&event)) out.push_back(event);
    context.TryCancel();
    reader->Finish();
    return out;
  };
  std::vector<v1::Event> all = replay({}, 5);
  std::vector<std::string> kinds;
  for (const auto& e : all) kinds.push_back(e.kind());
  EXPECT_EQ(kinds, (std::vector<std::string>{"task-defined", "task-pending",
                                             "task-running", "artifact-created",
                                             "artifact-created"}));
  std::vector<v1::Event> events = replay({"artifact-created"}, 3);
  ASSERT_EQ(events.size(), 3u);
  std::vector<std::string> names;
  for (const auto& e : events) {
    EXPECT_EQ(e.kind(), "artifact-created");
    EXPECT_EQ(e.task_id(), task.task_id);
    EXPECT_EQ(e.task_group_id(), task.task_group_id);
    EXPECT_EQ(e.task_queue_id(), task.task_queue_id);
    EXPECT_EQ(e.run_id(), 0);
    EXPECT_EQ(std::vector<std::string>(e.routes().begin(), e.routes().end()),
              task.routes);
    auto body = nlohmann::json::parse(e.body(), nullptr, false);
    ASSERT_TRUE(body.is_object()) << e.body();
    const auto& artifact = body["artifact"];
    std::string name = artifact.value("name", "");
    names.push_back(name);
    auto stored = Get(name);
    ASSERT_TRUE(stored.ok()) << name << ": " << stored.status();
    EXPECT_EQ(artifact.value("content_type", "?"),
              stored->artifact().content_type());
    EXPECT_EQ(artifact.value("kind", ""), name == "public/ref"   ? "reference"
                                          : name == "public/err" ? "error"
                                                                 : "blob");
    absl::Time expires;
    std::string parse_error;
    ASSERT_TRUE(absl::ParseTime("%Y-%m-%dT%H:%M:%E*S%Ez",
                                artifact.value("expires", ""), &expires,
                                &parse_error))
        << e.body() << " " << parse_error;
    EXPECT_EQ(absl::ToUnixSeconds(expires),
              stored->artifact().expires().seconds());
    EXPECT_LT(all[2].event_id(), e.event_id());  // after task-running
  }
  EXPECT_EQ(names, (std::vector<std::string>{"public/ref", "public/err",
                                             "public/data.txt"}));
  for (size_t i = 1; i < events.size(); ++i) {
    EXPECT_LT(events[i - 1].event_id(), events[i].event_id());
  }
}

}  // namespace
}  // namespace drover::queue::artifacts
