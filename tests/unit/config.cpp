#define CAF_SUITE config

#include "caf/test/unit_test.hpp"

#include "runtime/config.hpp"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// Comparator for CAF_CHECK_FUNC, which prints both strings when it fails.
struct contains_text {
  bool operator()(const std::string& text, const std::string& part) const {
    return text.find(part) != std::string::npos;
  }
};

struct lacks_text {
  bool operator()(const std::string& text, const std::string& part) const {
    return text.find(part) == std::string::npos;
  }
};

#define CHECK_CONTAINS(text, part) CAF_CHECK_FUNC(contains_text, text, std::string{part})
#define CHECK_LACKS(text, part) CAF_CHECK_FUNC(lacks_text, text, std::string{part})

// A primary config that sets every option, with relative paths.
const char* const full_primary = R"(; primary used by the config tests
[cluster]
name = "test-cluster"
node = mx1 ; a bare word is a string
role = primary
listen = "0.0.0.0:4701"
registration-key = "0123456789abcdef-primary"
heartbeat-interval = 50ms
failure-timeout = 1min
reconnect-max-backoff = 2s
request-timeout = 3s

[admin]
listen = "127.0.0.1:4801"

[storage]
state-dir = "state/"

[log]
file = "logs/../node.log"
level = debug
max-size = 65536
max-files = 3
console = false

[openssl]
certificate = "tls/node.pem"
key = tls/node.key
cafile = "tls/ca.pem"
passphrase = "pass \"word\" \\ end"
)";

// A secondary config with only the required options.
const char* const minimal_secondary = R"([cluster]
name = test-cluster
node = mx2
role = secondary
primary = "[fd00::1]:4701"
registration-key = "0123456789abcdef-secondary"

[admin]
listen = "[::1]:4802"

[storage]
state-dir = "/var/lib/mailcluster-test"

[openssl]
certificate = "tls/node.pem"
key = "tls/node.key"
cafile = "tls/ca.pem"
)";

// Returns `text` with the line `old_line` replaced by `new_line`, which may
// be empty or several lines.
std::string replace_line(const std::string& text, const std::string& old_line,
                         const std::string& new_line) {
  auto position = text.find(old_line + "\n");
  if (position == std::string::npos || (position > 0 && text[position - 1] != '\n'))
    throw std::logic_error{"test config has no line '" + old_line + "'"};
  return text.substr(0, position) + new_line + (new_line.empty() ? "" : "\n") +
         text.substr(position + old_line.size() + 1);
}

// Returns the 1-based number of `line` in `text`.
size_t line_number(const std::string& text, const std::string& line) {
  std::istringstream input{text};
  std::string current;
  for (size_t number = 1; std::getline(input, current); ++number)
    if (current == line)
      return number;
  throw std::logic_error{"test config has no line '" + line + "'"};
}

void write_file(const fs::path& path, const std::string& text) {
  std::ofstream output{path};
  output << text;
  if (!output)
    throw std::runtime_error{"cannot write " + path.string()};
}

// Creates a fresh temp directory with dummy TLS files for each test.
// NOTE: CAF 0.17 aborts the process when a CAF_REQUIRE fails, so the
// directory of that test is left behind in the temp directory.
struct fixture {
  fs::path dir;
  fs::path config_file;

