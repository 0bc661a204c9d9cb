#include "runtime/file_list.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include <boost/filesystem.hpp>
#include <openssl/evp.h>

#include "runtime/registry.hpp"
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

// Prefix of batch_writer's temporary files; they are never listed.
constexpr const char* temporary_prefix = ".mc-tmp.";

bool excluded(const exclusion_rules& rules, const fs::path& absolute, const std::string& relative) {
  auto slash = relative.rfind('/');
  auto base = slash == std::string::npos ? relative : relative.substr(slash + 1);
  if (base.rfind(temporary_prefix, 0) == 0)
    return true;
  auto first = relative.substr(0, relative.find('/'));
  for (auto& name : rules.top_level)
    if (first == name)
      return true;
  for (auto& suffix : rules.suffixes)
    if (ends_with(relative, suffix))
      return true;
  // An absolute rule covers the folder and everything below it.
  auto text = absolute.generic_string();
  for (auto& path : rules.absolute)
    if (text == path || text.rfind(path + "/", 0) == 0)
      return true;
  return false;
}

// Returns the names of a file's owner and group, cached: a tree has few
// owners, and the lookups may read /etc/passwd each time.
void owner_names(uid_t uid, gid_t gid, std::string& owner, std::string& group) {
  static std::mutex mutex;
  static std::map<uid_t, std::string> users;
  static std::map<gid_t, std::string> groups;
  std::lock_guard<std::mutex> lock(mutex);
  auto user = users.find(uid);
  if (user == users.end()) {
    struct passwd entry {};
    struct passwd* found = nullptr;
    std::vector<char> buffer(16384);
    std::string name = std::to_string(uid);
    if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found)
      name = found->pw_name;
    user = users.emplace(uid, name).first;
  }
  auto grp = groups.find(gid);
  if (grp == groups.end()) {
    struct group entry {};
    struct group* found = nullptr;
    std::vector<char> buffer(16384);
    std::string name = std::to_string(gid);
    if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) == 0 && found)
      name = found->gr_name;
    grp = groups.emplace(gid, name).first;
  }
  owner = user->second;
  group = grp->second;
}

// Returns the list entry for a stat'ed regular file, without its hash.
file_entry entry_from_stat(const std::string& relative, const struct stat& info) {
  file_entry entry;
  entry.path = relative;
  entry.size = static_cast<uint64_t>(info.st_size);
  entry.mode = info.st_mode & 07777;
  owner_names(info.st_uid, info.st_gid, entry.owner, entry.group);
  entry.mtime_ns = static_cast<int64_t>(info.st_mtim.tv_sec) * 1000000000 + info.st_mtim.tv_nsec;
  return entry;
}

} // namespace

bool same_attributes(const file_entry& x, const file_entry& y) {
  auto same = [](const std::string& a, const std::string& b) {
    return a.empty() || b.empty() || a == b;
  };
  return x.mode == y.mode && same(x.owner, y.owner) && same(x.group, y.group);
}

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
    auto entry = entry_from_stat(relative, info);
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

bool is_excluded(const exclusion_rules& rules, const std::string& root,
                 const std::string& relative) {
  return excluded(rules, fs::path(root) / relative, relative);
}

