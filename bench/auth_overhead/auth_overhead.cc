// bench_auth_overhead: what authentication adds to ClaimWork.
//
// Two full QueueServers in this process on one throw-away database, with
// the same store, options and task-credentials issuer (claimed tasks carry
// signed credentials in every mode), differing only in the authorizer:
//   none       -- AllowAllAuthorizer: no credential check at all;
//   permanent  -- the real ScopeAuthorizer, the worker sends client id and
//                 access token (cached after the first call);
//   temporary  -- the same, with a signed certificate (verified without a
//                 database read).
// For each, --tasks pending tasks are created, then one worker claims them
// one at a time (max_tasks 1) and every ClaimWork round trip is timed. The
// modes take turns claim by claim, for --rounds rounds, so that drift in
// the machine's load hits all three alike. Printed: p50/p90/mean per mode and the overhead of
// each authenticated mode over `none` (target: <= 5% at p50).
#include <iostream>
#include <map>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "bench/bench_util.h"
#include "common/clock.h"
#include "common/rpc/process_defaults.h"
#include "common/slugid.h"
#include "drover/v1/auth.grpc.pb.h"
#include "drover/v1/queue.grpc.pb.h"
#include "grpcpp/create_channel.h"
#include "queue/auth/testing/auth_test_env.h"
#include "queue/queue_service/authorizer.h"
#include "queue/server/queue_server.h"
#include "queue/store/pg_store.h"

