#include "queue/artifacts/artifacts_service.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rpc/grpc_status.h"
#include "common/status.h"
#include "queue/artifacts/artifact_validation.h"
#include "queue/queue_service/authorized_call.h"
#include "spdlog/spdlog.h"

namespace drover::queue::artifacts {
namespace {

google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t micros = absl::ToUnixMicros(t);
  int64_t seconds = micros / 1000000;
  int64_t rest = micros % 1000000;
  if (rest < 0) {
    rest += 1000000;
    --seconds;
  }
  ts.set_seconds(seconds);
  ts.set_nanos(static_cast<int32_t>(rest * 1000));
  return ts;
}

std::string FormatUtc(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", t, absl::UTCTimeZone());
}

std::string LogKey(const std::string& task_id, int run_id) {
  return absl::StrCat(task_id, "/", run_id);
}

absl::Status Expired(const Artifact& a) {
  return MakeError(
      ErrorCode::kResourceExpired,
      absl::StrCat("artifact ", a.name, " of run ", a.run_id, " of task ",
                   a.task_id, " expired at ", FormatUtc(a.expires)),
      {{"field", "name"},
       {"value", a.name},
       {"expires", FormatUtc(a.expires)}});
}

}  // namespace

// One TailLog stream. Exactly one party owns the reactor at a time: an
// executor step, a pending write, or the parked set (then a wake, the
// cancellation handler or shutdown takes it out and acts). Only the owner
// may call Finish, so it happens once; OnDone deletes the reactor.
class ArtifactsService::TailReactor final
    : public grpc::ServerWriteReactor<v1::TailLogResponse> {
 public:
  TailReactor(ArtifactsService* service, grpc::CallbackServerContext* context,
              const v1::TailLogRequest* request)
      : service_(service),
        context_(context),
        request_(*request),
        cursor_(request->offset()) {
    Schedule();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Complete(absl::CancelledError("the stream was closed"));
      return;
    }
    Schedule();
  }

  void OnCancel() override {
    std::unique_lock<std::mutex> lock(service_->mu_);
    cancelled_ = true;
    if (!parked_) return;  // The current owner will notice.
    service_->parked_[key_].erase(this);
    if (service_->parked_[key_].empty()) service_->parked_.erase(key_);
    parked_ = false;
    lock.unlock();
    Complete(absl::CancelledError("the client canceled the call"));
  }

  void OnDone() override { delete this; }

  // Takes the reactor out of the parked state and runs the next step.
  // Called with service_->mu_ NOT held, after the caller removed it from
  // the parked set (under the lock) and cleared parked_.
  void Resume() { Schedule(); }
  void Abandon(const absl::Status& status) { Complete(status); }

  bool parked_ = false;     // Guarded by service_->mu_.
  bool cancelled_ = false;  // Guarded by service_->mu_.

 private:
  void Schedule() {
    if (!service_->executor_->TrySubmit([this] { Step(); })) {
      Complete(absl::UnavailableError("server is overloaded; retry later"));
    }
  }

  void Complete(const absl::Status& status) {
    Finish(rpc::ToGrpcStatus(status));
  }

  void Step() {
    if (context_->IsCancelled()) {
      Complete(absl::CancelledError("the client canceled the call"));
      return;
    }
    if (!started_) {
      absl::Status status = Start();
      if (!status.ok()) {
        Complete(status);
        return;
      }
    }
    uint64_t generation;
    {
      std::lock_guard<std::mutex> lock(service_->mu_);
      generation = service_->generation_;
    }
    auto read =
        service_->store_->ReadLog(request_.task_id(), run_id_, cursor_,
                                  service_->options_.tail_message_bytes);
    if (!read.ok()) {
      Complete(read.status());
      return;
    }
    if (!read->data.empty() || !sent_any_) {
      // The first message always goes out, so the reader learns the run.
      sent_any_ = true;
      response_.Clear();
      response_.set_run_id(run_id_);
      response_.set_offset(cursor_);
      cursor_ += static_cast<int64_t>(read->data.size());
      response_.set_data(std::move(read->data));
      StartWrite(&response_);
      return;
    }
    if (read->live_log) {
      // The chunks are gone: the rest, if any, is in the finished blob.
      if (cursor_ >= read->live_log->size) {
        Complete(absl::OkStatus());
        return;
      }
      auto url = service_->blobs_->PresignDownload(
          read->live_log->blob_key, service_->options_.download_url_ttl);
      if (!url.ok()) {
        Complete(url.status());
        return;
      }
      response_.Clear();
      response_.set_run_id(run_id_);
      response_.set_offset(cursor_);
      response_.set_remaining_url(*url);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
      return;
    }
    if (read->run_resolved || request_.no_follow()) {
      Complete(absl::OkStatus());
      return;
    }
    std::unique_lock<std::mutex> lock(service_->mu_);
    if (cancelled_) {
      lock.unlock();
      Complete(absl::CancelledError("the client canceled the call"));
      return;
    }
    if (service_->shutting_down_) {
      lock.unlock();
      Complete(absl::UnavailableError("the server is shutting down"));
      return;
    }
    if (service_->generation_ != generation) {
      // Something changed while we read: look again rather than sleep
      // through it.
      lock.unlock();
      Schedule();
      return;
    }
    parked_ = true;
    service_->parked_[key_].insert(this);
  }

  // Authorises, validates and picks the run; once per stream.
  absl::Status Start() {
    DROVER_RETURN_IF_ERROR(
        service_->authorizer_->Authorize(context_, kTailLogMethod, request_));
    DROVER_RETURN_IF_ERROR(ValidateTailLog(request_));
    if (request_.has_run_id()) {
      run_id_ = request_.run_id();
    } else {
      DROVER_ASSIGN_OR_RETURN(
          run_id_, service_->store_->LatestRunId(request_.task_id()));
    }
    key_ = LogKey(request_.task_id(), run_id_);
    started_ = true;
    return absl::OkStatus();
  }

  ArtifactsService* const service_;
  grpc::CallbackServerContext* const context_;
  const v1::TailLogRequest request_;
  bool started_ = false;
  bool sent_any_ = false;
  int run_id_ = 0;
  std::string key_;
  int64_t cursor_;
  v1::TailLogResponse response_;
};