std::vector<std::string> rescan_paths(const std::string& root, const exclusion_rules& rules,
                                      file_list& list, const std::vector<std::string>& dirty) {
  std::vector<std::string> errors;
  // Collapse the dirty set: a folder covers everything below it.
  std::vector<std::string> paths(dirty.begin(), dirty.end());
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  // Sorted order does not put a folder right before its contents ("conf",
  // "conf.d", "conf/x"), so check every parent of each path.
  std::vector<std::string> roots;
  std::set<std::string> kept_roots;
  auto below_kept = [&](const std::string& path) {
    for (auto cut = path.rfind('/'); cut != std::string::npos && cut > 0;
         cut = path.rfind('/', cut - 1))
      if (kept_roots.count(path.substr(0, cut)))
        return true;
    return false;
  };
  for (auto& path : paths) {
    if (path.empty()) {
      roots.assign(1, std::string{});
      break;
    }
    if (below_kept(path))
      continue;
    roots.push_back(path);
    kept_roots.insert(path);
  }
  if (roots.size() == 1 && roots.front().empty()) {
    auto result = scan_tree(root, rules, list);
    list = std::move(result.files);
    return result.errors;
  }
  std::set<std::string> root_set(roots.begin(), roots.end());
  auto covered = [&](const std::string& path) {
    // The path itself or any of its parent folders.
    for (auto end = path.size(); end != std::string::npos && end > 0;
         end = path.rfind('/', end - 1))
      if (root_set.count(path.substr(0, end)))
        return true;
    return false;
  };
  file_list kept;
  file_list old;
  for (auto& entry : list)
    (covered(entry.path) ? old : kept).push_back(std::move(entry));
  for (auto& relative : roots) {
    if (excluded(rules, fs::path(root) / relative, relative))
      continue;
    auto absolute = (fs::path(root) / relative).string();
    struct stat info {};
    if (::lstat(absolute.c_str(), &info) != 0)
      continue; // gone: its entries stay dropped
    if (S_ISDIR(info.st_mode)) {
      // A sub-scan reports paths relative to the folder; put them back
      // below it, and reuse the old hashes under the same names.
      file_list previous;
      for (auto& entry : old)
        if (entry.path.rfind(relative + "/", 0) == 0) {
          previous.push_back(entry);
          previous.back().path = entry.path.substr(relative.size() + 1);
        }
      exclusion_rules sub = rules;
      sub.top_level.clear();
      auto result = scan_tree(absolute, sub, previous);
      for (auto& entry : result.files) {
        entry.path = relative + "/" + entry.path;
        if (!excluded(rules, fs::path(root) / entry.path, entry.path))
          kept.push_back(std::move(entry));
      }
      for (auto& error : result.errors)
        errors.push_back(error);
      continue;
    }
    if (!S_ISREG(info.st_mode))
      continue;
    auto entry = entry_from_stat(relative, info);
    auto same =
      std::find_if(old.begin(), old.end(), [&](const file_entry& x) { return x.path == relative; });
    if (same != old.end() && same->size == entry.size && same->mtime_ns == entry.mtime_ns &&
        !same->sha256.empty())
      entry.sha256 = same->sha256;
    else if (auto error = hash_file(absolute, entry.sha256); !error.empty()) {
      errors.push_back("cannot read '" + relative + "': " + error);
      continue;
    }
    kept.push_back(std::move(entry));
  }
  std::sort(kept.begin(), kept.end(),
            [](const file_entry& x, const file_entry& y) { return x.path < y.path; });
  list = std::move(kept);
  return errors;
}

std::vector<std::string> rehash_slice(const std::string& root, const file_list& list,
                                      size_t& cursor, uint64_t& credit) {
  std::vector<std::string> changed;
  // Each file costs at least one block, so that empty files also use up
  // credit and one call never walks the whole list.
  constexpr uint64_t min_cost = 4096;
  for (size_t visited = 0; visited < list.size(); ++visited) {
    if (cursor >= list.size())
      cursor = 0;
    auto& entry = list[cursor];
    auto cost = std::max(entry.size, min_cost);
    if (cost > credit)
      break;
    credit -= cost;
    ++cursor;
    // Only files whose size and mtime still match are this function's
    // business. Any other change (a file being written right now) is left
    // to inotify and the stat-based rescan, which wait for the write to end.
    auto path = (fs::path(root) / entry.path).string();
    struct stat info {};
    if (::lstat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode))
      continue;
    auto now = entry_from_stat(entry.path, info);
    if (now.size != entry.size || now.mtime_ns != entry.mtime_ns)
      continue;
    std::string hex;
    // A file that cannot be read now is left to the next stat-based rescan.
    if (!hash_file(path, hex).empty() || hex == entry.sha256)
      continue;
    // A write that began while the file was read is not a hidden edit.
    if (::lstat(path.c_str(), &info) == 0 &&
        entry_from_stat(entry.path, info).mtime_ns == now.mtime_ns)
      changed.push_back(entry.path);
  }
  return changed;
}

