#include "runtime/config.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <map>
#include <stdexcept>
#include <string_view>
#include <system_error>
#include <vector>

namespace mc {

namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;

// -- schema -------------------------------------------------------------------

struct section_schema {
  const char* name;
  std::vector<std::string_view> keys;
};

// Every section and key the loader accepts, in the order the error messages
// list them.
const std::vector<section_schema>& schema() {
  static const std::vector<section_schema> sections = {
    {"cluster",
     {"name", "node", "role", "listen", "primary", "registration-key", "heartbeat-interval",
      "failure-timeout", "reconnect-max-backoff", "request-timeout"}},
    {"admin", {"listen"}},
    {"storage", {"state-dir"}},
    {"replication", {"config-dir", "exclude", "exclude-suffix", "rescan-interval", "debounce"}},
    {"mail-changes", {"queue-limit"}},
    {"log", {"file", "level", "max-size", "max-files", "console"}},
    {"openssl", {"certificate", "key", "cafile", "passphrase"}},
  };
  return sections;
}

const section_schema* find_section(std::string_view name) {
  for (const auto& section : schema())
    if (name == section.name)
      return &section;
  return nullptr;
}

// Options whose values never appear in an error message.
bool is_secret(std::string_view option) {
  return option == "cluster.registration-key" || option == "openssl.passphrase";
}

// -- text helpers -------------------------------------------------------------

std::string_view trim(std::string_view text) {
  const char* blanks = " \t\r";
  auto first = text.find_first_not_of(blanks);
  if (first == std::string_view::npos)
    return {};
  auto last = text.find_last_not_of(blanks);
  return text.substr(first, last - first + 1);
}

std::string join(const std::vector<std::string_view>& words) {
  std::string result;
  for (auto word : words) {
    if (!result.empty())
      result += ", ";
    result += word;
  }
  return result;
}

// Levenshtein distance, used to suggest the intended name for a misspelt one.
size_t edit_distance(std::string_view lhs, std::string_view rhs) {
  std::vector<size_t> row(rhs.size() + 1);
  for (size_t j = 0; j < row.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= lhs.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= rhs.size(); ++j) {
      size_t substitution = diagonal + (lhs[i - 1] == rhs[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
    }
  }
  return row[rhs.size()];
}

// Returns "; did you mean 'x'?" for the closest candidate within two edits, or
// `otherwise` if none is that close.
std::string suggest(std::string_view name, const std::vector<std::string_view>& candidates,
                    const std::string& otherwise) {
  std::string_view best;
  size_t best_distance = 3;
  for (auto candidate : candidates) {
    auto distance = edit_distance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  if (best.empty())
    return otherwise;
  return "; did you mean '" + std::string{best} + "'?";
}

// Formats a duration the way a user would write it: "1s", "250ms".
std::string format_duration(duration value) {
  auto count = value.count();
  if (count != 0 && count % 1000 == 0)
    return std::to_string(count / 1000) + "s";
  return std::to_string(count) + "ms";
}

// Parses a non-negative decimal integer that fills all of `text`.
std::optional<uint64_t> parse_unsigned(std::string_view text) {
  if (text.empty() ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  uint64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error == std::errc::result_out_of_range)
    return std::numeric_limits<uint64_t>::max();
  if (error != std::errc{} || end != text.data() + text.size())
    return std::nullopt;
  return value;
}

// Parses an integer followed by ms, s or min. Values too large to represent
// saturate to duration::max() so that the range check reports them.
std::optional<duration> parse_duration(std::string_view text) {
  auto digits = text.find_first_not_of("0123456789");
  if (digits == 0 || digits == std::string_view::npos)
    return std::nullopt;
  auto unit = text.substr(digits);
  uint64_t factor = 0;
  if (unit == "ms")
    factor = 1;
  else if (unit == "s")
    factor = 1000;
  else if (unit == "min")
    factor = 60'000;
  else
    return std::nullopt;
  auto count = parse_unsigned(text.substr(0, digits));
  auto limit = static_cast<uint64_t>(duration::max().count()) / factor;
  if (*count > limit)
    return duration::max();
  return duration{static_cast<duration::rep>(*count * factor)};
}

// -- addresses ----------------------------------------------------------------

bool is_ipv4(const std::string& host) {
  in_addr address;
  return inet_pton(AF_INET, host.c_str(), &address) == 1;
}

bool is_ipv6(const std::string& host) {
  in6_addr address;
  return inet_pton(AF_INET6, host.c_str(), &address) == 1;
}

bool is_alphanumeric(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_label(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
    return false;
  return std::all_of(label.begin(), label.end(),
                     [](char c) { return is_alphanumeric(c) || c == '-'; });
}

// Accepts DNS names made of letters, digits and hyphens. A name whose last
// label is all digits is rejected because it is a mistyped IPv4 address such
// as 10.0.0 or 10.0.0.256.
bool is_host_name(std::string_view host) {
  if (host.empty() || host.size() > 253)
    return false;
  std::string_view last;
  while (!host.empty()) {
    auto dot = host.find('.');
    last = host.substr(0, dot);
    if (!is_label(last))
      return false;
    host = dot == std::string_view::npos ? std::string_view{} : host.substr(dot + 1);
    if (dot != std::string_view::npos && host.empty())
      return false;
  }
  return last.find_first_not_of("0123456789") != std::string_view::npos;
}

std::optional<uint16_t> parse_port(std::string_view text) {
  if (text.size() > 5)
    return std::nullopt;
  auto port = parse_unsigned(text);
  if (!port || *port == 0 || *port > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(*port);
}

// -- errors -------------------------------------------------------------------

// Aborts loading. load_node_config() catches it and returns what() as the
// error, which is already the complete message for the operator.
class config_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

std::string errno_text(int code) {
  return std::error_code{code, std::generic_category()}.message();
}

// -- syntax -------------------------------------------------------------------

// One `key = value` line.
struct entry {
  /// The option as "section.key".
  std::string option;
  /// The value with quotes and escapes removed.
  std::string value;
  bool quoted = false;
  size_t line = 0;
};

using entry_map = std::map<std::string, entry, std::less<>>;

// Splits the file into options, rejecting syntax errors, unknown sections and
// keys, and keys that appear twice.
class ini_parser {
public:
  explicit ini_parser(std::string file) : file_(std::move(file)) {}

  entry_map parse(std::istream& input) {
    std::string text;
    while (std::getline(input, text)) {
      ++line_;
      if (line_ == 1 && text.rfind("\xEF\xBB\xBF", 0) == 0)
        text.erase(0, 3); // Editors on some systems write a UTF-8 byte order mark.
      parse_line(trim(text));
    }
    if (input.bad())
      throw config_error{file_ + ": cannot read config file: read error after line " +
                         std::to_string(line_)};
    return std::move(entries_);
  }

private:
  std::string location() const { return file_ + ":" + std::to_string(line_) + ": "; }

  [[noreturn]] void fail(const std::string& message) const {
    throw config_error{location() + message};
  }

  [[noreturn]] void fail_syntax(const std::string& message) const {
    fail("syntax error: " + message);
  }

  void parse_line(std::string_view line) {
    if (line.empty() || line.front() == ';')
      return;
    if (line.front() == '#')
      fail_syntax("'#' does not start a comment in CAF's config format; use ';' for comments");
    if (line.front() == '[')
      parse_section(line);
    else
      parse_option(line);
  }

  void parse_section(std::string_view line) {
    auto close = line.find(']');
    if (close == std::string_view::npos)
      fail_syntax("missing ']' after the section name; write it as [section]");
    auto rest = trim(line.substr(close + 1));
    if (!rest.empty() && rest.front() != ';')
      fail_syntax("unexpected text after ']'; put comments after ';'");
    auto name = trim(line.substr(1, close - 1));
    if (name.empty())
      fail_syntax("empty section name; write it as [section]");
    section_ = find_section(name);
    if (section_ == nullptr)
      fail_unknown_section(name);
  }

  [[noreturn]] void fail_unknown_section(std::string_view name) const {
    std::vector<std::string_view> names;
    for (const auto& section : schema())
      names.emplace_back(section.name);
    fail("unknown section '[" + std::string{name} + "]' (known sections: " + join(names) + ")" +
         suggest(name, names, "; fix the name or remove the section"));
  }

  void parse_option(std::string_view line) {
    auto equals = line.find('=');
    if (equals == std::string_view::npos)
      fail_syntax("expected '[section]' or 'key = value'; start comments with ';'");
    auto key = trim(line.substr(0, equals));
    if (key.empty())
      fail_syntax("missing option name before '='");
    if (section_ == nullptr)
      fail("option '" + std::string{key} +
           "' appears before any [section] header; move it under its section");
    auto option = std::string{section_->name} + "." + std::string{key};
    if (std::find(section_->keys.begin(), section_->keys.end(), key) == section_->keys.end())
      fail("unknown option '" + option + "' (known options in [" + section_->name +
           "]: " + join(section_->keys) + ")" +
           suggest(key, section_->keys, "; fix the name or remove the line"));
    if (auto previous = entries_.find(option); previous != entries_.end())
      fail("option '" + option + "' is set twice (first on line " +
           std::to_string(previous->second.line) + "); keep only one of the two lines");
    auto& result = entries_[option];
    result.option = option;
    result.line = line_;
    parse_value(result, trim(line.substr(equals + 1)));
  }

  void parse_value(entry& result, std::string_view text) {
    if (text.empty() || text.front() == ';')
      fail_syntax("missing value for option '" + result.option +
                  "'; write 'key = value' and use \"\" for an empty string");
    if (text.front() == '"')
      parse_quoted(result, text);
    else
      parse_bare(result, text);
  }

  // Reads a double-quoted string with the escapes \" and \\.
  void parse_quoted(entry& result, std::string_view text) {
    result.quoted = true;
    for (size_t i = 1; i < text.size(); ++i) {
      char c = text[i];
      if (c == '"') {
        auto rest = trim(text.substr(i + 1));
        if (!rest.empty() && rest.front() != ';')
          fail_syntax("unexpected text after the closing quote of option '" + result.option +
                      "'; put comments after ';'");
        return;
      }
      if (c == '\\') {
        if (i + 1 == text.size() || (text[i + 1] != '"' && text[i + 1] != '\\'))
          fail_syntax("invalid escape sequence in the value of option '" + result.option +
                      "'; quoted strings allow only \\\" and \\\\");
        c = text[++i];
      }
      result.value += c;
    }
    fail_syntax("missing closing '\"' in the value of option '" + result.option + "'");
  }

  // Reads an unquoted word. A ';' ends it and starts a comment.
  void parse_bare(entry& result, std::string_view text) {
    auto value = trim(text.substr(0, text.find(';')));
    if (value.find('"') != std::string_view::npos)
      fail_syntax("unexpected '\"' inside the unquoted value of option '" + result.option +
                  "'; quote the whole value");
    for (size_t i = 1; i < value.size(); ++i)
      if (value[i] == '#' && (value[i - 1] == ' ' || value[i - 1] == '\t'))
        fail_syntax("'#' in the value of option '" + result.option +
                    "' does not start a comment in CAF's config format; use ';' for comments");
    result.value = std::string{value};
  }

  std::string file_;
  size_t line_ = 0;
  const section_schema* section_ = nullptr;
  entry_map entries_;
};

// -- validation ---------------------------------------------------------------

// Turns the parsed options into a node_config, checking types, ranges,
// required options and the rules that span several options.
class config_builder {
public:
  config_builder(std::string file, entry_map entries)
      : file_(std::move(file)), directory_(fs::path{file_}.parent_path()),
        entries_(std::move(entries)) {}

  node_config build() const {
    node_config config;
    config.file = file_;
    read_cluster(config);
    read_timeouts(config);
    read_admin(config);
    read_storage(config);
    read_replication(config);
    read_log(config);
    read_openssl(config);
    check_tls_files(config);
    return config;
  }

private:
  const entry* find(std::string_view option) const {
    auto i = entries_.find(option);
    return i == entries_.end() ? nullptr : &i->second;
  }

  // Returns the option or fails with "missing required option". `condition`
  // names the role that makes it required, if any.
  const entry& require(std::string_view option, const std::string& condition = "") const {
    if (auto found = find(option))
      return *found;
    auto dot = option.find('.');
    auto section = std::string{option.substr(0, dot)};
    auto key = std::string{option.substr(dot + 1)};
    throw config_error{file_ + ": missing required option '" + std::string{option} +
                       "' in section [" + section + "]" + condition + "; add a line '" + key +
                       " = ...' under [" + section + "]"};
  }

  // Fails with the standard message for an option whose value breaks `rule`.
  // `rule` is "<what the value must be>; <what to do>".
  [[noreturn]] void fail_value(const entry& option, const std::string& rule) const {
    auto displayed_value = is_secret(option.option) ? std::string{"<hidden>"} : option.value;
    throw config_error{file_ + ":" + std::to_string(option.line) + ": option '" + option.option +
                       "' has invalid value '" + displayed_value + "': " + rule};
  }

  // -- typed values --

  std::string read_name(const entry& option) const {
    const auto& value = option.value;
    bool valid =
      !value.empty() && value.size() <= 64 && std::all_of(value.begin(), value.end(), [](char c) {
        return is_alphanumeric(c) || c == '.' || c == '_' || c == '-';
      });
    if (!valid)
      fail_value(option, "must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-';"
                         " choose a name without spaces or other characters");
    return value;
  }

  node_role read_role(const entry& option) const {
    if (option.value == "primary")
      return node_role::primary;
    if (option.value == "secondary")
      return node_role::secondary;
    fail_value(option, "must be primary or secondary; set role = primary on exactly one node"
                       " of the cluster");
  }

  endpoint read_endpoint(const entry& option) const {
    auto address = parse_endpoint(option.value);
    if (!address)
      fail_value(option, "must be host:port, where host is an IPv4 address, an IPv6 address in"
                         " brackets or a host name, and port is 1 to 65535; write it as e.g."
                         " \"10.0.0.1:4701\" or \"[fd00::1]:4701\"");
    return *address;
  }

  std::string read_registration_key(const entry& option) const {
    const auto& value = option.value;
    bool printable =
      std::all_of(value.begin(), value.end(), [](char c) { return c > ' ' && c <= '~'; });
    if (value.size() < 16 || !printable) {
      auto rule =
        "must be at least 16 characters of printable ASCII without spaces (the value has " +
        std::to_string(value.size()) + " characters)";
      fail_value(option, rule + "; use a random string, e.g. the output of 'openssl rand -hex 16'");
    }
    return value;
  }

  duration read_duration(const entry& option, duration min, duration max) const {
    auto rule =
      "must be a duration between " + format_duration(min) + " and " + format_duration(max);
    if (option.quoted)
      fail_value(option, rule + "; remove the quotes, because a quoted value is a string");
    auto value = parse_duration(option.value);
    if (!value)
      fail_value(option, rule + "; write an integer followed by ms, s or min, e.g. 100ms");
    if (*value < min || *value > max)
      fail_value(option, rule + "; choose a value in that range");
    return *value;
  }

  // `what` is the rule's noun, e.g. "a size in bytes" or "an integer".
  uint64_t read_integer(const entry& option, uint64_t min, uint64_t max,
                        const std::string& what) const {
    auto rule =
      "must be " + what + " between " + std::to_string(min) + " and " + std::to_string(max);
    if (option.quoted)
      fail_value(option, rule + "; remove the quotes, because a quoted value is a string");
    auto text = std::string_view{option.value};
    bool negative = !text.empty() && text.front() == '-';
    auto value = parse_unsigned(negative ? text.substr(1) : text);
    if (!value)
      fail_value(option, rule + "; write digits only, without a unit");
    if (negative || *value < min || *value > max)
      fail_value(option, rule + "; choose a value in that range");
    return *value;
  }

  bool read_boolean(const entry& option) const {
    if (!option.quoted && option.value == "true")
      return true;
    if (!option.quoted && option.value == "false")
      return false;
    fail_value(option, "must be true or false; write one of them without quotes");
  }

  // Returns the path made absolute against the config file's directory.
  std::string read_path(const entry& option) const {
    if (option.value.empty())
      fail_value(option, "must be a path; give a file or directory path");
    if (option.value.front() == '~')
      fail_value(option, "must be a path, and '~' is not expanded; write the full path");
    fs::path path{option.value};
    if (path.is_relative())
      path = directory_ / path;
    path = path.lexically_normal();
    // "/var/lib/x/" and "/var/lib/x" are the same directory; store the latter.
    if (!path.has_filename() && path != path.root_path())
      path = path.parent_path();
    return path.string();
  }

  // -- sections --

  void read_cluster(node_config& config) const {
    config.cluster_name = read_name(require("cluster.name"));
    config.node_name = read_name(require("cluster.node"));
    config.role = read_role(require("cluster.role"));
    config.registration_key = read_registration_key(require("cluster.registration-key"));
    if (config.role == node_role::primary) {
      config.listen = read_endpoint(require("cluster.listen", " (required when role = primary)"));
      if (auto primary = find("cluster.primary"))
        fail_value(*primary, "not allowed when role = primary, because it names the primary"
                             " that a secondary joins; remove it or set role = secondary");
    } else {
      if (auto listen = find("cluster.listen"))
        config.listen = read_endpoint(*listen);
      config.primary =
        read_endpoint(require("cluster.primary", " (required when role = secondary)"));
    }
  }

  void read_timeouts(node_config& config) const {
    if (auto option = find("cluster.heartbeat-interval"))
      config.heartbeat_interval = read_duration(*option, 10ms, 10s);
    if (auto option = find("cluster.failure-timeout"))
      config.failure_timeout = read_duration(*option, 100ms, 60s);
    if (auto option = find("cluster.reconnect-max-backoff"))
      config.reconnect_max_backoff = read_duration(*option, 50ms, 30s);
    if (auto option = find("cluster.request-timeout"))
      config.request_timeout = read_duration(*option, 100ms, 60s);
    check_failure_timeout(config);
  }

  // With failure-timeout >= 3 x heartbeat-interval, a peer is marked offline
  // only after about three missed heartbeats, so one late or lost heartbeat
  // does not evict it.
  void check_failure_timeout(const node_config& config) const {
    auto min_timeout = 3 * config.heartbeat_interval;
    if (config.failure_timeout >= min_timeout)
      return;
    auto heartbeat = format_duration(config.heartbeat_interval);
    auto timeout = format_duration(config.failure_timeout);
    if (auto option = find("cluster.failure-timeout"))
      fail_value(*option, "must be at least 3 x cluster.heartbeat-interval (3 x " + heartbeat +
                            " = " + format_duration(min_timeout) +
                            "); raise failure-timeout or lower heartbeat-interval");
    // Only the heartbeat is in the file, so it is the value to report.
    fail_value(*find("cluster.heartbeat-interval"),
               "must be at most a third of cluster.failure-timeout (" + timeout +
                 ", the default); lower heartbeat-interval or set failure-timeout to at least " +
                 format_duration(min_timeout));
  }

  void read_admin(node_config& config) const {
    const auto& option = require("admin.listen");
    config.admin_listen = read_endpoint(option);
    if (!is_loopback(config.admin_listen.host))
      fail_value(option, "must be on a loopback address (127.0.0.0/8, [::1] or localhost), so"
                         " that the admin endpoint is not reachable from the network; use e.g."
                         " \"127.0.0.1:4801\"");
  }

  void read_storage(node_config& config) const {
    auto& option = require("storage.state-dir");
    config.state_dir = read_path(option);
    // A missing directory is created at startup; anything else in the way
    // would only fail then.
    std::error_code ec;
    if (fs::exists(config.state_dir, ec) && !fs::is_directory(config.state_dir, ec))
      fail_value(option, "must be a directory, but " + config.state_dir +
                           " is a file; point it to a directory");
  }

  void read_replication(node_config& config) const {
    if (auto option = find("replication.config-dir")) {
      config.config_dir = read_path(*option);
      std::error_code ec;
      if (fs::exists(config.config_dir, ec) && !fs::is_directory(config.config_dir, ec))
        fail_value(*option, "must be a directory, but " + config.config_dir +
                              " is a file; point it to the mail server's configuration folder");
      if (config.config_dir == config.state_dir)
        fail_value(*option, "must differ from storage.state-dir; give the node's state its own "
                            "folder");
      // On the primary the directory is the source of truth: a typo must not
      // replicate an empty tree over every secondary.
      if (config.role == node_role::primary && !fs::exists(config.config_dir, ec))
        fail_value(*option, "names " + config.config_dir +
                              ", which does not exist; on the primary this is the folder whose "
                              "files every secondary copies, so fix the path or create it");
      if (config.config_dir == "/")
        fail_value(*option, "must not be the root folder; point it to the mail server's "
                            "configuration folder");
    } else {
      config.config_dir = (fs::path{config.state_dir} / "config").string();
    }
    if (auto option = find("replication.exclude"))
      config.exclude = read_name_list(*option, true);
    if (auto option = find("replication.exclude-suffix"))
      config.exclude_suffix = read_name_list(*option, false);
    if (auto option = find("replication.rescan-interval"))
      config.rescan_interval = read_duration(*option, 1s, 24h);
    if (auto option = find("replication.debounce"))
      config.debounce = read_duration(*option, 0ms, 5s);
    if (auto option = find("mail-changes.queue-limit"))
      config.mail_queue_limit = read_integer(*option, 1, 10000000, "an integer");
  }

  // Reads a comma-separated list such as "Spam Filters, Old Rules". Names
  // may contain spaces; surrounding spaces are dropped.
  std::vector<std::string> read_name_list(const entry& option, bool top_level) const {
    std::vector<std::string> names;
    if (option.value.empty())
      return names; // "" is the documented default: no names

    size_t start = 0;
    while (start <= option.value.size()) {
      auto comma = option.value.find(',', start);
      if (comma == std::string::npos)
        comma = option.value.size();
      auto name = option.value.substr(start, comma - start);
      while (!name.empty() && name.front() == ' ')
        name.erase(name.begin());
      while (!name.empty() && name.back() == ' ')
        name.pop_back();
      if (name.empty())
        fail_value(option, "has an empty name in its comma-separated list; remove the extra "
                           "comma");
      if (top_level && (name.find('/') != std::string::npos || name == "." || name == ".."))
        fail_value(option, "lists '" + name +
                             "', but only names of top-level folders or files"
                             " of the configuration directory are allowed (no '/')");
      names.push_back(name);
      start = comma + 1;
    }
    return names;
  }

  void read_log(node_config& config) const {
    if (auto option = find("log.file"))
      config.log_file = read_path(*option);
    else
      config.log_file = (fs::path{config.state_dir} / "cluster.log").string();
    if (auto option = find("log.level"))
      config.log_level = read_log_level(*option);
    if (auto option = find("log.max-size"))
      config.log_max_size = read_integer(*option, 4096, 1024 * 1024 * 1024, "a size in bytes");
    if (auto option = find("log.max-files"))
      config.log_max_files = static_cast<uint32_t>(read_integer(*option, 1, 100, "an integer"));
    if (auto option = find("log.console"))
      config.log_console = read_boolean(*option);
  }

  std::string read_log_level(const entry& option) const {
    static const std::vector<std::string_view> levels = {"trace", "debug", "info", "warn", "error"};
    if (std::find(levels.begin(), levels.end(), option.value) == levels.end())
      fail_value(option, "must be one of " + join(levels) + "; use info unless you are debugging");
    return option.value;
  }

  void read_openssl(node_config& config) const {
    config.certificate = read_path(require("openssl.certificate"));
    config.key = read_path(require("openssl.key"));
    config.cafile = read_path(require("openssl.cafile"));
    if (auto option = find("openssl.passphrase"))
      config.passphrase = option->value;
  }

  // Runs last so that every mistake inside the file is reported before the
  // ones about files elsewhere on disk.
  void check_tls_files(const node_config& config) const {
    check_readable_file(*find("openssl.certificate"), config.certificate);
    check_readable_file(*find("openssl.key"), config.key);
    check_readable_file(*find("openssl.cafile"), config.cafile);
  }

  void check_readable_file(const entry& option, const std::string& path) const {
    std::error_code error;
    auto status = fs::status(path, error);
    if (status.type() == fs::file_type::not_found) {
      auto hint = fs::path{option.value}.is_relative()
                    ? " (relative paths are resolved against " + directory_.string() + ")"
                    : std::string{};
      fail_value(option, "file not found at " + path + "; check the path" + hint);
    }
    if (error)
      fail_value(option, "file not readable at " + path + ": " + error.message() +
                           "; give the node's user access to it");
    if (!fs::is_regular_file(status))
      fail_value(option, "not a regular file at " + path + "; point it to a PEM file");
    std::ifstream input{path};
    if (!input)
      fail_value(option, "file not readable at " + path + ": " + errno_text(errno) +
                           "; give the node's user read access to it");
  }

  std::string file_;
  fs::path directory_;
  entry_map entries_;
};

entry_map read_entries(const std::string& file) {
  std::error_code error;
  if (fs::is_directory(file, error))
    throw config_error{file + ": cannot read config file: " + errno_text(EISDIR)};
  std::ifstream input{file};
  if (!input)
    throw config_error{file + ": cannot read config file: " + errno_text(errno)};
  return ini_parser{file}.parse(input);
}

} // namespace

const char* to_string(node_role role) {
  return role == node_role::primary ? "primary" : "secondary";
}

std::string to_string(const endpoint& address) {
  auto port = std::to_string(address.port);
  if (address.host.find(':') != std::string::npos)
    return "[" + address.host + "]:" + port;
  return address.host + ":" + port;
}

std::optional<endpoint> parse_endpoint(const std::string& text) {
  endpoint result;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    // NOTE: inet_pton() rejects zone ids such as fe80::1%eth0, so link-local
    // addresses with a zone are not accepted.
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return std::nullopt;
    result.host = text.substr(1, close - 1);
    if (!is_ipv6(result.host))
      return std::nullopt;
    port = std::string_view{text}.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
      return std::nullopt;
    result.host = text.substr(0, colon);
    if (!is_ipv4(result.host) && !is_host_name(result.host))
      return std::nullopt;
    port = std::string_view{text}.substr(colon + 1);
  }
  auto number = parse_port(port);
  if (!number)
    return std::nullopt;
  result.port = *number;
  return result;
}

bool is_loopback(const std::string& host) {
  auto lower = host;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "localhost")
    return true;
  in_addr v4;
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1)
    return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1)
    return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

config_result load_node_config(const std::string& path) {
  config_result result;
  if (path.empty()) {
    result.error = "cannot read config file: the path is empty; pass the path of the role config";
    return result;
  }
  auto file = path;
  try {
    file = fs::absolute(path).lexically_normal().string();
    auto entries = read_entries(file);
    result.config = config_builder{file, std::move(entries)}.build();
  } catch (const config_error& error) {
    result.error = error.what();
  } catch (const std::exception& error) {
    // Filesystem errors and std::bad_alloc become the error message, so that
    // no std::exception escapes to the caller.
    result.error = file + ": cannot load config file: " + error.what();
  }
  return result;
}

} // namespace mc
