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

CAF_TEST(symlinked directory is not followed) {
  auto outside = root / "outside";
  fs::create_directories(root / "tree");
  fs::create_directories(outside);
  fs::create_symlink(outside, root / "tree" / "link");
  batch_writer writer((root / "tree").string());
  auto error = writer.begin("link/x", 0644);
  CAF_CHECK(error.find("symbolic link") != std::string::npos);
  CAF_CHECK_EQUAL(entries_in(outside), 0u);
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

CAF_TEST_FIXTURE_SCOPE_END()