namespace drover::bench {
namespace {

using queue::auth::testing::AuthTestEnv;
using queue::auth::testing::NewContext;
using queue::auth::testing::TestCredentials;

struct Target {
  std::string name;
  std::unique_ptr<v1::Queue::Stub> stub;
  TestCredentials creator;  // Creates the tasks.
  TestCredentials worker;   // Claims them.
  Samples samples;
};

constexpr char kQueue[] = "bench/auth-overhead";

absl::Status CreatePending(Target& target, int count) {
  for (int i = 0; i < count; ++i) {
    v1::CreateTaskRequest request;
    request.set_task_id(NewSlugId());
    *request.mutable_task() = MakeTask(kQueue);
    v1::CreateTaskResponse response;
    grpc::Status status = target.stub->CreateTask(
        NewContext(target.creator).get(), request, &response);
    if (!status.ok()) {
      return absl::InternalError(
          absl::StrCat(target.name, ": CreateTask: ", status.error_message()));
    }
  }
  return absl::OkStatus();
}

// One ClaimWork round trip of `target`, timed into its samples.
absl::Status ClaimOne(Target& target) {
  v1::ClaimWorkRequest request;
  request.set_task_queue_id(kQueue);
  request.set_worker_group("bench");
  request.set_worker_id("w1");
  request.set_max_tasks(1);
  v1::ClaimWorkResponse response;
  auto context = NewContext(target.worker);
  auto start = SteadyClock::now();
  grpc::Status status =
      target.stub->ClaimWork(context.get(), request, &response);
  auto end = SteadyClock::now();
  if (!status.ok() || response.tasks_size() != 1) {
    return absl::InternalError(
        absl::StrCat(target.name, ": ClaimWork: ", status.error_message(),
                     " (", response.tasks_size(), " tasks)"));
  }
  target.samples.Add(MillisBetween(start, end));
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  CLI::App app{"Authentication overhead on ClaimWork round trips"};
  int tasks = 500;
  int rounds = 4;
  std::string json_path;
  app.add_option("--tasks", tasks, "claims per mode and round")
      ->check(CLI::Range(10, 100000));
  app.add_option("--rounds", rounds, "rounds (modes take turns)")
      ->check(CLI::Range(1, 100));
  app.add_option("--json", json_path, "also write the figures here");
  CLI11_PARSE(app, argc, argv);

  // The authenticated server.
  auto env = AuthTestEnv::Create();
  if (!env.ok()) {
    std::cerr << "bench_auth_overhead: " << env.status() << "\n";
    return 1;
  }
  // The unauthenticated server: the same store, the same task-credentials
  // issuer (every claimed task carries signed credentials whatever the
  // caller's authentication) and the same options as the authenticated
  // one; only the authorizer differs.
  SystemClock clock;
  queue::queue_service::AllowAllAuthorizer allow_all;
  queue::server::QueueServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  server_options.http_listen = "";
  server_options.rpc_threads = 4;
  server_options.run_resolvers = false;
  server_options.service.claim.poll_timeout = absl::Seconds(1);
  server_options.service.claim.safety_poll_interval = absl::Milliseconds(200);
  server_options.shutdown_grace = absl::Seconds(2);
  queue::server::QueueServer open_server(server_options, &(*env)->store(),
                                         nullptr, &clock, &allow_all);
  open_server.queue_service().SetTaskCredentialsIssuer(
      (*env)->auth().task_credentials());
  if (absl::Status s = open_server.Start(); !s.ok()) {
    std::cerr << "bench_auth_overhead: " << s << "\n";
    return 1;
  }

  auto worker = (*env)->CreateClient(
      "bench/worker",
      {absl::StrCat("queue:claim-work:", kQueue), "queue:worker-id:bench/w1"});
  if (!worker.ok()) {
    std::cerr << "bench_auth_overhead: " << worker.status() << "\n";
    return 1;
  }
  auto auth_stub = v1::Auth::NewStub((*env)->channel());
  v1::CreateTemporaryCredentialsRequest temp_request;
  temp_request.mutable_lifetime()->set_seconds(2 * 3600);
  v1::CreateTemporaryCredentialsResponse temp;
  grpc::Status temp_status = auth_stub->CreateTemporaryCredentials(
      NewContext(*worker).get(), temp_request, &temp);
  if (!temp_status.ok()) {
    std::cerr << "bench_auth_overhead: CreateTemporaryCredentials: "
              << temp_status.error_message() << "\n";
    return 1;
  }

  std::vector<Target> targets;
  targets.push_back(
      {"none",
       v1::Queue::NewStub(grpc::CreateChannel(
           open_server.grpc_target(), grpc::InsecureChannelCredentials())),
       {},
       {},
       {}});
  targets.push_back({"permanent",
                     v1::Queue::NewStub((*env)->channel()),
                     (*env)->root(),
                     *worker,
                     {}});
  targets.push_back({"temporary",
                     v1::Queue::NewStub((*env)->channel()),
                     (*env)->root(),
                     TestCredentials{"", "", temp.certificate()},
                     {}});

  // The modes take turns claim by claim, so that the machine's speed,
  // which drifts within seconds on a shared host, is the same for all
  // three; only the task creation before each round is done per mode.
  for (int round = 0; round < rounds; ++round) {
    for (Target& target : targets) {
      if (absl::Status s = CreatePending(target, tasks); !s.ok()) {
        std::cerr << "bench_auth_overhead: " << s << "\n";
        return 1;
      }
    }
    for (int i = 0; i < tasks; ++i) {
      for (Target& target : targets) {
        if (absl::Status s = ClaimOne(target); !s.ok()) {
          std::cerr << "bench_auth_overhead: " << s << "\n";
          return 1;
        }
      }
    }
  }

  Table table(absl::StrCat("auth overhead: ClaimWork round trips, ", tasks,
                           " claims x ", rounds, " rounds per mode"));
  nlohmann::json doc;
  const double base = targets[0].samples.Median();
  for (const Target& target : targets) {
    table.Add(target.name + " p50", target.samples.Median(), "ms");
    table.Add(target.name + " p90", target.samples.Percentile(90), "ms");
    doc[target.name] = target.samples.ToJson();
    if (&target != &targets[0]) {
      double overhead = 100.0 * (target.samples.Median() - base) / base;
      table.Add(target.name + " overhead p50", overhead, "%", "target <= 5%");
      doc[target.name + "_overhead_p50_percent"] = overhead;
    }
  }
  table.Print(std::cout);
  if (absl::Status s = WriteJson(json_path, doc); !s.ok()) {
    std::cerr << "bench_auth_overhead: " << s << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace drover::bench

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  return drover::bench::Run(argc, argv);
}
