// Conversions between store types (queue/store/types.h) and the
// drover.v1 API messages. Pure functions; thread-safe.
#ifndef DROVER_QUEUE_QUEUE_SERVICE_CONVERSIONS_H_
#define DROVER_QUEUE_QUEUE_SERVICE_CONVERSIONS_H_

#include <optional>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "drover/v1/queue.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "queue/store/types.h"

namespace drover::queue::queue_service {

// Timestamps. ToProtoTime keeps nanosecond precision.
google::protobuf::Timestamp ToProtoTime(absl::Time t);
// Errors: InputError naming `field` when the timestamp is outside
// 0001-01-01..9999-12-31 or its nanos are outside 0..999999999.
absl::StatusOr<absl::Time> FromProtoTime(const google::protobuf::Timestamp& ts,
                                         std::string_view field);
// RFC 3339 text of `t` ("2024-05-01T10:00:00.123Z"), for error details.
std::string Rfc3339(absl::Time t);

// A validated task back to its API form (every default made explicit).
v1::TaskDefinition ToProto(const store::Task& task);
v1::RunStatus ToProto(const store::Run& run);
v1::TaskStatus ToProto(const store::TaskStatus& status);
// Credentials are left empty; the auth layer fills them.
v1::ClaimedTask ToProto(const store::ClaimedTask& claimed);
v1::TaskQueueCounts ToProto(const store::TaskQueueCounts& counts);
v1::TaskQueueInfo ToProtoInfo(const store::TaskQueueCounts& counts);

}  // namespace drover::queue::queue_service

#endif  // DROVER_QUEUE_QUEUE_SERVICE_CONVERSIONS_H_