  fixture() {
    auto pattern = (fs::temp_directory_path() / "mc-config-test-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error{"mkdtemp failed for " + pattern};
    dir = pattern;
    config_file = dir / "node.ini";
    // The loader only checks that the TLS files are readable, not their contents.
    fs::create_directory(dir / "tls");
    for (auto name : {"node.pem", "node.key", "ca.pem"})
      write_file(dir / "tls" / name, "dummy\n");
  }

  ~fixture() {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  mc::config_result load(const std::string& text) {
    write_file(config_file, text);
    return mc::load_node_config(config_file.string());
  }

  // Prefix of every error about `line` of the config.
  std::string at(const std::string& text, const std::string& line) const {
    return config_file.string() + ":" + std::to_string(line_number(text, line)) + ": ";
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(config_tests, fixture)

// -- valid configs ------------------------------------------------------------

CAF_TEST(full primary config) {
  auto result = load(full_primary);
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  const auto& config = *result.config;
  CAF_CHECK_EQUAL(config.file, config_file.string());
  CAF_CHECK_EQUAL(config.cluster_name, "test-cluster");
  CAF_CHECK_EQUAL(config.node_name, "mx1");
  CAF_CHECK(config.role == mc::node_role::primary);
  CAF_REQUIRE(config.listen);
  CAF_CHECK_EQUAL(config.listen->host, "0.0.0.0");
  CAF_CHECK_EQUAL(config.listen->port, 4701);
  CAF_CHECK(!config.primary);
  CAF_CHECK_EQUAL(config.registration_key, "0123456789abcdef-primary");
  CAF_CHECK(config.heartbeat_interval == 50ms);
  CAF_CHECK(config.failure_timeout == 60s);
  CAF_CHECK(config.reconnect_max_backoff == 2s);
  CAF_CHECK(config.request_timeout == 3s);
  CAF_CHECK_EQUAL(config.admin_listen.host, "127.0.0.1");
  CAF_CHECK_EQUAL(config.admin_listen.port, 4801);
  CAF_CHECK_EQUAL(config.state_dir, (dir / "state").string());
  CAF_CHECK_EQUAL(config.log_file, (dir / "node.log").string());
  CAF_CHECK_EQUAL(config.log_level, "debug");
  CAF_CHECK_EQUAL(config.log_max_size, 65536u);
  CAF_CHECK_EQUAL(config.log_max_files, 3u);
  CAF_CHECK_EQUAL(config.log_console, false);
  CAF_CHECK_EQUAL(config.certificate, (dir / "tls/node.pem").string());
  CAF_CHECK_EQUAL(config.key, (dir / "tls/node.key").string());
  CAF_CHECK_EQUAL(config.cafile, (dir / "tls/ca.pem").string());
  CAF_CHECK_EQUAL(config.passphrase, "pass \"word\" \\ end");
}

CAF_TEST(minimal secondary config gets defaults) {
  auto result = load(minimal_secondary);
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  const auto& config = *result.config;
  CAF_CHECK_EQUAL(config.node_name, "mx2");
  CAF_CHECK(config.role == mc::node_role::secondary);
  CAF_CHECK(!config.listen);
  CAF_REQUIRE(config.primary);
  CAF_CHECK_EQUAL(config.primary->host, "fd00::1");
  CAF_CHECK_EQUAL(config.primary->port, 4701);
  CAF_CHECK_EQUAL(config.admin_listen.host, "::1");
  CAF_CHECK_EQUAL(config.admin_listen.port, 4802);
  CAF_CHECK(config.heartbeat_interval == 200ms);
  CAF_CHECK(config.failure_timeout == 1s);
  CAF_CHECK(config.reconnect_max_backoff == 500ms);
  CAF_CHECK(config.request_timeout == 2s);
  CAF_CHECK_EQUAL(config.state_dir, "/var/lib/mailcluster-test");
  CAF_CHECK_EQUAL(config.log_file, "/var/lib/mailcluster-test/cluster.log");
  CAF_CHECK_EQUAL(config.log_level, "info");
  CAF_CHECK_EQUAL(config.log_max_size, 10485760u);
  CAF_CHECK_EQUAL(config.log_max_files, 5u);
  CAF_CHECK_EQUAL(config.log_console, true);
  CAF_CHECK_EQUAL(config.passphrase, "");
}

CAF_TEST(secondary may set listen) {
  auto text = replace_line(minimal_secondary, "role = secondary",
                           "role = secondary\nlisten = \"10.0.0.2:4701\"");
  auto result = load(text);
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  CAF_REQUIRE(result.config->listen);
  CAF_CHECK_EQUAL(mc::to_string(*result.config->listen), "10.0.0.2:4701");
}

CAF_TEST(relative paths resolve against config dir) {
  fs::create_directory(dir / "etc");
  auto text = replace_line(minimal_secondary, "state-dir = \"/var/lib/mailcluster-test\"",
                           "state-dir = ../var");
  text = replace_line(text, "certificate = \"tls/node.pem\"", "certificate = ../tls/node.pem");
  text = replace_line(text, "key = \"tls/node.key\"", "key = \"../tls/node.key\"");
  text = replace_line(text, "cafile = \"tls/ca.pem\"",
                      "cafile = \"" + (dir / "tls/ca.pem").string() + "\"");
  auto file = dir / "etc" / "node.ini";
  write_file(file, text);
  auto result = mc::load_node_config(file.string());
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  CAF_CHECK_EQUAL(result.config->file, file.string());
  CAF_CHECK_EQUAL(result.config->state_dir, (dir / "var").string());
  CAF_CHECK_EQUAL(result.config->log_file, (dir / "var/cluster.log").string());
  CAF_CHECK_EQUAL(result.config->certificate, (dir / "tls/node.pem").string());
  CAF_CHECK_EQUAL(result.config->key, (dir / "tls/node.key").string());
  CAF_CHECK_EQUAL(result.config->cafile, (dir / "tls/ca.pem").string());
}

CAF_TEST(comments and blanks are ignored) {
  auto text = replace_line(full_primary, "name = \"test-cluster\"",
                           "  ; indented comment\n\n\tname=\"test-cluster\";comment right after");
  text = replace_line(text, "[admin]", "[admin] ; comment after a header");
  auto result = load(text);
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  CAF_CHECK_EQUAL(result.config->cluster_name, "test-cluster");
}

// The examples must stay loadable. With their own TLS paths only the missing
// certificate fails, and with the TLS paths pointed at dummy files they load.
CAF_TEST(example configs load) {
  // CMake compiles with absolute source paths, so __FILE__ locates the repository.
  auto examples = fs::path{__FILE__}.parent_path().parent_path().parent_path() / "config";
  for (auto name : {"primary.ini", "secondary.ini"}) {
    auto path = examples / name;
    CAF_MESSAGE("example " << path.string());
    auto original = mc::load_node_config(path.string());
    CAF_CHECK(!original.config);
    CHECK_CONTAINS(original.error, path.string() + ":");
    CHECK_CONTAINS(original.error, "option 'openssl.certificate'");
    CHECK_CONTAINS(original.error, "file not found");
    std::ifstream input{path};
    CAF_REQUIRE(input);
    std::string text{std::istreambuf_iterator<char>{input}, {}};
    for (auto file : {"mx1.pem", "mx2.pem", "mx1.key", "mx2.key", "ca.pem"}) {
      auto position = text.find(std::string{"/etc/mailcluster/tls/"} + file);
      if (position != std::string::npos)
        text.replace(position, std::string{"/etc/mailcluster/tls/"}.size(), "tls/");
    }
    for (auto file : {"mx1.pem", "mx2.pem", "mx1.key", "mx2.key"})
      write_file(dir / "tls" / file, "dummy\n");
    auto result = load(text);
    CAF_CHECK_EQUAL(result.error, "");
    CAF_REQUIRE(result.config);
    CAF_CHECK_EQUAL(result.config->cluster_name, "example");
    CAF_CHECK_EQUAL(result.config->admin_listen.port, 4801);
    CAF_CHECK_EQUAL(result.config->state_dir, "/var/lib/mailcluster");
  }
}

// -- syntax -------------------------------------------------------------------

CAF_TEST(line without equals sign) {
  auto line = std::string{"heartbeat-interval 100ms"};
  auto text = replace_line(full_primary, "heartbeat-interval = 50ms", line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line) + "syntax error");
  CHECK_CONTAINS(result.error, "'key = value'");
}

CAF_TEST(hash comment is a syntax error) {
  auto line = std::string{"# the cluster name"};
  auto text = replace_line(full_primary, "[cluster]", "[cluster]\n" + line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line) + "syntax error");
  CHECK_CONTAINS(result.error, "use ';' for comments");
}

CAF_TEST(hash after bare value is a syntax error) {
  auto line = std::string{"level = debug # more output"};
  auto text = replace_line(full_primary, "level = debug", line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line) + "syntax error");
  CHECK_CONTAINS(result.error, "use ';' for comments");
}

CAF_TEST(quoted string syntax errors) {
  struct bad_line {
    std::string line;
    std::string reason;
  };
  std::vector<bad_line> cases = {
    {"name = \"test-cluster", "missing closing '\"'"},
    {"name = \"test\\n-cluster\"", "invalid escape sequence"},
    {"name = \"test-cluster\" extra", "unexpected text after the closing quote"},
    {"name = test-\"cluster\"", "unexpected '\"'"},
    {"name =", "missing value"},
    {"name = ; no value", "missing value"},
    {"= test-cluster", "missing option name"},
    {"[cluster", "missing ']'"},
    {"[cluster] name = x", "unexpected text after ']'"},
    {"[ ]", "empty section name"},
  };
  for (const auto& bad : cases) {
    auto text = replace_line(full_primary, "name = \"test-cluster\"", bad.line);
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, bad.line) + "syntax error: " + bad.reason);
  }
}

