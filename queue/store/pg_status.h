// Task statuses read inside a PgStore transaction (kTaskStatuses): what
// every store call that answers with a TaskStatus reads after its change,
// in the same transaction or on the same connection.
#ifndef DROVER_QUEUE_STORE_PG_STATUS_H_
#define DROVER_QUEUE_STORE_PG_STATUS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "pqxx/pqxx"
#include "queue/store/types.h"

namespace drover::queue::store {

// Statuses of the existing tasks among `ids`, in id order (one statement
// whatever the number of ids). `ids` must be distinct: the statement
// probes once per id, so a repeated id would repeat that task's runs (both
// callers pass ids that are distinct by construction: a resolution batch
// and a page of a task group). Throws what libpqxx throws; callers run it
// inside PgStore's Execute, which maps the exceptions.
std::vector<TaskStatus> ReadStatuses(pqxx::transaction_base& txn,
                                     const std::vector<std::string>& ids);

// The status of one task; ResourceNotFound when it does not exist.
absl::StatusOr<TaskStatus> ReadStatus(pqxx::transaction_base& txn,
                                      const std::string& task_id);

}  // namespace drover::queue::store

#endif  // DROVER_QUEUE_STORE_PG_STATUS_H_