ArtifactsService::ArtifactsService(ArtifactsServiceOptions options,
                                   ArtifactStore* store,
                                   blobstore::BlobStore* blobs,
                                   const Clock* clock,
                                   queue_service::Authorizer* authorizer,
                                   queue_service::BoundedExecutor* executor)
    : options_(options),
      store_(store),
      blobs_(blobs),
      clock_(clock),
      authorizer_(authorizer),
      executor_(executor) {
  poll_thread_ = std::thread([this] { PollLoop(); });
}

ArtifactsService::~ArtifactsService() {
  BeginShutdown();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_poll_ = true;
  }
  poll_cv_.notify_all();
  if (poll_thread_.joinable()) poll_thread_.join();
}

size_t ArtifactsService::parked_tails() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [key, reactors] : parked_) n += reactors.size();
  return n;
}

std::vector<ArtifactsService::TailReactor*> ArtifactsService::TakeParked(
    const std::string& key) {
  std::vector<TailReactor*> taken;
  auto take_all = [&](std::set<TailReactor*>& reactors) {
    for (TailReactor* r : reactors) {
      r->parked_ = false;
      taken.push_back(r);
    }
  };
  if (key.empty()) {
    for (auto& [k, reactors] : parked_) take_all(reactors);
    parked_.clear();
  } else if (auto it = parked_.find(key); it != parked_.end()) {
    take_all(it->second);
    parked_.erase(it);
  }
  return taken;
}

void ArtifactsService::NotifyLogChanged(const std::string& payload) {
  std::vector<TailReactor*> woken;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    woken = TakeParked(payload);
  }
  for (TailReactor* r : woken) r->Resume();
}

void ArtifactsService::BeginShutdown() {
  std::vector<TailReactor*> parked;
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
    parked = TakeParked("");
  }
  for (TailReactor* r : parked) {
    r->Abandon(absl::UnavailableError("the server is shutting down"));
  }
}