CAF_TEST(option before any section) {
  auto line = std::string{"name = \"test-cluster\""};
  auto text = line + "\n" + replace_line(full_primary, line, "");
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line));
  CHECK_CONTAINS(result.error, "option 'name' appears before any [section] header");
}

CAF_TEST(unknown section) {
  auto line = std::string{"[clutser]"};
  auto text = replace_line(full_primary, "[cluster]", line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line));
  CHECK_CONTAINS(result.error, "unknown section '[clutser]'");
  CHECK_CONTAINS(
    result.error,
    "(known sections: cluster, admin, storage, replication, mail-changes, log, openssl)");
  CHECK_CONTAINS(result.error, "did you mean 'cluster'?");
}

CAF_TEST(section names are case sensitive) {
  auto line = std::string{"[Cluster]"};
  auto text = replace_line(full_primary, "[cluster]", line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line) + "unknown section '[Cluster]'");
}

CAF_TEST(unknown option lists known keys) {
  auto line = std::string{"hearbeat-interval = 50ms"};
  auto text = replace_line(full_primary, "heartbeat-interval = 50ms", line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line));
  CHECK_CONTAINS(result.error, "unknown option 'cluster.hearbeat-interval'");
  CHECK_CONTAINS(result.error,
                 "(known options in [cluster]: name, node, role, listen, primary, "
                 "registration-key, heartbeat-interval, failure-timeout, reconnect-max-backoff, "
                 "request-timeout)");
  CHECK_CONTAINS(result.error, "did you mean 'heartbeat-interval'?");
}

CAF_TEST(unknown option in other section) {
  auto line = std::string{"rotate = daily"};
  auto text = replace_line(full_primary, "level = debug", "level = debug\n" + line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line) + "unknown option 'log.rotate'");
  CHECK_CONTAINS(result.error,
                 "(known options in [log]: file, level, max-size, max-files, console)");
  CHECK_CONTAINS(result.error, "fix the name or remove the line");
}

CAF_TEST(duplicate option) {
  auto first = std::string{"node = mx1 ; a bare word is a string"};
  auto line = std::string{"node = mx3"};
  auto text = replace_line(full_primary, "role = primary", "role = primary\n" + line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line));
  CHECK_CONTAINS(result.error, "option 'cluster.node' is set twice");
  CHECK_CONTAINS(result.error, "(first on line " + std::to_string(line_number(text, first)) + ")");
}

CAF_TEST(duplicate option in repeated section) {
  auto line = std::string{"listen = \"127.0.0.1:4802\""};
  auto text = std::string{full_primary} + "\n[admin]\n" + line + "\n";
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line) + "option 'admin.listen' is set twice");
}

// -- required options ---------------------------------------------------------

CAF_TEST(missing required options) {
  struct required {
    std::string line;
    std::string option;
    std::string section;
  };
  std::vector<required> cases = {
    {"name = \"test-cluster\"", "cluster.name", "cluster"},
    {"node = mx1 ; a bare word is a string", "cluster.node", "cluster"},
    {"role = primary", "cluster.role", "cluster"},
    {"registration-key = \"0123456789abcdef-primary\"", "cluster.registration-key", "cluster"},
    {"listen = \"127.0.0.1:4801\"", "admin.listen", "admin"},
    {"state-dir = \"state/\"", "storage.state-dir", "storage"},
    {"certificate = \"tls/node.pem\"", "openssl.certificate", "openssl"},
    {"key = tls/node.key", "openssl.key", "openssl"},
    {"cafile = \"tls/ca.pem\"", "openssl.cafile", "openssl"},
  };
  for (const auto& missing : cases) {
    auto result = load(replace_line(full_primary, missing.line, ""));
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, config_file.string() + ": missing required option '" +
                                   missing.option + "' in section [" + missing.section + "]");
  }
}

