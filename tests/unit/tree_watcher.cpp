#define CAF_SUITE tree_watcher
#include "caf/test/unit_test.hpp"

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <boost/filesystem.hpp>

#include "runtime/tree_watcher.hpp"

using namespace mc;
using namespace std::chrono_literals;
namespace fs = boost::filesystem;

namespace {

// Upper bound for every wait on the watcher's thread. A report normally
// arrives within the 20 ms debounce, and the margin covers loaded machines.
constexpr auto report_timeout = 5s;

// Collects the watcher's reports, which arrive on the watcher's thread.
struct recorder {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::vector<std::string>> reports;

  tree_watcher::report_fn callback() {
    return [this](std::vector<std::string> paths) {
      std::lock_guard<std::mutex> guard(mutex);
      reports.push_back(std::move(paths));
      changed.notify_all();
    };
  }

  // Every path reported so far.
  std::set<std::string> paths() {
    std::lock_guard<std::mutex> guard(mutex);
    std::set<std::string> all;
    for (auto& report : reports)
      all.insert(report.begin(), report.end());
    return all;
  }

  size_t report_count() {
    std::lock_guard<std::mutex> guard(mutex);
    return reports.size();
  }

  // Waits until every path in `expected` was reported, or a path that
  // covers it (one of its parent folders, or "" for the whole tree).
  // Returns false on timeout.
  bool wait_for_covered(const std::vector<std::string>& expected) {
    std::unique_lock<std::mutex> guard(mutex);
    return changed.wait_for(guard, report_timeout, [&] {
      for (auto& path : expected)
        if (!covered_locked(path))
          return false;
      return true;
    });
  }

  bool covered_locked(const std::string& path) {
    for (auto& report : reports)
      for (auto& reported : report)
        if (reported.empty() || reported == path || path.rfind(reported + "/", 0) == 0)
          return true;
    return false;
  }

  // Waits until every path in `expected` was reported by its own name, not
  // through a parent folder. Returns false on timeout.
  bool wait_for_exact(const std::vector<std::string>& expected) {
    std::unique_lock<std::mutex> guard(mutex);
    return changed.wait_for(guard, report_timeout, [&] {
      std::set<std::string> all;
      for (auto& report : reports)
        all.insert(report.begin(), report.end());
      for (auto& path : expected)
        if (all.count(path) == 0)
          return false;
      return true;
    });
  }

  bool wait_for_exact(const std::string& path) {
    return wait_for_exact(std::vector<std::string>{path});
  }
};

struct fixture {
  fs::path root;
  // Declared before any watcher in a test, so it outlives the watcher's
  // thread.
  recorder seen;

  fixture() {
    root = fs::temp_directory_path() / fs::unique_path("mc-watch-%%%%-%%%%");
    fs::create_directories(root);
  }

  ~fixture() {
    boost::system::error_code ignored;
    fs::remove_all(root, ignored);
  }

  void write(const std::string& relative, const std::string& content) {
    auto path = root / relative;
    fs::create_directories(path.parent_path());
    std::ofstream out(path.string(), std::ios::binary);
    out << content;
  }

  // Destroys `watcher` and returns how long its destructor took.
  static int64_t milliseconds_to_destroy(std::unique_ptr<tree_watcher>& watcher) {
    auto started = std::chrono::steady_clock::now();
    watcher.reset();
    auto elapsed = std::chrono::steady_clock::now() - started;
    return std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
  }