void ArtifactsService::PollLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_poll_) {
    poll_cv_.wait_for(lock,
                      absl::ToChronoNanoseconds(options_.tail_poll_interval),
                      [this] { return stop_poll_; });
    if (stop_poll_) break;
    // Resolution of a run sends no notification of ours; this is how
    // parked followers of a run without a live log learn about it.
    std::vector<TailReactor*> woken = TakeParked("");
    lock.unlock();
    for (TailReactor* r : woken) r->Resume();
    lock.lock();
  }
}

grpc::ServerUnaryReactor* ArtifactsService::Run(
    grpc::CallbackServerContext* context, std::string_view method,
    const google::protobuf::Message& request,
    std::function<absl::Status()> work) {
  return queue_service::RunAuthorized(*executor_, *authorizer_, context, method,
                                      request, std::move(work));
}

grpc::ServerUnaryReactor* ArtifactsService::CreateArtifact(
    grpc::CallbackServerContext* context,
    const v1::CreateArtifactRequest* request,
    v1::CreateArtifactResponse* response) {
  return Run(context, kCreateArtifactMethod, *request, [=, this] {
    DROVER_ASSIGN_OR_RETURN(NewArtifact artifact,
                            ValidateCreateArtifact(*request));
    DROVER_ASSIGN_OR_RETURN(CreateResult result, store_->Create(artifact));
    const Artifact& a = result.artifact;
    ToProto(a, response->mutable_artifact());
    if (a.kind == ArtifactKind::kBlob && !a.present) {
      blobstore::UploadOptions upload;
      upload.content_type = a.content_type;
      upload.content_encoding = a.content_encoding;
      upload.content_length = static_cast<uint64_t>(a.size);
      upload.sha256 = a.sha256;
      DROVER_ASSIGN_OR_RETURN(
          blobstore::PresignedRequest presigned,
          blobs_->PresignUpload(a.blob_key, upload, options_.upload_url_ttl));
      auto* out = response->mutable_upload();
      out->set_method(presigned.method);
      out->set_url(presigned.url);
      for (const auto& [name, value] : presigned.headers) {
        (*out->mutable_headers())[name] = value;
      }
      *out->mutable_expires() = ToProtoTime(presigned.expires);
    }
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* ArtifactsService::FinishArtifact(
    grpc::CallbackServerContext* context, const v1::ArtifactRequest* request,
    v1::FinishArtifactResponse* response) {
  return Run(context, kFinishArtifactMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateArtifactRequest(*request));
    DROVER_ASSIGN_OR_RETURN(
        Artifact a,
        store_->Get(request->task_id(), request->run_id(), request->name()));
    if (a.kind == ArtifactKind::kBlob && !a.present) {
      // Checked outside any transaction: Stat may be a network call.
      auto info = blobs_->Stat(a.blob_key);
      if (!info.ok()) {
        if (HasErrorCode(info.status(), ErrorCode::kResourceNotFound)) {
          return ConflictError(
              absl::StrCat("nothing has been uploaded for artifact ", a.name,
                           " yet; upload it, then finish it"),
              {{"field", "name"}, {"value", a.name}});
        }
        return info.status();
      }
      if (static_cast<int64_t>(info->size) != a.size) {
        return MakeError(ErrorCode::kInputError,
                         absl::StrCat("the uploaded blob has ", info->size,
                                      " bytes; the artifact declared ", a.size),
                         {{"field", "size"},
                          {"value", std::to_string(info->size)},
                          {"declared", std::to_string(a.size)}});
      }
      if (info->sha256.has_value() && *info->sha256 != a.sha256) {
        return MakeError(ErrorCode::kInputError,
                         "the uploaded blob's SHA-256 differs from the "
                         "artifact's declared one",
                         {{"field", "sha256"},
                          {"value", *info->sha256},
                          {"declared", a.sha256}});
      }
      if (!info->sha256.has_value()) {
        spdlog::warn(
            "artifact {}/{}/{}: the {} blob store cannot vouch for "
            "the SHA-256; accepted on size alone",
            a.task_id, a.run_id, a.name, blobs_->Kind());
      }
    }
    // Non-blobs and finished blobs get their conflict / idempotent answer
    // from the store.
    DROVER_ASSIGN_OR_RETURN(
        Artifact finished,
        store_->MarkPresent(request->task_id(), request->run_id(),
                            request->name(), a.size, a.sha256));
    if (finished.name == kLiveLogName) {
      NotifyLogChanged(LogKey(finished.task_id, finished.run_id));
    }
    ToProto(finished, response->mutable_artifact());
    return absl::OkStatus();
  });
}

absl::Status ArtifactsService::Get(const std::string& task_id, int run_id,
                                   const std::string& name,
                                   v1::GetArtifactResponse* response) {
  const absl::Time now = clock_->Now();
  DROVER_ASSIGN_OR_RETURN(Artifact a, store_->Get(task_id, run_id, name));
  for (int hops = 0; a.kind == ArtifactKind::kLink; ++hops) {
    if (hops >= options_.max_link_hops) {
      return ConflictError(
          absl::StrCat("artifact ", name, " leads through more than ",
                       options_.max_link_hops, " links"),
          {{"field", "name"}, {"value", name}});
    }
    if (a.expires <= now) return Expired(a);
    response->add_links_followed(absl::StrCat(a.run_id, "/", a.name));
    auto target = store_->Get(task_id, a.link_run_id, a.link_name);
    if (!target.ok()) {
      if (HasErrorCode(target.status(), ErrorCode::kResourceNotFound)) {
        return MakeError(
            ErrorCode::kResourceNotFound,
            absl::StrCat("artifact ", a.name, " links to ", a.link_run_id, "/",
                         a.link_name, ", which no longer exists"),
            {{"kind", "artifact"},
             {"id",
              absl::StrCat(task_id, "/", a.link_run_id, "/", a.link_name)}});
      }
      return target.status();
    }
    a = std::move(target).value();
  }
  if (a.expires <= now) return Expired(a);
  switch (a.kind) {
    case ArtifactKind::kBlob: {
      if (!a.present) {
        return MakeError(
            ErrorCode::kResourceNotFound,
            absl::StrCat("artifact ", a.name,
                         " is still being uploaded (not finished)"),
            {{"kind", "artifact"},
             {"id", absl::StrCat(a.task_id, "/", a.run_id, "/", a.name)},
             {"state", "uploading"}});
      }
      DROVER_ASSIGN_OR_RETURN(
          std::string url,
          blobs_->PresignDownload(a.blob_key, options_.download_url_ttl));
      response->set_url(url);
      *response->mutable_url_expires() =
          ToProtoTime(now + options_.download_url_ttl);
      break;
    }
    case ArtifactKind::kReference:
      response->set_url(a.url);
      break;
    case ArtifactKind::kLink:  // followed above
    case ArtifactKind::kError:
      break;
  }
  ToProto(a, response->mutable_artifact());
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ArtifactsService::GetArtifact(
    grpc::CallbackServerContext* context, const v1::ArtifactRequest* request,
    v1::GetArtifactResponse* response) {
  return Run(context, kGetArtifactMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateArtifactRequest(*request));
    return Get(request->task_id(), request->run_id(), request->name(),
               response);
  });
}