CAF_TEST(primary requires listen) {
  auto result = load(replace_line(full_primary, "listen = \"0.0.0.0:4701\"", ""));
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, config_file.string() +
                                 ": missing required option 'cluster.listen' in section"
                                 " [cluster] (required when role = primary)");
}

CAF_TEST(secondary requires primary) {
  auto result = load(replace_line(minimal_secondary, "primary = \"[fd00::1]:4701\"", ""));
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, config_file.string() +
                                 ": missing required option 'cluster.primary' in section"
                                 " [cluster] (required when role = secondary)");
}

CAF_TEST(primary option rejected on primary) {
  auto line = std::string{"primary = \"10.0.0.9:4701\""};
  auto text = replace_line(full_primary, "role = primary", "role = primary\n" + line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line));
  CHECK_CONTAINS(result.error, "option 'cluster.primary' has invalid value '10.0.0.9:4701'");
  CHECK_CONTAINS(result.error, "not allowed when role = primary");
}

// -- values -------------------------------------------------------------------

// One option line replaced in full_primary, and the text the error must show.
struct bad_value {
  std::string old_line;
  std::string new_line;
  std::string option;
  std::string value;
  std::string rule;
};

CAF_TEST(wrong value types) {
  std::vector<bad_value> cases = {
    {"heartbeat-interval = 50ms", "heartbeat-interval = fast", "cluster.heartbeat-interval", "fast",
     "must be a duration between 10ms and 10s"},
    {"heartbeat-interval = 50ms", "heartbeat-interval = \"50ms\"", "cluster.heartbeat-interval",
     "50ms", "remove the quotes"},
    {"heartbeat-interval = 50ms", "heartbeat-interval = 50", "cluster.heartbeat-interval", "50",
     "followed by ms, s or min"},
    {"heartbeat-interval = 50ms", "heartbeat-interval = 1h", "cluster.heartbeat-interval", "1h",
     "followed by ms, s or min"},
    {"request-timeout = 3s", "request-timeout = 1.5s", "cluster.request-timeout", "1.5s",
     "must be a duration between 100ms and 60s"},
    {"max-size = 65536", "max-size = big", "log.max-size", "big",
     "must be a size in bytes between 4096 and 1073741824"},
    {"max-size = 65536", "max-size = 64KiB", "log.max-size", "64KiB", "write digits only"},
    {"max-files = 3", "max-files = \"3\"", "log.max-files", "3", "remove the quotes"},
    {"max-files = 3", "max-files = three", "log.max-files", "three",
     "must be an integer between 1 and 100"},
    {"console = false", "console = yes", "log.console", "yes", "must be true or false"},
    {"console = false", "console = \"true\"", "log.console", "true", "without quotes"},
    {"console = false", "console = False", "log.console", "False", "must be true or false"},
  };
  for (const auto& bad : cases) {
    auto text = replace_line(full_primary, bad.old_line, bad.new_line);
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, bad.new_line) + "option '" + bad.option +
                                   "' has invalid value '" + bad.value + "': ");
    CHECK_CONTAINS(result.error, bad.rule);
  }
}

CAF_TEST(values out of range) {
  std::vector<bad_value> cases = {
    {"heartbeat-interval = 50ms", "heartbeat-interval = 5ms", "cluster.heartbeat-interval", "5ms",
     "must be a duration between 10ms and 10s"},
    {"heartbeat-interval = 50ms", "heartbeat-interval = 11s", "cluster.heartbeat-interval", "11s",
     "must be a duration between 10ms and 10s"},
    {"failure-timeout = 1min", "failure-timeout = 61s", "cluster.failure-timeout", "61s",
     "must be a duration between 100ms and 60s"},
    {"failure-timeout = 1min", "failure-timeout = 2min", "cluster.failure-timeout", "2min",
     "must be a duration between 100ms and 60s"},
    {"reconnect-max-backoff = 2s", "reconnect-max-backoff = 49ms", "cluster.reconnect-max-backoff",
     "49ms", "must be a duration between 50ms and 30s"},
    {"reconnect-max-backoff = 2s", "reconnect-max-backoff = 31s", "cluster.reconnect-max-backoff",
     "31s", "must be a duration between 50ms and 30s"},
    {"request-timeout = 3s", "request-timeout = 0ms", "cluster.request-timeout", "0ms",
     "must be a duration between 100ms and 60s"},
    {"request-timeout = 3s", "request-timeout = 99999999999999999999999ms",
     "cluster.request-timeout", "99999999999999999999999ms",
     "must be a duration between 100ms and 60s"},
    {"max-size = 65536", "max-size = 4095", "log.max-size", "4095",
     "must be a size in bytes between 4096 and 1073741824"},
    {"max-size = 65536", "max-size = 1073741825", "log.max-size", "1073741825",
     "must be a size in bytes between 4096 and 1073741824"},
    {"max-files = 3", "max-files = 0", "log.max-files", "0",
     "must be an integer between 1 and 100"},
    {"max-files = 3", "max-files = 101", "log.max-files", "101",
     "must be an integer between 1 and 100"},
    {"max-files = 3", "max-files = -1", "log.max-files", "-1",
     "must be an integer between 1 and 100"},
  };
  for (const auto& bad : cases) {
    auto text = replace_line(full_primary, bad.old_line, bad.new_line);
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, bad.new_line) + "option '" + bad.option +
                                   "' has invalid value '" + bad.value + "': " + bad.rule);
  }
}

