#define CAF_SUITE file_list
#include "caf/test/unit_test.hpp"

#include <sys/stat.h>

#include <fstream>

#include <boost/filesystem.hpp>

#include "runtime/file_list.hpp"
#include "runtime/tls.hpp"

using namespace mc;
namespace fs = boost::filesystem;

namespace {

struct tree {
  fs::path root;

  tree() {
    root = fs::temp_directory_path() / fs::unique_path("mc-file-list-%%%%-%%%%");
    fs::create_directories(root);
  }

  ~tree() {
    boost::system::error_code ignored;
    fs::remove_all(root, ignored);
  }

  void write(const std::string& relative, const std::string& content) {
    auto path = root / relative;
    fs::create_directories(path.parent_path());
    std::ofstream out(path.string(), std::ios::binary);
    out << content;
  }

  const file_entry* find(const file_list& files, const std::string& relative) {
    for (auto& entry : files)
      if (entry.path == relative)
        return &entry;
    return nullptr;
  }
};

} // namespace

CAF_TEST(scan lists files with hashes) {
  tree t;
  t.write("a.conf", "alpha");
  t.write("sub dir/b ü.conf", "beta");
  t.write("empty", "");
  auto result = scan_tree(t.root.string(), default_exclusions());
  CAF_CHECK(result.errors.empty());
  CAF_REQUIRE_EQUAL(result.files.size(), 3u);
  auto b = t.find(result.files, "sub dir/b ü.conf");
  CAF_REQUIRE(b != nullptr);
  CAF_CHECK_EQUAL(b->size, 4u);
  CAF_CHECK_EQUAL(b->sha256, tls::sha256_hex("beta"));
  CAF_CHECK_EQUAL(result.bytes, 9u);
  CAF_CHECK_EQUAL(result.files.front().path, "a.conf");
}

CAF_TEST(scan skips shared folders and locks) {
  tree t;
  t.write("Users/alice/inbox", "mail");
  t.write("Public Folders/x", "p");
  t.write("Queues/q1", "q");
  t.write("conf/users.lock", "l");
  t.write("conf/Users", "a file named like a shared folder, but not top level");
  t.write("keep.conf", "k");
  auto result = scan_tree(t.root.string(), default_exclusions());
  CAF_CHECK_EQUAL(result.files.size(), 2u);
  CAF_CHECK(t.find(result.files, "keep.conf") != nullptr);
  CAF_CHECK(t.find(result.files, "conf/Users") != nullptr);
  CAF_CHECK(t.find(result.files, "Users/alice/inbox") == nullptr);
}

CAF_TEST(scan skips the state directory) {
  tree t;
  t.write("state/registered-servers.json", "{}");
  t.write("a", "a");
  auto rules = default_exclusions();
  rules.absolute.push_back((t.root / "state").string());
  auto result = scan_tree(t.root.string(), rules);
  CAF_CHECK_EQUAL(result.files.size(), 1u);
}

CAF_TEST(scan skips symlinks) {
  tree t;
  t.write("a", "a");
  fs::create_symlink("/etc/passwd", t.root / "link");
  auto result = scan_tree(t.root.string(), default_exclusions());
  CAF_CHECK_EQUAL(result.files.size(), 1u);
}

CAF_TEST(scan reuses hashes of unchanged files) {
  tree t;
  t.write("a", "alpha");
  auto first = scan_tree(t.root.string(), default_exclusions());
  CAF_REQUIRE_EQUAL(first.files.size(), 1u);
  first.files[0].sha256 = "remembered";
  auto second = scan_tree(t.root.string(), default_exclusions(), first.files);
  CAF_CHECK_EQUAL(second.files[0].sha256, "remembered");
}

CAF_TEST(scan records mode) {
  tree t;
  t.write("a", "alpha");
  ::chmod((t.root / "a").c_str(), 0640);
  auto result = scan_tree(t.root.string(), default_exclusions());
  CAF_REQUIRE_EQUAL(result.files.size(), 1u);
  CAF_CHECK_EQUAL(result.files[0].mode, 0640u);
}

CAF_TEST(diff finds fetches modes and removals) {
  file_list local{{"a", 1, 0644, 0, "h1"}, {"b", 1, 0644, 0, "h2"}, {"gone", 1, 0644, 0, "h3"}};
  file_list primary{{"a", 1, 0644, 0, "h1"}, {"b", 1, 0600, 0, "h2"}, {"new", 1, 0644, 0, "h4"}};
  primary[0].sha256 = "changed";
  auto diff = diff_file_lists(local, primary);
  CAF_REQUIRE_EQUAL(diff.fetch.size(), 2u);
  CAF_CHECK_EQUAL(diff.fetch[0], "a");
  CAF_CHECK_EQUAL(diff.fetch[1], "new");
  CAF_REQUIRE_EQUAL(diff.change_mode.size(), 1u);
  CAF_CHECK_EQUAL(diff.change_mode[0], "b");
  CAF_REQUIRE_EQUAL(diff.remove.size(), 1u);
  CAF_CHECK_EQUAL(diff.remove[0], "gone");
}

CAF_TEST(safe paths pass) {
  CAF_CHECK_EQUAL(check_relative_path("a/b c/ü.conf"), "");
  CAF_CHECK_EQUAL(check_relative_path("..hidden"), "");
}

CAF_TEST(unsafe paths are rejected) {
  CAF_CHECK_NOT_EQUAL(check_relative_path(""), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path("/etc/passwd"), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path("../x"), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path("a/../../x"), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path("a/./b"), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path("a//b"), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path("a/"), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path(std::string("a\0b", 3)), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path("a\\..\\b"), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path(std::string(256, 'x')), "");
  CAF_CHECK_NOT_EQUAL(check_relative_path(std::string(4097, 'x')), "");
}
