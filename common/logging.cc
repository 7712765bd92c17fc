#include "common/logging.h"

#include <memory>

#include "common/status.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace drover {
namespace {

// %j: the message, escaped as the body of a JSON string, so the JSON format
// stays valid whatever a message contains.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      switch (c) {
        case '"':
          { constexpr std::string_view e = "\\\""; dest.append(e.data(), e.data() + e.size()); }
          break;
        case '\\':
          { constexpr std::string_view e = "\\\\"; dest.append(e.data(), e.data() + e.size()); }
          break;
        case '\n':
          { constexpr std::string_view e = "\\n"; dest.append(e.data(), e.data() + e.size()); }
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char esc[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf],
                          kHex[c & 0xf]};
            dest.append(esc, esc + sizeof(esc));
          } else {
            dest.push_back(c);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

absl::Status ParseLogFormat(std::string_view value, std::string_view field,
                            LogFormat* out) {
  if (value == "text") {
    *out = LogFormat::kText;
  } else if (value == "json") {
    *out = LogFormat::kJson;
  } else {
    return InputError(field, value, "log format must be \"text\" or \"json\"");
  }
  return absl::OkStatus();
}

absl::Status SetUpLogging(const LogOptions& options) {
  auto level = spdlog::level::from_str(options.level);
  // from_str maps unknown names to "off"; only accept "off" when asked for.
  if (level == spdlog::level::off && options.level != "off") {
    return InputError("log_level", options.level,
                      "log level must be one of trace, debug, info, warn, "
                      "error, critical, off");
  }
  auto logger = std::make_shared<spdlog::logger>(
      "drover", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (options.format == LogFormat::kJson) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(
        spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","thread":%t,"msg":"%j"})");
    logger->set_formatter(std::move(formatter));
  } else {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  logger->set_level(level);
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

}  // namespace drover
