// The role config of one node: loading, strict validation, defaults.
//
// The file uses CAF's INI syntax (`[section]`, `key = value`, `;` comments,
// quoted strings, durations such as `100ms`). CAF itself silently drops
// unknown keys and wrong-typed values, so mailclusterd reads the file with
// this loader instead, and then hands CAF only the settings it needs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mc {

enum class node_role { primary, secondary };

/// Returns "primary" or "secondary".
const char* to_string(node_role role);

/// A TCP address as `host:port`; host is an IPv4 address, `[IPv6]` or a name.
struct endpoint {
  std::string host;
  uint16_t port = 0;
};

/// Returns `host:port` (IPv6 hosts in brackets).
std::string to_string(const endpoint& address);

using duration = std::chrono::milliseconds;

/// One node's validated settings. Paths are absolute (relative paths in the
/// file are resolved against the directory of the config file).
struct node_config {
  /// Absolute path of the file this config came from.
  std::string file;

  // [cluster]
  std::string cluster_name;
  std::string node_name;
  node_role role = node_role::secondary;
  /// Address for incoming cluster connections (required on the primary).
  std::optional<endpoint> listen;
  /// The primary's cluster address (required on a secondary).
  std::optional<endpoint> primary;
  std::string registration_key;
  duration heartbeat_interval{200};
  duration failure_timeout{1000};
  duration reconnect_max_backoff{500};
  duration request_timeout{2000};

  // [admin]
  /// Loopback address of the admin endpoint that mailclusterctl talks to.
  endpoint admin_listen;

  // [storage]
  std::string state_dir;

  // [replication]
  /// The managed configuration directory (default <state-dir>/config).
  std::string config_dir;
  /// Top-level names excluded in addition to the default shared folders.
  std::vector<std::string> exclude;
  /// File name suffixes excluded in addition to ".lock" and ".lck".
  std::vector<std::string> exclude_suffix;
  /// Period of the full rescan that catches what inotify missed.
  duration rescan_interval{60000};
  /// Quiet time after a change before the file list is rebuilt, so that
  /// one save of many files makes one generation.
  duration debounce{10};

  // [mail-changes]
  /// Notices a secondary keeps while the primary is offline.
  uint64_t mail_queue_limit = 10000;

  // [log]
  std::string log_file;
  /// One of trace, debug, info, warn, error.
  std::string log_level = "info";
  uint64_t log_max_size = 10 * 1024 * 1024;
  uint32_t log_max_files = 5;
  bool log_console = true;

  // [openssl]
  std::string certificate;
  std::string key;
  std::string passphrase;
  std::string cafile;
};

/// Result of load_node_config(): either a config or one error message that
/// names the file, the line (when there is one), the option, the value and
/// the rule it breaks.
struct config_result {
  std::optional<node_config> config;
  std::string error;
};

/// Reads and validates a role config. Checks syntax, unknown sections and
/// keys, types, ranges, required options, addresses, and that the TLS files
/// are readable. Does not create directories or touch the network.
config_result load_node_config(const std::string& path);

/// Parses `host:port`; returns nothing if either part is invalid.
std::optional<endpoint> parse_endpoint(const std::string& text);

/// Returns true if `host` is a loopback address (127.0.0.0/8, ::1 or
/// "localhost").
bool is_loopback(const std::string& host);

} // namespace mc