CAF_TEST(invalid strings) {
  std::vector<bad_value> cases = {
    {"name = \"test-cluster\"", "name = \"test cluster\"", "cluster.name", "test cluster",
     "must be 1 to 64 characters"},
    {"name = \"test-cluster\"", "name = \"\"", "cluster.name", "", "must be 1 to 64 characters"},
    {"name = \"test-cluster\"", "name = " + std::string(65, 'a'), "cluster.name",
     std::string(65, 'a'), "must be 1 to 64 characters"},
    {"node = mx1 ; a bare word is a string", "node = mx/1", "cluster.node", "mx/1",
     "must be 1 to 64 characters"},
    {"role = primary", "role = master", "cluster.role", "master", "must be primary or secondary"},
    {"role = primary", "role = Primary", "cluster.role", "Primary", "must be primary or secondary"},
    {"level = debug", "level = verbose", "log.level", "verbose",
     "must be one of trace, debug, info, warn, error"},
    {"state-dir = \"state/\"", "state-dir = \"\"", "storage.state-dir", "", "must be a path"},
    {"state-dir = \"state/\"", "state-dir = ~/state", "storage.state-dir", "~/state",
     "must be a path, and '~' is not expanded"},
  };
  for (const auto& bad : cases) {
    auto text = replace_line(full_primary, bad.old_line, bad.new_line);
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, bad.new_line) + "option '" + bad.option +
                                   "' has invalid value '" + bad.value + "': " + bad.rule);
  }
}

CAF_TEST(longest valid name) {
  auto text =
    replace_line(full_primary, "name = \"test-cluster\"", "name = " + std::string(64, 'a'));
  auto result = load(text);
  CAF_CHECK_EQUAL(result.error, "");
}

CAF_TEST(failure timeout below three heartbeats) {
  auto line = std::string{"failure-timeout = 500ms"};
  auto text = replace_line(full_primary, "heartbeat-interval = 50ms", "heartbeat-interval = 200ms");
  text = replace_line(text, "failure-timeout = 1min", line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error,
                 at(text, line) + "option 'cluster.failure-timeout' has invalid value '500ms'");
  CHECK_CONTAINS(result.error, "must be at least 3 x cluster.heartbeat-interval");
  CHECK_CONTAINS(result.error, "(3 x 200ms = 600ms)");
}

CAF_TEST(failure timeout of exactly three heartbeats) {
  auto text = replace_line(full_primary, "heartbeat-interval = 50ms", "heartbeat-interval = 200ms");
  text = replace_line(text, "failure-timeout = 1min", "failure-timeout = 600ms");
  auto result = load(text);
  CAF_CHECK_EQUAL(result.error, "");
}

CAF_TEST(heartbeat too slow for default failure timeout) {
  auto line = std::string{"heartbeat-interval = 500ms"};
  auto text = replace_line(full_primary, "heartbeat-interval = 50ms", line);
  text = replace_line(text, "failure-timeout = 1min", "");
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error,
                 at(text, line) + "option 'cluster.heartbeat-interval' has invalid value '500ms'");
  CHECK_CONTAINS(result.error, "cluster.failure-timeout (1s, the default)");
  CHECK_CONTAINS(result.error, "at least 1500ms");
}

// -- addresses ----------------------------------------------------------------

CAF_TEST(invalid cluster addresses) {
  std::vector<std::string> addresses = {
    "127.0.0.1",       ":4701",         "mx1.example.com:", "mx1:0",           "mx1:65536",
    "mx1:http",        "mx1:-1",        "mx1:+80",          "10.0.0.256:4701", "10.0.0:4701",
    "010.0.0.1:4701",  "::1:4701",      "[::1]4701",        "[::1]:",          "[zz::1]:4701",
    "[10.0.0.1]:4701", "mx 1:4701",     "-mx1:4701",        "mx1-:4701",       "mx1..example:4701",
    "mx1.:4701",       "mx1:4701:4702", "mx_1:4701",        "[::1:4701",
  };
  for (const auto& address : addresses) {
    auto line = "listen = \"" + address + "\"";
    auto text = replace_line(full_primary, "listen = \"0.0.0.0:4701\"", line);
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, line) + "option 'cluster.listen' has invalid value '" +
                                   address + "': must be host:port");
  }
}

CAF_TEST(valid cluster addresses) {
  std::vector<std::string> addresses = {
    "10.0.0.1:4701",         "[fd00::1]:4701", "[::]:1",
    "mx1.example.com:65535", "mx1:4701",       "[::ffff:10.0.0.1]:4701",
  };
  for (const auto& address : addresses) {
    auto text =
      replace_line(full_primary, "listen = \"0.0.0.0:4701\"", "listen = \"" + address + "\"");
    auto result = load(text);
    CAF_CHECK_EQUAL(result.error, "");
    CAF_REQUIRE(result.config);
    CAF_CHECK_EQUAL(mc::to_string(*result.config->listen), address);
  }
}

CAF_TEST(admin listen must be loopback) {
  std::vector<std::string> addresses = {
    "10.0.0.1:4801",  "0.0.0.0:4801",         "[::]:4801",
    "[fd00::1]:4801", "mx1.example.com:4801", "128.0.0.1:4801",
  };
  for (const auto& address : addresses) {
    auto line = "listen = \"" + address + "\"";
    auto text = replace_line(full_primary, "listen = \"127.0.0.1:4801\"", line);
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, line) + "option 'admin.listen' has invalid value '" +
                                   address + "': must be on a loopback address");
  }
}

CAF_TEST(admin listen accepts loopback) {
  for (auto address : {"127.0.0.1:4801", "127.1.2.3:4801", "[::1]:4801", "localhost:4801"}) {
    auto text = replace_line(full_primary, "listen = \"127.0.0.1:4801\"",
                             "listen = \"" + std::string{address} + "\"");
    auto result = load(text);
    CAF_CHECK_EQUAL(result.error, "");
  }
}

