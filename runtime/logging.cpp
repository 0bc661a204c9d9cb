#include "runtime/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/rotating_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <vector>

namespace mc::log {

namespace {

const char* const all_components[] = {node, membership, supervisor, admin, replication, relay};

// Writes the level as a capitalised word ("Info", "Warning"), which spdlog's
// own %l and %L flags cannot do.
class level_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static const char* const names[] = {"Trace", "Debug",    "Info", "Warning",
                                        "Error", "Critical", "Off"};
    const char* name = names[static_cast<int>(msg.level)];
    dest.append(name, name + std::char_traits<char>::length(name));
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<level_flag>();
  }
};

// %C is the two-digit year; spdlog has no %y.
constexpr const char* line_pattern = "%C/%m/%d %H:%M:%S.%e %* %n %v";

std::unique_ptr<spdlog::formatter> make_formatter() {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<level_flag>('*').set_pattern(line_pattern);
  return formatter;
}

} // namespace

std::string init(const log_settings& settings) {
  std::vector<spdlog::sink_ptr> sinks;
  if (settings.console)
    sinks.push_back(std::make_shared<spdlog::sinks::stderr_sink_mt>());
  if (!settings.file.empty()) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::rotating_file_sink_mt>(
        settings.file, settings.max_size, settings.max_files));
    } catch (const spdlog::spdlog_ex& ex) {
      return "cannot open log file '" + settings.file + "': " + ex.what();
    }
  }
  auto level = spdlog::level::from_str(settings.level);
  spdlog::drop_all();
  for (auto name : all_components) {
    auto logger = std::make_shared<spdlog::logger>(name, sinks.begin(), sinks.end());
    logger->set_formatter(make_formatter());
    logger->set_level(level);
    logger->flush_on(spdlog::level::info);
    spdlog::register_logger(logger);
  }
  // Debug lines are not flushed one by one; this bounds their delay.
  spdlog::flush_every(std::chrono::seconds(1));
  return {};
}

std::shared_ptr<spdlog::logger> get(const char* component) {
  if (auto logger = spdlog::get(component))
    return logger;
  auto logger =
    std::make_shared<spdlog::logger>(component, std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_formatter(make_formatter());
  try {
    spdlog::register_logger(logger);
  } catch (const spdlog::spdlog_ex&) {
    // Another thread registered the same name first; use that one.
    return spdlog::get(component);
  }
  return logger;
}

void shutdown() {
  spdlog::shutdown();
}

} // namespace mc::log