  std::unique_ptr<tree_watcher> start(exclusion_rules rules = default_exclusions()) {
    return std::make_unique<tree_watcher>(root.string(), std::move(rules), 20ms, seen.callback());
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(tree_watcher_tests, fixture)

CAF_TEST(file write is reported) {
  auto watcher = start();
  CAF_CHECK_EQUAL(watcher->error(), "");
  CAF_CHECK_EQUAL(watcher->unwatched_folders(), 0u);
  write("main.conf", "alpha");
  CAF_CHECK(seen.wait_for_exact("main.conf"));
}

CAF_TEST(write in existing subfolder is reported) {
  write("deep/sub dir/x", "old");
  auto watcher = start();
  write("deep/sub dir/x", "new");
  CAF_CHECK(seen.wait_for_exact("deep/sub dir/x"));
}

CAF_TEST(removed file is reported) {
  write("gone", "g");
  auto watcher = start();
  fs::remove(root / "gone");
  CAF_CHECK(seen.wait_for_exact("gone"));
}

// One save of many files must make one generation, not one per file.
CAF_TEST(burst of writes makes few reports) {
  auto watcher = start();
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i)
    names.push_back("burst/file-" + std::to_string(i));
  fs::create_directories(root / "burst");
  CAF_REQUIRE(seen.wait_for_exact("burst"));
  auto before = seen.report_count();
  for (auto& name : names)
    write(name, "content of " + name);
  CAF_REQUIRE(seen.wait_for_exact(names));
  auto reports = seen.report_count() - before;
  CAF_MESSAGE("50 writes gave " << reports << " reports");
  // Normally one. A few more only if the writing thread stalled for more
  // than the 20 ms debounce, which happens on a heavily loaded machine.
  CAF_CHECK_GREATER_OR_EQUAL(reports, 1u);
  CAF_CHECK_LESS_OR_EQUAL(reports, 5u);
}

CAF_TEST(new folder and its file are reported) {
  auto watcher = start();
  // Created before the watcher can add a watch for the new folders, so
  // "fresh/sub/f" may be reported through "fresh" only.
  write("fresh/sub/f", "f");
  CAF_CHECK(seen.wait_for_covered({"fresh/sub/f"}));
  // The new folders are watched by now, so a later write is reported by
  // its own path.
  write("fresh/sub/g", "g");
  CAF_CHECK(seen.wait_for_exact("fresh/sub/g"));
  write("fresh/h", "h");
  CAF_CHECK(seen.wait_for_exact("fresh/h"));
}

CAF_TEST(renamed folder is reported by new name) {
  write("before/sub/f", "f");
  auto watcher = start();
  fs::rename(root / "before", root / "after");
  CAF_CHECK(seen.wait_for_exact("before"));
  CAF_CHECK(seen.wait_for_exact("after"));
  write("after/sub/g", "g");
  CAF_CHECK(seen.wait_for_exact("after/sub/g"));
  CAF_CHECK_EQUAL(seen.paths().count("before/sub/g"), 0u);
}

CAF_TEST(excluded paths are not reported) {
  write("Users/alice/inbox", "old");
  auto rules = default_exclusions();
  rules.absolute.push_back((root / "state").string());
  fs::create_directories(root / "state");
  auto watcher = start(rules);
  write("Users/alice/inbox", "new mail");
  write("Users/bob/inbox", "mail");
  write("Queues/q1", "queued");
  write("x.lock", "l");
  write("conf/y.lck", "l");
  write(".mc-tmp.0123456789ab.main.conf", "half written");
  write("conf/.mc-tmp.0123456789ab.rules", "half written");
  write("state/registered-servers.json", "{}");
  // inotify keeps the order of events, so once the last write is reported
  // every earlier one has been handled.
  write("done", "d");
  CAF_REQUIRE(seen.wait_for_exact("done"));
  for (auto& path : seen.paths()) {
    CAF_MESSAGE("reported '" << path << "'");
    CAF_CHECK(path.rfind("Users", 0) != 0);
    CAF_CHECK(path.rfind("Queues", 0) != 0);
    CAF_CHECK(path.rfind("state", 0) != 0);
    CAF_CHECK(path.find(".mc-tmp.") == std::string::npos);
    CAF_CHECK(path.find(".lock") == std::string::npos);
    CAF_CHECK(path.find(".lck") == std::string::npos);
  }
}

CAF_TEST(excluded folder created later is not watched) {
  auto watcher = start();
  fs::create_directories(root / "Users/carol");
  write("marker", "m");
  CAF_REQUIRE(seen.wait_for_exact("marker"));
  write("Users/carol/inbox", "mail");
  write("done", "d");
  CAF_REQUIRE(seen.wait_for_exact("done"));
  for (auto& path : seen.paths())
    CAF_CHECK(path.rfind("Users", 0) != 0);
}

// The destructor must not wait for a pending report. With the maximum
// debounce of 5 s, the report is due long after the destructor returns.
CAF_TEST(destruction stops the thread promptly) {
  auto watcher =
    std::make_unique<tree_watcher>(root.string(), default_exclusions(), 5s, seen.callback());
  CAF_REQUIRE_EQUAL(watcher->error(), "");
  write("pending", "p");
  CAF_CHECK_LESS(milliseconds_to_destroy(watcher), 1000);
}

CAF_TEST(idle watcher stops promptly) {
  auto watcher = start();
  CAF_CHECK_LESS(milliseconds_to_destroy(watcher), 1000);
}

CAF_TEST(missing root counts as unwatched) {
  tree_watcher watcher((root / "absent").string(), default_exclusions(), 20ms, seen.callback());
  CAF_CHECK_EQUAL(watcher.unwatched_folders(), 1u);
}

CAF_TEST_FIXTURE_SCOPE_END()
