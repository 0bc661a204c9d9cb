#include "runtime/replication_support.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <boost/filesystem.hpp>

#include "caf/scheduled_actor.hpp"

#include "runtime/node_context.hpp"

namespace mc {

namespace fs = boost::filesystem;

exclusion_rules node_exclusions(const node_config& config) {
  auto rules = default_exclusions();
  for (auto& name : config.exclude)
    rules.top_level.push_back(name);
  for (auto& suffix : config.exclude_suffix)
    rules.suffixes.push_back(suffix);
  // The node's own state and log stay out of replication when they live
  // inside the managed directory. A folder that contains the managed
  // directory (the default <state-dir>/config) must not become a rule, as
  // it would exclude everything.
  auto inside = [&](const std::string& path) {
    return path.rfind(config.config_dir + "/", 0) == 0;
  };
  if (inside(config.state_dir))
    rules.absolute.push_back(config.state_dir);
  // The node's own role config and TLS files, when they live there: a
  // secondary that took the primary's would run as the primary.
  for (auto& own : {config.file, config.certificate, config.key, config.cafile})
    if (inside(own))
      rules.absolute.push_back(own);
  auto log_dir = fs::path(config.log_file).parent_path().string();
  if (inside(log_dir))
    rules.absolute.push_back(log_dir);
  // The log file and its rotations (spdlog names them cluster.1.log, ...)
  // when the log sits in the managed directory itself.
  if (inside(config.log_file)) {
    rules.absolute.push_back(config.log_file);
    auto log = fs::path(config.log_file);
    for (uint32_t i = 1; i <= config.log_max_files; ++i)
      rules.absolute.push_back((log.parent_path() / (log.stem().string() + "." + std::to_string(i) +
                                                     log.extension().string()))
                                 .string());
  }
  return rules;
}

bool same_content(const file_list& x, const file_list& y) {
  if (x.size() != y.size())
    return false;
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i].path != y[i].path || x[i].size != y[i].size || x[i].sha256 != y[i].sha256 ||
        !same_attributes(x[i], y[i]))
      return false;
  return true;
}

std::string format_listing(const file_list& list) {
  std::string out;
  char mode[16];
  for (auto& entry : list) {
    std::snprintf(mode, sizeof(mode), "%04o", entry.mode);
    out += std::string(mode) + " " + std::to_string(entry.size) + " " +
           iso8601(entry.mtime_ns / 1000000) + " " + entry.path + "\n";
  }
  return out;
}

int open_managed_file(const std::string& root, const std::string& relative) {
  if (!check_relative_path(relative).empty()) {
    errno = EINVAL;
    return -1;
  }
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  size_t start = 0;
  while (fd >= 0) {
    auto slash = relative.find('/', start);
    auto last = slash == std::string::npos;
    auto component = relative.substr(start, last ? std::string::npos : slash - start);
    int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (last ? O_NONBLOCK : O_DIRECTORY);
    int next = ::openat(fd, component.c_str(), flags);
    auto saved = errno;
    ::close(fd);
    errno = saved;
    fd = next;
    if (last)
      break;
    start = slash + 1;
  }
  if (fd >= 0) {
    struct stat info {};
    if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
      ::close(fd);
      errno = EINVAL;
      return -1;
    }
  }
  return fd;
}

std::string read_managed_file(const std::string& root, const std::string& relative,
                              std::string& out, uint64_t max_size) {
  if (auto reason = check_relative_path(relative); !reason.empty())
    return "path '" + relative + "' is not allowed: " + reason;
  int fd = open_managed_file(root, relative);
  if (fd < 0)
    return "cannot read '" + relative +
           "': " + (errno == EINVAL ? std::string("not a regular file") : std::strerror(errno));
  struct stat info {};
  ::fstat(fd, &info);
  if (static_cast<uint64_t>(info.st_size) > max_size) {
    ::close(fd);
    return "'" + relative + "' has " + std::to_string(info.st_size) + " bytes, more than the " +
           std::to_string(max_size) + " that this command transfers; copy it from " + root +
           " directly";
  }
  out.resize(static_cast<size_t>(info.st_size));
  size_t done = 0;
  while (done < out.size()) {
    auto n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    done += static_cast<size_t>(n);
  }
  out.resize(done);
  ::close(fd);
  return {};
}

namespace {

bool all_digits(const std::string& text) {
  return !text.empty() && text.size() < 10 &&
         std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

} // namespace

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

void add_rehash_credit(uint64_t& credit, uint64_t tree_bytes, int64_t interval_ms) {
  // At least 64 KiB per tick, so a tiny tree still moves along.
  constexpr uint64_t min_share = 64 * 1024;
  auto share = tree_bytes * static_cast<uint64_t>(replication_tick.count()) /
               static_cast<uint64_t>(std::max<int64_t>(interval_ms, 1));
  credit = std::min(credit + std::max(share, min_share), tree_bytes + min_share);
}

void follow_peer(caf::scheduled_actor* self, caf::actor& current, const caf::actor& next) {
  if (current == next)
    return;
  if (current)
    self->demonitor(current);
  current = next;
  if (current)
    self->monitor(current);
}

int64_t local_uid(const std::string& owner) {
  if (owner.empty())
    return -1;
  if (all_digits(owner))
    return std::stoll(owner);
  struct passwd entry {};
  struct passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(owner.c_str(), &entry, buffer.data(), buffer.size(), &found) == 0 && found)
    return found->pw_uid;
  return -1;
}

int64_t local_gid(const std::string& group) {
  if (group.empty())
    return -1;
  if (all_digits(group))
    return std::stoll(group);
  struct group entry {};
  struct group* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found) == 0 && found)
    return found->gr_gid;
  return -1;
}

std::string ensure_directory(const std::string& dir) {
  boost::system::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    return "cannot create '" + dir + "': " + ec.message();
  return {};
}

} // namespace mc
