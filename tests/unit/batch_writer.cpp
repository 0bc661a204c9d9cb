#define CAF_SUITE batch_writer
#include "caf/test/unit_test.hpp"

#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include <boost/filesystem.hpp>

#include "runtime/batch_writer.hpp"
#include "runtime/tls.hpp"

using namespace mc;
namespace fs = boost::filesystem;

namespace {

struct fixture {
  fs::path root;

  fixture() {
    root = fs::temp_directory_path() / fs::unique_path("mc-batch-%%%%-%%%%");
    fs::create_directories(root);
  }

  ~fixture() {
    boost::system::error_code ignored;
    fs::remove_all(root, ignored);
  }

  std::string read(const std::string& relative) {
    std::ifstream in((root / relative).string(), std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
  }

  std::string write_one(batch_writer& writer, const std::string& relative,
                        const std::string& content, uint32_t mode = 0644) {
    if (auto error = writer.begin(relative, mode); !error.empty())
      return error;
    if (auto error = writer.append(content.data(), content.size()); !error.empty())
      return error;
    return writer.finish(tls::sha256_hex(content));
  }

  size_t entries_in(const fs::path& dir) {
    size_t n = 0;
    for (fs::directory_iterator i(dir), end; i != end; ++i)
      ++n;
    return n;
  }

  // Paths below `dir` whose names start with the batch's temporary prefix.
  std::vector<std::string> temporary_files(const fs::path& dir) {
    std::vector<std::string> found;
    for (fs::recursive_directory_iterator i(dir), end; i != end; ++i)
      if (i->path().filename().string().rfind(".mc-tmp.", 0) == 0)
        found.push_back(i->path().string());
    return found;
  }

  void write_plain(const std::string& relative, const std::string& content) {
    auto path = root / relative;
    fs::create_directories(path.parent_path());
    std::ofstream((path).string(), std::ios::binary) << content;
  }

  // Permission bits of `relative` without following a symbolic link, or
  // 0xFFFFFFFF if it cannot be stat'ed.
  uint32_t mode_of(const std::string& relative) {
    struct stat info {};
    if (::lstat((root / relative).c_str(), &info) != 0)
      return 0xFFFFFFFF;
    return info.st_mode & 07777;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(batch_writer_tests, fixture)

CAF_TEST(committed batch is visible) {
  batch_writer writer(root.string());
  CAF_REQUIRE_EQUAL(write_one(writer, "a.conf", "alpha"), "");
  CAF_REQUIRE_EQUAL(write_one(writer, "deep/sub dir/b ü", "beta", 0600), "");
  CAF_CHECK(!fs::exists(root / "a.conf"));
  CAF_CHECK_EQUAL(writer.pending(), 2u);
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  CAF_CHECK_EQUAL(read("a.conf"), "alpha");
  CAF_CHECK_EQUAL(read("deep/sub dir/b ü"), "beta");
  struct stat info {};
  CAF_REQUIRE_EQUAL(::stat((root / "deep/sub dir/b ü").c_str(), &info), 0);
  CAF_CHECK_EQUAL(info.st_mode & 07777, 0600u);
  CAF_CHECK_EQUAL(entries_in(root / "deep/sub dir"), 1u);
}

// A large file arrives in chunks, and the replication actor commits the
// files finished so far between two chunks. The open file's folder must
// stay usable: this failed with "Bad file descriptor" once folders were
// shared per batch.
CAF_TEST(commit between chunks of an open file) {
  batch_writer writer(root.string());
  CAF_REQUIRE_EQUAL(write_one(writer, "a/one", "1"), "");
  CAF_REQUIRE_EQUAL(writer.begin("b/big", 0644), "");
  CAF_REQUIRE_EQUAL(writer.append("first ", 6), "");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  CAF_REQUIRE_EQUAL(writer.append("second", 6), "");
  CAF_REQUIRE_EQUAL(writer.finish(tls::sha256_hex("first second")), "");
  // Folders opened now must not take over the big file's descriptor.
  CAF_REQUIRE_EQUAL(write_one(writer, "c/d/two", "2"), "");
  CAF_REQUIRE_EQUAL(write_one(writer, "b/three", "3"), "");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  CAF_CHECK_EQUAL(read("a/one"), "1");
  CAF_CHECK_EQUAL(read("b/big"), "first second");
  CAF_CHECK_EQUAL(read("c/d/two"), "2");
  CAF_CHECK_EQUAL(read("b/three"), "3");
  CAF_CHECK(temporary_files(root).empty());
}

CAF_TEST(commit replaces an existing file) {
  std::ofstream((root / "a").string()) << "old";
  batch_writer writer(root.string());
  CAF_REQUIRE_EQUAL(write_one(writer, "a", "new"), "");
  CAF_CHECK_EQUAL(read("a"), "old");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  CAF_CHECK_EQUAL(read("a"), "new");
}

CAF_TEST(hash mismatch discards the file) {
  batch_writer writer(root.string());
  CAF_REQUIRE_EQUAL(writer.begin("a", 0644), "");
  CAF_REQUIRE_EQUAL(writer.append("abc", 3), "");
  auto error = writer.finish(tls::sha256_hex("abd"));
  CAF_CHECK(error.find("SHA-256") != std::string::npos);
  CAF_CHECK_EQUAL(writer.pending(), 0u);
  CAF_CHECK_EQUAL(entries_in(root), 0u);
}

CAF_TEST(abort leaves no temporary files) {
  {
    batch_writer writer(root.string());
    CAF_REQUIRE_EQUAL(write_one(writer, "a", "alpha"), "");
    CAF_REQUIRE_EQUAL(writer.begin("b", 0644), "");
  }
  CAF_CHECK_EQUAL(entries_in(root), 0u);
}

CAF_TEST(unsafe path is rejected) {
  batch_writer writer(root.string());
  CAF_CHECK(writer.begin("../escape", 0644).find("unsafe path") == 0);
  CAF_CHECK(writer.begin("/etc/x", 0644).find("unsafe path") == 0);
  CAF_CHECK(!fs::exists(root.parent_path() / "escape"));
}

CAF_TEST(symlinked directory is replaced not followed) {
  auto outside = root / "outside";
  fs::create_directories(root / "tree");
  fs::create_directories(outside);
  fs::create_symlink(outside, root / "tree" / "link");
  batch_writer writer((root / "tree").string());
  CAF_REQUIRE_EQUAL(write_one(writer, "link/x", "inside"), "");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  CAF_CHECK_EQUAL(entries_in(outside), 0u);
  CAF_CHECK(!fs::is_symlink(root / "tree" / "link"));
  CAF_CHECK_EQUAL(read("tree/link/x"), "inside");
  auto replaced = writer.take_replaced();
  CAF_REQUIRE_EQUAL(replaced.size(), 1u);
  CAF_CHECK_EQUAL(replaced[0].first, "link");
  CAF_CHECK(replaced[0].second);
  CAF_CHECK(writer.take_replaced().empty());
}

CAF_TEST(file in the way of a folder is replaced) {
  fs::create_directories(root / "tree");
  std::ofstream((root / "tree" / "conf.d").string()) << "a file";
  batch_writer writer((root / "tree").string());
  CAF_REQUIRE_EQUAL(write_one(writer, "conf.d/x", "inside"), "");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  CAF_CHECK_EQUAL(read("tree/conf.d/x"), "inside");
  auto replaced = writer.take_replaced();
  CAF_REQUIRE_EQUAL(replaced.size(), 1u);
  CAF_CHECK(!replaced[0].second);
}

CAF_TEST(symlinked target is replaced not followed) {
  auto outside = root / "outside.txt";
  std::ofstream(outside.string()) << "keep";
  fs::create_directories(root / "tree");
  fs::create_symlink(outside, root / "tree" / "a");
  batch_writer writer((root / "tree").string());
  CAF_REQUIRE_EQUAL(write_one(writer, "a", "new"), "");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  CAF_CHECK(!fs::is_symlink(root / "tree" / "a"));
  CAF_CHECK_EQUAL(read("tree/a"), "new");
  CAF_CHECK_EQUAL(read("outside.txt"), "keep");
}

// -- finish -------------------------------------------------------------------

CAF_TEST(finish sets the modification time) {
  // 2023-11-14T22:13:20.123456789Z, with nanoseconds that a rounding to
  // microseconds or milliseconds would lose.
  const int64_t mtime_ns = 1700000000123456789;
  batch_writer writer(root.string());
  CAF_REQUIRE_EQUAL(writer.begin("sub/a.conf", 0644), "");
  CAF_REQUIRE_EQUAL(writer.append("alpha", 5), "");
  CAF_REQUIRE_EQUAL(writer.finish(tls::sha256_hex("alpha"), mtime_ns), "");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  struct stat info {};
  CAF_REQUIRE_EQUAL(::stat((root / "sub/a.conf").c_str(), &info), 0);
  CAF_CHECK_EQUAL(info.st_mtim.tv_sec, 1700000000);
  CAF_CHECK_EQUAL(info.st_mtim.tv_nsec, 123456789);
}

CAF_TEST(finish without time keeps the write time) {
  batch_writer writer(root.string());
  CAF_REQUIRE_EQUAL(write_one(writer, "a", "alpha"), "");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  struct stat info {};
  CAF_REQUIRE_EQUAL(::stat((root / "a").c_str(), &info), 0);
  // Written during this test, so well after 2020-01-01.
  CAF_CHECK_GREATER(info.st_mtim.tv_sec, 1577836800);
}

// -- cancel_current -----------------------------------------------------------

CAF_TEST(cancel leaves no temporary file) {
  batch_writer writer(root.string());
  CAF_REQUIRE_EQUAL(writer.begin("sub/dropped", 0644), "");
  CAF_REQUIRE_EQUAL(writer.append("partial", 7), "");
  CAF_CHECK(writer.writing());
  writer.cancel_current();
  CAF_CHECK(!writer.writing());
  CAF_CHECK_EQUAL(writer.pending(), 0u);
  CAF_CHECK_EQUAL(temporary_files(root), std::vector<std::string>{});
  CAF_CHECK(!fs::exists(root / "sub/dropped"));
}

CAF_TEST(cancel keeps finished files) {
  batch_writer writer(root.string());
  CAF_REQUIRE_EQUAL(write_one(writer, "kept", "k"), "");
  CAF_REQUIRE_EQUAL(writer.begin("sub/dropped", 0644), "");
  CAF_REQUIRE_EQUAL(writer.append("partial", 7), "");
  writer.cancel_current();
  // Only the finished file's temporary file is left, in the root.
  CAF_CHECK_EQUAL(writer.pending(), 1u);
  CAF_CHECK_EQUAL(temporary_files(root / "sub"), std::vector<std::string>{});
  CAF_REQUIRE_EQUAL(write_one(writer, "sub/next", "n"), "");
  CAF_REQUIRE_EQUAL(writer.commit(), "");
  CAF_CHECK_EQUAL(read("kept"), "k");
  CAF_CHECK_EQUAL(read("sub/next"), "n");
  CAF_CHECK(!fs::exists(root / "sub/dropped"));
  CAF_CHECK_EQUAL(temporary_files(root), std::vector<std::string>{});
}

CAF_TEST(cancel without a file does nothing) {
  batch_writer writer(root.string());
  writer.cancel_current();
  CAF_CHECK(!writer.writing());
  CAF_CHECK_EQUAL(writer.append("x", 1), "no file is open in this batch");
}

// -- remove -------------------------------------------------------------------

CAF_TEST(remove deletes the file and empty folders) {
  write_plain("a/b/c/file", "f");
  write_plain("a/keep", "k");
  batch_writer writer(root.string());
  CAF_CHECK_EQUAL(writer.remove("a/b/c/file"), "");
  CAF_CHECK(!fs::exists(root / "a/b/c/file"));
  CAF_CHECK(!fs::exists(root / "a/b/c"));
  CAF_CHECK(!fs::exists(root / "a/b"));
  // "a" still contains a file, so it stays, and so does the root.
  CAF_CHECK(fs::is_directory(root / "a"));
  CAF_CHECK_EQUAL(read("a/keep"), "k");
  CAF_CHECK(fs::is_directory(root));
}

CAF_TEST(remove keeps the root when it empties) {
  write_plain("only", "o");
  write_plain("dir/only", "o");
  batch_writer writer(root.string());
  CAF_CHECK_EQUAL(writer.remove("dir/only"), "");
  CAF_CHECK_EQUAL(writer.remove("only"), "");
  CAF_CHECK(fs::is_directory(root));
  CAF_CHECK_EQUAL(entries_in(root), 0u);
}

CAF_TEST(remove keeps a folder with a subfolder) {
  write_plain("a/file", "f");
  fs::create_directories(root / "a/empty-but-kept");
  batch_writer writer(root.string());
  CAF_CHECK_EQUAL(writer.remove("a/file"), "");
  CAF_CHECK(!fs::exists(root / "a/file"));
  CAF_CHECK(fs::is_directory(root / "a/empty-but-kept"));
}

CAF_TEST(remove of a missing file succeeds) {
  write_plain("dir/other", "o");
  batch_writer writer(root.string());
  CAF_CHECK_EQUAL(writer.remove("absent"), "");
  CAF_CHECK_EQUAL(writer.remove("dir/absent"), "");
  CAF_CHECK_EQUAL(writer.remove("no/such/folder/file"), "");
  CAF_CHECK_EQUAL(read("dir/other"), "o");
}

CAF_TEST(remove rejects unsafe paths) {
  fs::create_directories(root / "tree");
  write_plain("victim", "v");
  batch_writer writer((root / "tree").string());
  for (auto path : {"../victim", "/etc/passwd", "a/../../victim", "", "a//b", "./victim"}) {
    CAF_MESSAGE("path '" << path << "'");
    CAF_CHECK_EQUAL(writer.remove(path).find("unsafe path"), 0u);
  }
  CAF_CHECK_EQUAL(read("victim"), "v");
}

CAF_TEST(remove does not follow a symlinked folder) {
  auto outside = root / "outside";
  fs::create_directories(root / "tree");
  write_plain("outside/file", "keep");
  fs::create_symlink(outside, root / "tree" / "link");
  batch_writer writer((root / "tree").string());
  auto error = writer.remove("link/file");
  CAF_CHECK_NOT_EQUAL(error.find("symbolic link"), std::string::npos);
  CAF_CHECK_EQUAL(read("outside/file"), "keep");
  CAF_CHECK(fs::is_symlink(root / "tree" / "link"));
}

CAF_TEST(remove deletes a symlink not its target) {
  write_plain("outside.txt", "keep");
  fs::create_directories(root / "tree/sub");
  fs::create_symlink(root / "outside.txt", root / "tree/sub/link");
  batch_writer writer((root / "tree").string());
  CAF_CHECK_EQUAL(writer.remove("sub/link"), "");
  CAF_CHECK(!fs::is_symlink(root / "tree/sub/link"));
  CAF_CHECK_EQUAL(read("outside.txt"), "keep");
}

// -- set_mode -----------------------------------------------------------------

CAF_TEST(set mode changes permission bits) {
  write_plain("sub/a", "a");
  ::chmod((root / "sub/a").c_str(), 0644);
  batch_writer writer(root.string());
  CAF_CHECK_EQUAL(writer.set_mode("sub/a", 0600), "");
  CAF_CHECK_EQUAL(mode_of("sub/a"), 0600u);
  // Only the permission bits are applied, and the file type bits ignored.
  CAF_CHECK_EQUAL(writer.set_mode("sub/a", S_IFREG | 04750), "");
  CAF_CHECK_EQUAL(mode_of("sub/a"), 04750u);
}

CAF_TEST(set mode rejects symlinks) {
  write_plain("outside.txt", "keep");
  ::chmod((root / "outside.txt").c_str(), 0644);
  fs::create_directories(root / "tree");
  fs::create_directories(root / "dir");
  write_plain("dir/inner", "i");
  ::chmod((root / "dir/inner").c_str(), 0644);
  fs::create_symlink(root / "outside.txt", root / "tree/link");
  fs::create_symlink(root / "dir", root / "tree/dirlink");
  batch_writer writer((root / "tree").string());
  CAF_CHECK_NOT_EQUAL(writer.set_mode("link", 0600), "");
  CAF_CHECK_NOT_EQUAL(writer.set_mode("dirlink/inner", 0600), "");
  CAF_CHECK_EQUAL(mode_of("outside.txt"), 0644u);
  CAF_CHECK_EQUAL(mode_of("dir/inner"), 0644u);
}

CAF_TEST(set mode reports missing and unsafe paths) {
  batch_writer writer(root.string());
  auto missing = writer.set_mode("absent", 0600);
  CAF_CHECK_NOT_EQUAL(missing.find("'absent'"), std::string::npos);
  CAF_CHECK_NOT_EQUAL(missing.find("No such file"), std::string::npos);
  CAF_CHECK_EQUAL(writer.set_mode("../x", 0600).find("unsafe path"), 0u);
}

CAF_TEST_FIXTURE_SCOPE_END()
