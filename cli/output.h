// What the drover CLI prints: concise tables and lines for people, the
// protobuf JSON mapping for machines (--json), and errors in one format:
//
//   error: <Code>: <message>
//     <detail>: <value>          (one line per detail, sorted by name)
//
// <Code> is the Drover error code (InputError, ResourceNotFound, ...) when
// the error carries one, else the transport's code in CamelCase
// (Unavailable, DeadlineExceeded, Unimplemented, ...).
//
// All functions are pure and thread-safe.
#ifndef DROVER_CLI_OUTPUT_H_
#define DROVER_CLI_OUTPUT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "drover/v1/queue.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/timestamp.pb.h"

namespace drover::cli {

// Columns separated by two spaces, left-aligned, no trailing blanks. The
// first row is the header.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void AddRow(std::vector<std::string> row);
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// The error code shown after "error: " (see above).
std::string ErrorCodeLabel(const absl::Status& status);

// The error block above, newline-terminated. `context` adds detail lines
// (e.g. {"url", ...}) after the error's own.
std::string FormatError(
    const absl::Status& status,
    const std::vector<std::pair<std::string, std::string>>& context = {});

// Protobuf JSON mapping (camelCase names, default values included,
// indented), newline-terminated.
std::string MessageToJson(const google::protobuf::Message& message);

// RFC 3339 at whole seconds, or "-" for an unset timestamp.
std::string FormatTimestamp(bool present,
                            const google::protobuf::Timestamp& ts);

// `drover task status`: key/value lines, then a table of runs.
std::string FormatTaskStatus(const v1::TaskStatus& status);

// One line after a state change: "<id>  <state>  run <n>: <reason>[ -> ...]".
std::string FormatTaskStatusLine(const v1::TaskStatus& status);

// `drover queue counts` and `drover queue list` tables.
std::string FormatQueueCounts(const v1::TaskQueueCounts& counts);
std::string FormatTaskQueues(const std::vector<v1::TaskQueueInfo>& queues);

}  // namespace drover::cli

#endif  // DROVER_CLI_OUTPUT_H_
