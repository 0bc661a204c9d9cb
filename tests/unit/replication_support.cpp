#define CAF_SUITE replication_support
#include "caf/test/unit_test.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

#include <boost/filesystem.hpp>

#include "runtime/replication_support.hpp"
#include "runtime/tls.hpp"

using namespace mc;
namespace fs = boost::filesystem;

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

bool contains_text(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

struct fixture {
  fs::path dir;
  /// The managed directory below `dir`.
  fs::path root;

  fixture() {
    dir = fs::temp_directory_path() / fs::unique_path("mc-replication-%%%%-%%%%");
    root = dir / "config";
    fs::create_directories(root);
  }

  ~fixture() {
    boost::system::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  void write(const fs::path& path, const std::string& content) {
    fs::create_directories(path.parent_path());
    std::ofstream(path.string(), std::ios::binary) << content;
  }

  // A config whose state and log folders lie outside the managed directory.
  node_config config_outside() {
    node_config config;
    config.config_dir = root.string();
    config.state_dir = (dir / "state").string();
    config.log_file = (dir / "logs/cluster.log").string();
    return config;
  }

  // Opens `relative` below `root` with open_managed_file() and closes it
  // again. Returns the descriptor (-1 on failure) and sets `error` to errno.
  int open_and_close(const std::string& relative, int& error) {
    errno = 0;
    int fd = open_managed_file(root.string(), relative);
    error = errno;
    if (fd >= 0)
      ::close(fd);
    return fd;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(replication_support_tests, fixture)

// -- node_exclusions ----------------------------------------------------------

CAF_TEST(node exclusions add configured names) {
  auto config = config_outside();
  config.exclude = {"Spam Filters", "Old"};
  config.exclude_suffix = {".bak", " copy"};
  auto rules = node_exclusions(config);
  auto defaults = default_exclusions();
  for (auto& name : defaults.top_level)
    CAF_CHECK(contains(rules.top_level, name));
  CAF_CHECK(contains(rules.top_level, "Spam Filters"));
  CAF_CHECK(contains(rules.top_level, "Old"));
  CAF_CHECK(contains(rules.suffixes, ".lock"));
  CAF_CHECK(contains(rules.suffixes, ".lck"));
  CAF_CHECK(contains(rules.suffixes, ".bak"));
  CAF_CHECK(contains(rules.suffixes, " copy"));
  CAF_CHECK(is_excluded(rules, root.string(), "Spam Filters/rule"));
  CAF_CHECK(is_excluded(rules, root.string(), "main.conf.bak"));
  CAF_CHECK(is_excluded(rules, root.string(), "sub/list copy"));
  CAF_CHECK(!is_excluded(rules, root.string(), "Spam"));
  CAF_CHECK(!is_excluded(rules, root.string(), "main.conf"));
}

CAF_TEST(state and log folders outside the config dir make no rule) {
  // A rule for a folder that contains the managed directory (the default
  // config-dir is <state-dir>/config) would exclude every file.
  auto config = config_outside();
  auto rules = node_exclusions(config);
  CAF_CHECK(!contains(rules.absolute, (dir / "state").string()));
  CAF_CHECK(!contains(rules.absolute, (dir / "logs").string()));
  config.state_dir = dir.string();
  config.config_dir = (dir / "config").string();
  rules = node_exclusions(config);
  CAF_CHECK(!is_excluded(rules, config.config_dir, "main.conf"));
}

CAF_TEST(state folder inside config dir is excluded) {
  auto config = config_outside();
  config.state_dir = (root / "state").string();
  auto rules = node_exclusions(config);
  CAF_CHECK(is_excluded(rules, root.string(), "state"));
  CAF_CHECK(is_excluded(rules, root.string(), "state/registered-servers.json"));
  CAF_CHECK(is_excluded(rules, root.string(), "state/replication/file-list"));
  CAF_CHECK(!is_excluded(rules, root.string(), "state.conf"));
}

CAF_TEST(state folder is skipped by a scan) {
  auto config = config_outside();
  config.state_dir = (root / "state").string();
  config.log_file = (root / "logs/cluster.log").string();
  write(root / "state/registered-servers.json", "{}");
  write(root / "logs/cluster.log", "log");
  write(root / "main.conf", "m");
  auto result = scan_tree(root.string(), node_exclusions(config));
  CAF_CHECK(result.errors.empty());
  CAF_REQUIRE_EQUAL(result.files.size(), 1u);
  CAF_CHECK_EQUAL(result.files[0].path, "main.conf");
}

// The log folder may be the managed directory itself, and the log file must
// still not be replicated.
CAF_TEST(log file in config dir is excluded) {
  auto config = config_outside();
  config.log_file = (root / "cluster.log").string();
  auto rules = node_exclusions(config);
  CAF_CHECK(is_excluded(rules, root.string(), "cluster.log"));
  CAF_CHECK(!is_excluded(rules, root.string(), "main.conf"));
}

// -- same_content -------------------------------------------------------------

CAF_TEST(same content ignores modification times) {
  file_list x{{"a", 1, 0644, 100, "h1"}, {"b", 2, 0600, 200, "h2"}};
  auto y = x;
  CAF_CHECK(same_content(x, y));
  y[0].mtime_ns = 999;
  CAF_CHECK(same_content(x, y));
  CAF_CHECK(same_content({}, {}));
}

CAF_TEST(same content sees every other field) {
  file_list x{{"a", 1, 0644, 100, "h1"}, {"b", 2, 0600, 200, "h2"}};
  auto changed = x;
  changed[1].path = "c";
  CAF_CHECK(!same_content(x, changed));
  changed = x;
  changed[1].size = 3;
  CAF_CHECK(!same_content(x, changed));
  changed = x;
  changed[1].mode = 0644;
  CAF_CHECK(!same_content(x, changed));
  changed = x;
  changed[1].sha256 = "h3";
  CAF_CHECK(!same_content(x, changed));
  changed = x;
  changed.pop_back();
  CAF_CHECK(!same_content(x, changed));
  CAF_CHECK(!same_content(changed, x));
  CAF_CHECK(!same_content(x, {}));
}

// -- format_listing -----------------------------------------------------------

CAF_TEST(listing shows mode size time and path) {
  // 1700000000 s after the epoch is 2023-11-14T22:13:20Z.
  file_list list{{"main.conf", 5, 0640, 1700000000123456789, "h1"},
                 {"sub dir/ü rule", 0, 04755, 0, "h2"}};
  CAF_CHECK_EQUAL(format_listing(list), "0640 5 2023-11-14T22:13:20.123Z main.conf\n"
                                        "4755 0 1970-01-01T00:00:00.000Z sub dir/ü rule\n");
  CAF_CHECK_EQUAL(format_listing({}), "");
}

// -- open_managed_file / read_managed_file ------------------------------------

CAF_TEST(read managed file returns the content) {
  write(root / "sub dir/ü.conf", "content\nwith two lines\n");
  std::string out;
  CAF_CHECK_EQUAL(read_managed_file(root.string(), "sub dir/ü.conf", out, 1024), "");
  CAF_CHECK_EQUAL(out, "content\nwith two lines\n");
  write(root / "empty", "");
  out = "stale";
  CAF_CHECK_EQUAL(read_managed_file(root.string(), "empty", out, 1024), "");
  CAF_CHECK_EQUAL(out, "");
}

CAF_TEST(managed file paths must be relative) {
  write(dir / "secret", "outside");
  for (auto path : {"../secret", "sub/../../secret", "/etc/passwd", "", "./secret"}) {
    CAF_MESSAGE("path '" << path << "'");
    std::string out;
    auto error = read_managed_file(root.string(), path, out, 1024);
    CAF_CHECK(contains_text(error, "is not allowed"));
    CAF_CHECK_EQUAL(out, "");
    int code = 0;
    CAF_CHECK_EQUAL(open_and_close(path, code), -1);
    CAF_CHECK_EQUAL(code, EINVAL);
  }
}

CAF_TEST(managed file rejects a symlinked file) {
  write(dir / "secret", "outside");
  fs::create_symlink(dir / "secret", root / "link");
  std::string out;
  auto error = read_managed_file(root.string(), "link", out, 1024);
  CAF_CHECK(contains_text(error, "cannot read 'link'"));
  CAF_CHECK_EQUAL(out, "");
  int code = 0;
  CAF_CHECK_EQUAL(open_and_close("link", code), -1);
  CAF_CHECK_EQUAL(code, ELOOP);
}

CAF_TEST(managed file rejects a symlinked folder) {
  write(dir / "outside/secret", "outside");
  fs::create_directories(root / "a");
  fs::create_symlink(dir / "outside", root / "link");
  fs::create_symlink(dir / "outside", root / "a/link");
  for (auto path : {"link/secret", "a/link/secret"}) {
    CAF_MESSAGE("path '" << path << "'");
    std::string out;
    auto error = read_managed_file(root.string(), path, out, 1024);
    CAF_CHECK(contains_text(error, "cannot read '" + std::string(path) + "'"));
    CAF_CHECK_EQUAL(out, "");
    int code = 0;
    CAF_CHECK_EQUAL(open_and_close(path, code), -1);
  }
}

CAF_TEST(managed file rejects a fifo) {
  CAF_REQUIRE_EQUAL(::mkfifo((root / "pipe").c_str(), 0644), 0);
  std::string out;
  // Opening a FIFO for reading blocks until a writer appears, unless it is
  // opened non-blocking, so a wrong open makes this test hang.
  auto error = read_managed_file(root.string(), "pipe", out, 1024);
  CAF_CHECK(contains_text(error, "not a regular file"));
  int code = 0;
  CAF_CHECK_EQUAL(open_and_close("pipe", code), -1);
  CAF_CHECK_EQUAL(code, EINVAL);
}

CAF_TEST(managed file rejects a folder) {
  fs::create_directories(root / "sub");
  std::string out;
  CAF_CHECK(
    contains_text(read_managed_file(root.string(), "sub", out, 1024), "not a regular file"));
}

CAF_TEST(managed file reports a missing file) {
  std::string out;
  auto error = read_managed_file(root.string(), "absent", out, 1024);
  CAF_CHECK(contains_text(error, "cannot read 'absent'"));
  CAF_CHECK(contains_text(error, "No such file"));
  int code = 0;
  CAF_CHECK_EQUAL(open_and_close("absent", code), -1);
  CAF_CHECK_EQUAL(code, ENOENT);
}

CAF_TEST(managed file over the size limit is rejected) {
  write(root / "ten", "0123456789");
  std::string out;
  CAF_CHECK_EQUAL(read_managed_file(root.string(), "ten", out, 10), "");
  CAF_CHECK_EQUAL(out, "0123456789");
  out.clear();
  auto error = read_managed_file(root.string(), "ten", out, 9);
  CAF_CHECK(contains_text(error, "'ten' has 10 bytes, more than the 9"));
  CAF_CHECK_EQUAL(out, "");
}

// -- ensure_directory ---------------------------------------------------------

CAF_TEST(ensure directory creates parents) {
  auto nested = dir / "a/b/c";
  CAF_CHECK_EQUAL(ensure_directory(nested.string()), "");
  CAF_CHECK(fs::is_directory(nested));
  CAF_CHECK_EQUAL(ensure_directory(nested.string()), "");
  write(dir / "file", "f");
  auto error = ensure_directory((dir / "file/sub").string());
  CAF_CHECK(contains_text(error, "cannot create '" + (dir / "file/sub").string() + "'"));
}

CAF_TEST_FIXTURE_SCOPE_END()