CAF_TEST(parse endpoint) {
  auto v4 = mc::parse_endpoint("192.0.2.7:25");
  CAF_REQUIRE(v4);
  CAF_CHECK_EQUAL(v4->host, "192.0.2.7");
  CAF_CHECK_EQUAL(v4->port, 25);
  auto v6 = mc::parse_endpoint("[2001:db8::7]:65535");
  CAF_REQUIRE(v6);
  CAF_CHECK_EQUAL(v6->host, "2001:db8::7");
  CAF_CHECK_EQUAL(v6->port, 65535);
  CAF_CHECK_EQUAL(mc::to_string(*v6), "[2001:db8::7]:65535");
  auto name = mc::parse_endpoint("Mail-1.example.org:1");
  CAF_REQUIRE(name);
  CAF_CHECK_EQUAL(name->host, "Mail-1.example.org");
  CAF_CHECK(!mc::parse_endpoint(""));
  CAF_CHECK(!mc::parse_endpoint("[]:1"));
  CAF_CHECK(!mc::parse_endpoint("host:00000001"));
}

CAF_TEST(loopback hosts) {
  CAF_CHECK(mc::is_loopback("127.0.0.1"));
  CAF_CHECK(mc::is_loopback("127.255.255.254"));
  CAF_CHECK(mc::is_loopback("::1"));
  CAF_CHECK(mc::is_loopback("localhost"));
  CAF_CHECK(mc::is_loopback("LocalHost"));
  CAF_CHECK(!mc::is_loopback("126.0.0.1"));
  CAF_CHECK(!mc::is_loopback("0.0.0.0"));
  CAF_CHECK(!mc::is_loopback("::"));
  CAF_CHECK(!mc::is_loopback("localhost.example.com"));
  CAF_CHECK(!mc::is_loopback("127.0.0.1.example.com"));
  CAF_CHECK(!mc::is_loopback(""));
}

CAF_TEST(role names) {
  CAF_CHECK_EQUAL(std::string{mc::to_string(mc::node_role::primary)}, "primary");
  CAF_CHECK_EQUAL(std::string{mc::to_string(mc::node_role::secondary)}, "secondary");
}

CAF_TEST(state dir that is a file) {
  std::ofstream((dir / "state").string()) << "not a directory";
  auto result = load(full_primary);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(full_primary, "state-dir = \"state/\"") +
                                 "option 'storage.state-dir' has invalid value 'state/'");
  CHECK_CONTAINS(result.error, "must be a directory");
}

// -- replication --------------------------------------------------------------

// Returns `text` with `lines` (each with its newline) added as a new
// `section` in front of [log].
std::string with_section(const std::string& text, const std::string& section,
                         const std::string& lines) {
  return replace_line(text, "[log]", "[" + section + "]\n" + lines + "\n[log]");
}

std::string with_replication(const std::string& text, const std::string& lines) {
  return with_section(text, "replication", lines);
}

// One option line added to full_primary in its own section, and the text
// the error must show.
struct bad_section_value {
  std::string section;
  std::string line;
  std::string option;
  std::string value;
  std::string rule;
};

CAF_TEST(replication defaults) {
  auto result = load(full_primary);
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  const auto& config = *result.config;
  CAF_CHECK_EQUAL(config.config_dir, (dir / "state/config").string());
  CAF_CHECK(config.exclude.empty());
  CAF_CHECK(config.exclude_suffix.empty());
  CAF_CHECK(config.rescan_interval == 60s);
  CAF_CHECK(config.debounce == 10ms);
  CAF_CHECK_EQUAL(config.mail_queue_limit, 10000u);
  auto secondary = load(minimal_secondary);
  CAF_REQUIRE(secondary.config);
  CAF_CHECK_EQUAL(secondary.config->config_dir, "/var/lib/mailcluster-test/config");
}

CAF_TEST(replication options are read) {
  auto text = with_replication(full_primary, "config-dir = \"mail conf/\"\n"
                                             "exclude = Spam Filters , Old Rules,Archive 2\n"
                                             "exclude-suffix = \".bak, .orig ,~\"\n"
                                             "rescan-interval = 5min\n"
                                             "debounce = 0ms\n");
  text = with_section(text, "mail-changes", "queue-limit = 500\n");
  // On the primary the configuration directory must exist.
  fs::create_directory(dir / "mail conf");
  auto result = load(text);
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  const auto& config = *result.config;
  CAF_CHECK_EQUAL(config.config_dir, (dir / "mail conf").string());
  CAF_CHECK_EQUAL(config.exclude,
                  std::vector<std::string>({"Spam Filters", "Old Rules", "Archive 2"}));
  CAF_CHECK_EQUAL(config.exclude_suffix, std::vector<std::string>({".bak", ".orig", "~"}));
  CAF_CHECK(config.rescan_interval == 300s);
  CAF_CHECK(config.debounce == 0ms);
  CAF_CHECK_EQUAL(config.mail_queue_limit, 500u);
}

CAF_TEST(missing config dir on the primary) {
  auto text = with_replication(full_primary, "config-dir = \"no such dir\"\n");
  auto result = load(text);
  CAF_CHECK(!result.config);
  CAF_CHECK(result.error.find("option 'replication.config-dir'") != std::string::npos);
  CAF_CHECK(result.error.find("which does not exist") != std::string::npos);
  CAF_CHECK(result.error.find("fix the path or create it") != std::string::npos);
}

