#include "runtime/file_list.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <boost/filesystem.hpp>
#include <openssl/evp.h>

#include "runtime/tls.hpp"

namespace mc {

namespace fs = boost::filesystem;

namespace {

constexpr size_t read_chunk = 256 * 1024;
constexpr size_t max_component = 255;
constexpr size_t max_path = 4096;

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Hashes a file in fixed-size chunks, so memory use does not grow with the
// file. Returns "" and sets `hex` on success, else the reason.
std::string hash_file(const std::string& path, std::string& hex) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return std::strerror(errno);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<unsigned char> buffer(read_chunk);
  for (;;) {
    auto n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto error = std::strerror(errno);
      ::close(fd);
      return error;
    }
    if (n == 0)
      break;
    EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &length);
  hex = tls::hex_encode(std::string(reinterpret_cast<char*>(digest), length));
  return {};
}

bool excluded(const exclusion_rules& rules, const fs::path& absolute, const std::string& relative) {
  auto first = relative.substr(0, relative.find('/'));
  for (auto& name : rules.top_level)
    if (first == name)
      return true;
  for (auto& suffix : rules.suffixes)
    if (ends_with(relative, suffix))
      return true;
  for (auto& path : rules.absolute)
    if (absolute == fs::path(path))
      return true;
  return false;
}

} // namespace

exclusion_rules default_exclusions() {
  exclusion_rules rules;
  rules.top_level = {"Users",    "Public Folders", "LockFiles", "PEM",
                     "Archives", "Digests",        "Gateways",  "Queues"};
  rules.suffixes = {".lock", ".lck"};
  return rules;
}

scan_result scan_tree(const std::string& root, const exclusion_rules& rules,
                      const file_list& previous) {
  scan_result result;
  std::map<std::string, const file_entry*> known;
  for (auto& entry : previous)
    known[entry.path] = &entry;
  boost::system::error_code ec;
  fs::path base(root);
  fs::recursive_directory_iterator i(base, ec), end;
  if (ec) {
    result.errors.push_back("cannot read '" + root + "': " + ec.message());
    return result;
  }
  for (; i != end; i.increment(ec)) {
    if (ec) {
      result.errors.push_back("cannot read below '" + i->path().string() + "': " + ec.message());
      ec.clear();
      continue;
    }
    auto absolute = i->path();
    auto relative = absolute.lexically_relative(base).generic_string();
    if (excluded(rules, absolute, relative)) {
      if (i->symlink_status(ec).type() == fs::directory_file)
        i.disable_recursion_pending();
      continue;
    }
    struct stat info {};
    if (::lstat(absolute.c_str(), &info) != 0) {
      result.errors.push_back("cannot stat '" + relative + "': " + std::strerror(errno));
      continue;
    }
    if (!S_ISREG(info.st_mode))
      continue;
    file_entry entry;
    entry.path = relative;
    entry.size = static_cast<uint64_t>(info.st_size);
    entry.mode = info.st_mode & 07777;
    entry.mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
    auto old = known.find(relative);
    if (old != known.end() && old->second->size == entry.size &&
        old->second->mtime_ns == entry.mtime_ns && !old->second->sha256.empty()) {
      entry.sha256 = old->second->sha256;
    } else if (auto error = hash_file(absolute.string(), entry.sha256); !error.empty()) {
      result.errors.push_back("cannot read '" + relative + "': " + error);
      continue;
    }
    result.bytes += entry.size;
    result.files.push_back(std::move(entry));
  }
  std::sort(result.files.begin(), result.files.end(),
            [](const file_entry& x, const file_entry& y) { return x.path < y.path; });
  return result;
}

file_list_diff diff_file_lists(const file_list& local, const file_list& primary) {
  file_list_diff diff;
  std::map<std::string, const file_entry*> mine;
  for (auto& entry : local)
    mine[entry.path] = &entry;
  for (auto& entry : primary) {
    auto i = mine.find(entry.path);
    if (i == mine.end() || i->second->sha256 != entry.sha256 || i->second->size != entry.size)
      diff.fetch.push_back(entry.path);
    else if (i->second->mode != entry.mode)
      diff.change_mode.push_back(entry.path);
    if (i != mine.end())
      mine.erase(i);
  }
  for (auto& [path, entry] : mine)
    diff.remove.push_back(path);
  return diff;
}

std::string check_relative_path(const std::string& path) {
  if (path.empty())
    return "empty path";
  if (path.size() > max_path)
    return "path longer than " + std::to_string(max_path) + " bytes";
  if (path.find('\0') != std::string::npos)
    return "path contains a NUL byte";
  if (path.find('\\') != std::string::npos)
    return "path contains a backslash";
  if (path.front() == '/')
    return "absolute path";
  size_t start = 0;
  while (start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos)
      end = path.size();
    auto component = path.substr(start, end - start);
    if (component.empty())
      return "empty path component";
    if (component == "." || component == "..")
      return "'" + component + "' path component";
    if (component.size() > max_component)
      return "path component longer than " + std::to_string(max_component) + " bytes";
    start = end + 1;
  }
  return {};
}

} // namespace mc