grpc::ServerUnaryReactor* ArtifactsService::GetLatestArtifact(
    grpc::CallbackServerContext* context,
    const v1::LatestArtifactRequest* request,
    v1::GetArtifactResponse* response) {
  return Run(context, kGetLatestArtifactMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateRun(request->task_id(), 0));
    DROVER_RETURN_IF_ERROR(ValidateArtifactName("name", request->name()));
    DROVER_ASSIGN_OR_RETURN(int run_id,
                            store_->LatestRunId(request->task_id()));
    return Get(request->task_id(), run_id, request->name(), response);
  });
}

absl::Status ArtifactsService::List(const std::string& task_id, int run_id,
                                    const std::string& token, int limit,
                                    v1::ListArtifactsResponse* response) {
  DROVER_ASSIGN_OR_RETURN(limit, ValidateListLimit(limit));
  std::string after;
  if (!token.empty()) {
    DROVER_ASSIGN_OR_RETURN(auto decoded, DecodeContinuationToken(token));
    if (decoded.first != run_id) {
      return InputError("continuation_token", token,
                        absl::StrCat("this token continues a listing of run ",
                                     decoded.first, ", not run ", run_id));
    }
    after = std::move(decoded.second);
  }
  DROVER_ASSIGN_OR_RETURN(ArtifactPage page,
                          store_->List(task_id, run_id, after, limit));
  response->set_run_id(run_id);
  for (const Artifact& a : page.artifacts) {
    ToProto(a, response->add_artifacts());
  }
  if (!page.next_after.empty()) {
    response->set_continuation_token(
        EncodeContinuationToken(run_id, page.next_after));
  }
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* ArtifactsService::ListArtifacts(
    grpc::CallbackServerContext* context,
    const v1::ListArtifactsRequest* request,
    v1::ListArtifactsResponse* response) {
  return Run(context, kListArtifactsMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateRun(request->task_id(), request->run_id()));
    return List(request->task_id(), request->run_id(),
                request->continuation_token(), request->limit(), response);
  });
}

