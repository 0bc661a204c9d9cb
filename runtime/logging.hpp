// The cluster log: one named spdlog logger per component, all writing to
// the console and to a size-rotated log file in the same line format:
//
//   26/12/04 15:56:03.123 Info membership primary mx1 online: ...
//
// Level meanings: error = an operator must act; warn = degraded but
// running; info = cluster-visible state changes; debug = per-message
// decisions.
#pragma once

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace mc::log {

/// Components that log, each with its own logger name.
inline constexpr const char* node = "node";
inline constexpr const char* membership = "membership";
inline constexpr const char* supervisor = "supervisor";
inline constexpr const char* admin = "admin";
inline constexpr const char* replication = "replication";
inline constexpr const char* relay = "relay";

/// Settings of the log sinks.
struct log_settings {
  /// Empty: console only.
  std::string file;
  std::string level = "info";
  size_t max_size = 10 * 1024 * 1024;
  size_t max_files = 5;
  bool console = true;
};

/// Creates the loggers of every component. Returns an error message
/// naming the file if the log file cannot be opened, else "".
std::string init(const log_settings& settings);

/// Returns the logger of a component; before init() it logs to stderr.
std::shared_ptr<spdlog::logger> get(const char* component);

/// Flushes and drops every logger (call before exit).
void shutdown();

} // namespace mc::log