size_t remove_temporary_files(const std::string& root) {
  size_t removed = 0;
  boost::system::error_code ec;
  fs::recursive_directory_iterator i(fs::path(root), ec), end;
  for (; !ec && i != end; i.increment(ec)) {
    auto name = i->path().filename().string();
    if (name.rfind(temporary_prefix, 0) != 0)
      continue;
    if (i->symlink_status(ec).type() == fs::directory_file) {
      i.disable_recursion_pending();
      continue;
    }
    if (::unlink(i->path().c_str()) == 0)
      ++removed;
  }
  return removed;
}

uint64_t total_bytes(const file_list& list) {
  uint64_t bytes = 0;
  for (auto& entry : list)
    bytes += entry.size;
  return bytes;
}

std::string save_file_list(const std::string& file, uint64_t generation, const file_list& list) {
  // One line per file; the path goes last with its length in front, so any
  // byte (even a newline) in a name reads back unchanged.
  std::string out = "mailcluster-file-list 2 " + std::to_string(generation) + "\n";
  auto field = [](const std::string& text) { return std::to_string(text.size()) + ":" + text; };
  for (auto& entry : list) {
    out += entry.sha256 + " " + std::to_string(entry.size) + " " + std::to_string(entry.mode) +
           " " + std::to_string(entry.mtime_ns) + " " + field(entry.owner) + " " +
           field(entry.group) + " " + field(entry.path) + "\n";
  }
  return write_file_durably(file, out);
}

std::string load_file_list(const std::string& file, uint64_t& generation, file_list& list) {
  generation = 0;
  list.clear();
  std::string text;
  {
    std::ifstream in(file, std::ios::binary);
    if (!in)
      return errno == ENOENT ? std::string{}
                             : "cannot read '" + file + "': " + std::strerror(errno);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto bad = [&] {
    generation = 0;
    list.clear();
    return "'" + file + "' is damaged; it is rebuilt from a full scan";
  };
  std::istringstream in(text);
  std::string magic, version;
  // Version 1 lists (without owner and group) still load.
  if (!(in >> magic >> version >> generation) || magic != "mailcluster-file-list" ||
      (version != "1" && version != "2"))
    return bad();
  in.get();
  // Reads " LENGTH:TEXT" (the leading space skipped by >>).
  auto read_field = [&in](std::string& out) {
    size_t length = 0;
    char colon = 0;
    if (!(in >> length >> colon) || colon != ':' || length > 65536)
      return false;
    out.resize(length);
    return static_cast<bool>(in.read(out.data(), static_cast<std::streamsize>(length)));
  };
  for (;;) {
    file_entry entry;
    if (!(in >> entry.sha256))
      break;
    if (!(in >> entry.size >> entry.mode >> entry.mtime_ns))
      return bad();
    if (version == "2" && (!read_field(entry.owner) || !read_field(entry.group)))
      return bad();
    if (!read_field(entry.path) || in.get() != '\n')
      return bad();
    list.push_back(std::move(entry));
  }
  return {};
}

file_list_diff diff_file_lists(const file_list& local, const file_list& primary) {
  // Both lists are sorted by path, so one merge pass finds every
  // difference without building an index.
  file_list_diff diff;
  size_t i = 0, j = 0;
  while (i < local.size() || j < primary.size()) {
    if (j == primary.size() || (i < local.size() && local[i].path < primary[j].path)) {
      diff.remove.push_back(local[i++].path);
    } else if (i == local.size() || primary[j].path < local[i].path) {
      diff.fetch.push_back(primary[j++].path);
    } else {
      auto& mine = local[i++];
      auto& theirs = primary[j++];
      if (mine.sha256 != theirs.sha256 || mine.size != theirs.size)
        diff.fetch.push_back(theirs.path);
      else if (!same_attributes(mine, theirs))
        diff.change_mode.push_back(theirs.path);
    }
  }
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