CAF_TEST(empty exclusion list is the default) {
  auto result = load(with_replication(full_primary, "exclude = \"\"\nexclude-suffix = \"\"\n"));
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  CAF_CHECK(result.config->exclude.empty());
  CAF_CHECK(result.config->exclude_suffix.empty());
}

CAF_TEST(config dir resolves against config file) {
  fs::create_directory(dir / "etc");
  auto file = dir / "etc" / "node.ini";
  auto text = replace_line(minimal_secondary, "[storage]",
                           "[replication]\nconfig-dir = ../mail/conf\n\n[storage]");
  text = replace_line(text, "certificate = \"tls/node.pem\"", "certificate = ../tls/node.pem");
  text = replace_line(text, "key = \"tls/node.key\"", "key = ../tls/node.key");
  text = replace_line(text, "cafile = \"tls/ca.pem\"", "cafile = ../tls/ca.pem");
  write_file(file, text);
  auto result = mc::load_node_config(file.string());
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  CAF_CHECK_EQUAL(result.config->config_dir, (dir / "mail/conf").string());
}

CAF_TEST(absolute config dir is kept) {
  // A secondary creates a missing directory, so the path need not exist.
  auto text = replace_line(minimal_secondary, "[storage]",
                           "[replication]\nconfig-dir = /etc/mail server/conf\n\n[storage]");
  auto result = load(text);
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  CAF_CHECK_EQUAL(result.config->config_dir, "/etc/mail server/conf");
}

CAF_TEST(config dir that is a file) {
  write_file(dir / "conf", "not a directory");
  auto line = std::string{"config-dir = conf"};
  auto text = with_replication(full_primary, line + "\n");
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error,
                 at(text, line) + "option 'replication.config-dir' has invalid value 'conf': ");
  CHECK_CONTAINS(result.error,
                 "must be a directory, but " + (dir / "conf").string() + " is a file");
}

CAF_TEST(config dir equal to state dir) {
  // full_primary sets state-dir = "state/", relative to the config file.
  for (auto value : {std::string{"state"}, std::string{"state/"}, std::string{"./state"},
                     std::string{"x/../state/"}, (dir / "state").string()}) {
    CAF_MESSAGE("config-dir = " << value);
    auto line = "config-dir = \"" + value + "\"";
    auto text = with_replication(full_primary, line + "\n");
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, line) +
                                   "option 'replication.config-dir' has invalid "
                                   "value '" +
                                   value + "': must differ from storage.state-dir");
  }
}

CAF_TEST(invalid exclusion lists) {
  std::vector<bad_section_value> cases = {
    {"replication", "exclude = \"a,,b\"", "replication.exclude", "a,,b", "has an empty name"},
    {"replication", "exclude = \"a, ,b\"", "replication.exclude", "a, ,b", "has an empty name"},
    {"replication", "exclude = \"a,\"", "replication.exclude", "a,", "has an empty name"},
    {"replication", "exclude = \",a\"", "replication.exclude", ",a", "has an empty name"},
    {"replication", "exclude = a/b", "replication.exclude", "a/b",
     "lists 'a/b', but only names of top-level"},
    {"replication", "exclude = \"Users, Spam/Old\"", "replication.exclude", "Users, Spam/Old",
     "lists 'Spam/Old'"},
    {"replication", "exclude = ..", "replication.exclude", "..", "lists '..'"},
    {"replication", "exclude-suffix = \".bak,,.orig\"", "replication.exclude-suffix", ".bak,,.orig",
     "has an empty name"},
  };
  for (const auto& bad : cases) {
    CAF_MESSAGE(bad.line);
    auto text = with_section(full_primary, bad.section, bad.line + "\n");
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, bad.line) + "option '" + bad.option +
                                   "' has invalid value '" + bad.value + "': " + bad.rule);
  }
}

CAF_TEST(replication values out of range) {
  const std::string rescan_rule = "must be a duration between 1s and 86400s";
  const std::string debounce_rule = "must be a duration between 0ms and 5s";
  const std::string limit_rule = "must be an integer between 1 and 10000000";
  std::vector<bad_section_value> cases = {
    {"replication", "rescan-interval = 999ms", "replication.rescan-interval", "999ms", rescan_rule},
    {"replication", "rescan-interval = 0s", "replication.rescan-interval", "0s", rescan_rule},
    {"replication", "rescan-interval = 86401s", "replication.rescan-interval", "86401s",
     rescan_rule},
    {"replication", "rescan-interval = 1441min", "replication.rescan-interval", "1441min",
     rescan_rule},
    {"replication", "rescan-interval = 1h", "replication.rescan-interval", "1h",
     rescan_rule + "; write an integer followed by ms, s or min"},
    {"replication", "rescan-interval = \"60s\"", "replication.rescan-interval", "60s",
     rescan_rule + "; remove the quotes"},
    {"replication", "debounce = 5001ms", "replication.debounce", "5001ms", debounce_rule},
    {"replication", "debounce = 1min", "replication.debounce", "1min", debounce_rule},
    {"replication", "debounce = 20", "replication.debounce", "20",
     debounce_rule + "; write an integer followed by ms, s or min"},
    {"mail-changes", "queue-limit = 0", "mail-changes.queue-limit", "0", limit_rule},
    {"mail-changes", "queue-limit = 10000001", "mail-changes.queue-limit", "10000001", limit_rule},
    {"mail-changes", "queue-limit = -1", "mail-changes.queue-limit", "-1", limit_rule},
    {"mail-changes", "queue-limit = 10k", "mail-changes.queue-limit", "10k",
     limit_rule + "; write digits only"},
  };
  for (const auto& bad : cases) {
    CAF_MESSAGE(bad.line);
    auto text = with_section(full_primary, bad.section, bad.line + "\n");
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, bad.line) + "option '" + bad.option +
                                   "' has invalid value '" + bad.value + "': " + bad.rule);
  }
}