grpc::ServerUnaryReactor* ArtifactsService::ListLatestArtifacts(
    grpc::CallbackServerContext* context,
    const v1::ListLatestArtifactsRequest* request,
    v1::ListArtifactsResponse* response) {
  return Run(context, kListLatestArtifactsMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateRun(request->task_id(), 0));
    int run_id;
    if (!request->continuation_token().empty()) {
      // Later pages stay on the run the first page listed, even when a new
      // run has started since.
      DROVER_ASSIGN_OR_RETURN(
          auto decoded, DecodeContinuationToken(request->continuation_token()));
      run_id = decoded.first;
    } else {
      DROVER_ASSIGN_OR_RETURN(run_id, store_->LatestRunId(request->task_id()));
    }
    return List(request->task_id(), run_id, request->continuation_token(),
                request->limit(), response);
  });
}

grpc::ServerUnaryReactor* ArtifactsService::AppendLog(
    grpc::CallbackServerContext* context, const v1::AppendLogRequest* request,
    v1::AppendLogResponse* response) {
  return Run(context, kAppendLogMethod, *request, [=, this] {
    DROVER_RETURN_IF_ERROR(ValidateAppendLog(*request));
    DROVER_ASSIGN_OR_RETURN(
        int64_t length, store_->AppendLog(request->task_id(), request->run_id(),
                                          request->offset(), request->data()));
    response->set_length(length);
    // Followers in this process need not wait for the NOTIFY round trip.
    NotifyLogChanged(LogKey(request->task_id(), request->run_id()));
    return absl::OkStatus();
  });
}

grpc::ServerWriteReactor<v1::TailLogResponse>* ArtifactsService::TailLog(
    grpc::CallbackServerContext* context, const v1::TailLogRequest* request) {
  return new TailReactor(this, context, request);
}

absl::StatusOr<int> ReapExpiredArtifacts(ArtifactStore& store,
                                         blobstore::BlobStore& blobs, int batch,
                                         absl::Duration lease) {
  DROVER_ASSIGN_OR_RETURN(int rows, store.DeleteExpiredArtifacts(batch));
  DROVER_ASSIGN_OR_RETURN(std::vector<std::string> keys,
                          store.LeaseBlobDeletions(batch, lease));
  std::vector<std::string> deleted;
  for (const std::string& key : keys) {
    absl::Status status = blobs.Delete(key);
    if (status.ok()) {
      deleted.push_back(key);
    } else {
      // Left leased; another pass retries it once the lease ends.
      spdlog::warn("artifact reaper: cannot delete blob {}: {}", key,
                   status.ToString());
    }
  }
  DROVER_RETURN_IF_ERROR(store.CompleteBlobDeletions(deleted));
  return rows + static_cast<int>(deleted.size());
}

}  // namespace drover::queue::artifacts