CAF_TEST(replication range limits are accepted) {
  struct limit {
    std::string lines;
    mc::duration rescan_interval;
    mc::duration debounce;
  };
  std::vector<limit> cases = {
    {"rescan-interval = 1s\ndebounce = 0ms\n", 1s, 0ms},
    {"rescan-interval = 1440min\ndebounce = 5s\n", 24h, 5s},
    {"rescan-interval = 86400s\ndebounce = 5000ms\n", 24h, 5s},
  };
  for (const auto& item : cases) {
    CAF_MESSAGE(item.lines);
    auto result = load(with_replication(full_primary, item.lines));
    CAF_CHECK_EQUAL(result.error, "");
    CAF_REQUIRE(result.config);
    CAF_CHECK(result.config->rescan_interval == item.rescan_interval);
    CAF_CHECK(result.config->debounce == item.debounce);
  }
  for (auto limit : {uint64_t{1}, uint64_t{10000000}}) {
    auto result = load(
      with_section(full_primary, "mail-changes", "queue-limit = " + std::to_string(limit) + "\n"));
    CAF_CHECK_EQUAL(result.error, "");
    CAF_REQUIRE(result.config);
    CAF_CHECK_EQUAL(result.config->mail_queue_limit, limit);
  }
}

CAF_TEST(unknown replication option is suggested) {
  auto line = std::string{"exclude-suffixes = .bak"};
  auto text = with_replication(full_primary, line + "\n");
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line) + "unknown option 'replication.exclude-suffixes'");
  CHECK_CONTAINS(result.error, "did you mean 'exclude-suffix'?");
}

// -- TLS files ----------------------------------------------------------------

CAF_TEST(missing tls file) {
  fs::remove(dir / "tls/node.key");
  auto result = load(full_primary);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(full_primary, "key = tls/node.key") +
                                 "option 'openssl.key' has invalid value 'tls/node.key'");
  CHECK_CONTAINS(result.error, "file not found at " + (dir / "tls/node.key").string());
}

CAF_TEST(tls file is a directory) {
  fs::remove(dir / "tls/ca.pem");
  fs::create_directory(dir / "tls/ca.pem");
  auto result = load(full_primary);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(full_primary, "cafile = \"tls/ca.pem\"") +
                                 "option 'openssl.cafile' has invalid value 'tls/ca.pem'");
  CHECK_CONTAINS(result.error, "not a regular file");
}

CAF_TEST(unreadable tls file) {
  if (geteuid() == 0) {
    // Root reads files regardless of their mode bits.
    CAF_MESSAGE("skipped: running as root");
    return;
  }
  fs::permissions(dir / "tls/node.pem", fs::perms::none);
  auto result = load(full_primary);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(full_primary, "certificate = \"tls/node.pem\"") +
                                 "option 'openssl.certificate' has invalid value 'tls/node.pem'");
  CHECK_CONTAINS(result.error, "file not readable");
}

// -- secrets ------------------------------------------------------------------

CAF_TEST(registration key value is hidden) {
  std::vector<std::string> keys = {"short-secret", "has a space 0123456789",
                                   "tab\tseparated-key-1"};
  for (const auto& key : keys) {
    auto line = "registration-key = \"" + key + "\"";
    auto text = replace_line(full_primary, "registration-key = \"0123456789abcdef-primary\"", line);
    auto result = load(text);
    CAF_CHECK(!result.config);
    CHECK_CONTAINS(result.error, at(text, line) + "option 'cluster.registration-key' has invalid"
                                                  " value '<hidden>'");
    CHECK_CONTAINS(result.error, "at least 16 characters of printable ASCII without spaces");
    CHECK_LACKS(result.error, key);
  }
}

CAF_TEST(passphrase never in syntax errors) {
  auto line = std::string{"passphrase = \"s3cret-pass\\phrase"};
  auto text = replace_line(full_primary, "passphrase = \"pass \\\"word\\\" \\\\ end\"", line);
  auto result = load(text);
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, at(text, line) + "syntax error");
  CHECK_CONTAINS(result.error, "'openssl.passphrase'");
  CHECK_LACKS(result.error, "s3cret");
}

// -- config file --------------------------------------------------------------

CAF_TEST(missing config file) {
  auto file = (dir / "absent.ini").string();
  auto result = mc::load_node_config(file);
  CAF_CHECK(!result.config);
  CAF_CHECK_EQUAL(result.error, file + ": cannot read config file: No such file or directory");
}

CAF_TEST(config path is a directory) {
  auto result = mc::load_node_config(dir.string());
  CAF_CHECK(!result.config);
  CAF_CHECK_EQUAL(result.error, dir.string() + ": cannot read config file: Is a directory");
}

CAF_TEST(empty file lacks cluster name) {
  auto result = load("");
  CAF_CHECK(!result.config);
  CHECK_CONTAINS(result.error, config_file.string() +
                                 ": missing required option 'cluster.name' in section [cluster]");
}

CAF_TEST(relative config path is made absolute) {
  write_file(config_file, full_primary);
  auto cwd = fs::current_path();
  fs::current_path(dir);
  auto result = mc::load_node_config("node.ini");
  fs::current_path(cwd);
  CAF_CHECK_EQUAL(result.error, "");
  CAF_REQUIRE(result.config);
  CAF_CHECK_EQUAL(result.config->file, config_file.string());
  CAF_CHECK_EQUAL(result.config->state_dir, (dir / "state").string());
}

CAF_TEST_FIXTURE_SCOPE_END()
