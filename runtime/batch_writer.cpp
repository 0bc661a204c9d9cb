#include "runtime/batch_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <openssl/evp.h>

#include "runtime/file_list.hpp"
#include "runtime/tls.hpp"

namespace mc {

struct batch_writer::digest_state {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx{EVP_MD_CTX_new(), EVP_MD_CTX_free};
};

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

// Returns a name for a temporary file next to `name`; the random part keeps
// concurrent or leftover batches apart.
std::string temporary_name(const std::string& name) {
  auto random = tls::hex_encode(tls::random_bytes(6));
  auto prefix = name.substr(0, 200);
  return ".mc-tmp." + random + "." + prefix;
}

} // namespace

batch_writer::batch_writer(std::string root) : root_(std::move(root)) {
  root_fd_ = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

batch_writer::~batch_writer() {
  abort();
  if (root_fd_ >= 0)
    ::close(root_fd_);
}

std::string batch_writer::open_parent(const std::string& relative, int& dir_fd, std::string& name,
                                      bool create) {
  if (root_fd_ < 0)
    return "cannot open directory '" + root_ + "'";
  auto slash = relative.rfind('/');
  name = slash == std::string::npos ? relative : relative.substr(slash + 1);
  auto parent = slash == std::string::npos ? std::string{} : relative.substr(0, slash);
  if (auto i = folders_.find(parent); i != folders_.end()) {
    dir_fd = i->second;
    return {};
  }
  // Walk down from the deepest folder already open.
  int fd = root_fd_;
  size_t start = 0;
  for (auto prefix = parent; !prefix.empty();) {
    if (auto i = folders_.find(prefix); i != folders_.end()) {
      fd = i->second;
      start = prefix.size() + 1;
      break;
    }
    auto cut = prefix.rfind('/');
    prefix.resize(cut == std::string::npos ? 0 : cut);
  }
  while (start < parent.size()) {
    auto end = std::min(parent.find('/', start), parent.size());
    auto component = parent.substr(start, end - start);
    auto flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int next = ::openat(fd, component.c_str(), flags);
    if (next < 0 && (errno == ELOOP || errno == ENOTDIR) && create) {
      // A symbolic link or a file where the tree needs a folder: remove it
      // (never its target) and create the folder.
      struct stat info {};
      bool link =
        ::fstatat(fd, component.c_str(), &info, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(info.st_mode);
      if (::unlinkat(fd, component.c_str(), 0) == 0)
        replaced_.emplace_back(parent.substr(0, end), link);
      errno = ENOENT;
    }
    if (next < 0 && errno == ENOENT && create) {
      if (::mkdirat(fd, component.c_str(), 0755) != 0 && errno != EEXIST)
        return "cannot create directory '" + parent.substr(0, end) + "': " + errno_text();
      next = ::openat(fd, component.c_str(), flags);
    }
    if (next < 0)
      return "cannot open directory '" + parent.substr(0, end) + "': " + errno_text() +
             (errno == ELOOP || errno == ENOTDIR ? " (a symbolic link or a file is in the way)"
                                                 : "");
    folders_[parent.substr(0, end)] = next;
    fd = next;
    start = end + 1;
  }
  dir_fd = fd;
  return {};
}

void batch_writer::close_folders() {
  // The file being written (a commit can come between its chunks) keeps
  // its folder open.
  for (auto i = folders_.begin(); i != folders_.end();) {
    if (current_fd_ >= 0 && i->second == current_.dir_fd) {
      ++i;
      continue;
    }
    ::close(i->second);
    i = folders_.erase(i);
  }
}

void batch_writer::forget_folder(const std::string& relative) {
  for (auto i = folders_.begin(); i != folders_.end();) {
    if (i->first == relative || i->first.rfind(relative + "/", 0) == 0) {
      ::close(i->second);
      i = folders_.erase(i);
    } else {
      ++i;
    }
  }
}

std::string batch_writer::begin(const std::string& relative, uint32_t mode, int64_t uid,
                                int64_t gid) {
  if (current_fd_ >= 0)
    return "a file is still open in this batch";
  if (auto reason = check_relative_path(relative); !reason.empty())
    return "unsafe path '" + relative + "': " + reason;
  pending_file file;
  file.relative = relative;
  if (auto error = open_parent(relative, file.dir_fd, file.name); !error.empty())
    return error;
  file.temporary = temporary_name(file.name);
  current_fd_ = ::openat(file.dir_fd, file.temporary.c_str(),
                         O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (current_fd_ < 0)
    return "cannot create a temporary file for '" + relative + "': " + errno_text();
  // Owner first: chown clears the set-user-ID and set-group-ID bits.
  if ((uid >= 0 || gid >= 0) &&
      ::fchown(current_fd_, static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0) {
    auto error = "cannot give '" + relative + "' its owner and group: " + errno_text();
    ::close(current_fd_);
    current_fd_ = -1;
    ::unlinkat(file.dir_fd, file.temporary.c_str(), 0);
    return error;
  }
  ::fchmod(current_fd_, mode & 07777);
  current_ = std::move(file);
  digest_ = std::make_unique<digest_state>();
  EVP_DigestInit_ex(digest_->ctx.get(), EVP_sha256(), nullptr);
  return {};
}

std::string batch_writer::append(const char* data, size_t size) {
  if (current_fd_ < 0)
    return "no file is open in this batch";
  EVP_DigestUpdate(digest_->ctx.get(), data, size);
  while (size > 0) {
    auto n = ::write(current_fd_, data, size);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto error = "cannot write '" + current_.relative + "': " + errno_text();
      ::close(current_fd_);
      current_fd_ = -1;
      discard(current_);
      return error;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return {};
}

std::string batch_writer::finish(const std::string& expected_sha256, int64_t mtime_ns) {
  if (current_fd_ < 0)
    return "no file is open in this batch";
  if (mtime_ns >= 0) {
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = static_cast<time_t>(mtime_ns / 1000000000);
    times[1].tv_nsec = static_cast<long>(mtime_ns % 1000000000);
    ::futimens(current_fd_, times);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_DigestFinal_ex(digest_->ctx.get(), digest, &length);
  auto hex = tls::hex_encode(std::string(reinterpret_cast<char*>(digest), length));
  // The first few files stay open so that a small batch can fdatasync them.
  int fd = current_fd_;
  current_fd_ = -1;
  if (hex != expected_sha256) {
    ::close(fd);
    discard(current_);
    return "SHA-256 of '" + current_.relative + "' is " + hex + ", expected " + expected_sha256;
  }
  if (finished_.size() < small_batch) {
    current_.fd = fd;
  } else if (::close(fd) != 0) {
    auto error = "cannot close '" + current_.relative + "': " + errno_text();
    discard(current_);
    return error;
  }
  finished_.push_back(std::move(current_));
  current_ = pending_file{};
  return {};
}

std::string batch_writer::commit() {
  if (finished_.empty())
    return {};
  // A small batch syncs its own files and folders: syncfs() would also
  // wait for every other process's dirty data on the file system. A large
  // batch uses one syncfs() barrier, far cheaper than one fsync per file.
  bool small = finished_.size() <= small_batch;
  // Files past the first few were closed by finish(); see small_batch.
  std::string error;
  if (small) {
    for (auto& file : finished_)
      if (::fdatasync(file.fd) != 0 && error.empty())
        error = "cannot sync '" + file.relative + "' to disk: " + errno_text();
  } else if (::syncfs(root_fd_) != 0) {
    error = "cannot sync '" + root_ + "' to disk: " + errno_text();
  }
  if (!error.empty()) {
    abort();
    return error;
  }
  // Every file's data is on disk before any rename makes it visible.
  std::set<int> folders;
  for (auto& file : finished_) {
    if (file.fd >= 0)
      ::close(file.fd);
    file.fd = -1;
    if (!error.empty()) {
      discard(file);
      continue;
    }
    if (::renameat(file.dir_fd, file.temporary.c_str(), file.dir_fd, file.name.c_str()) != 0) {
      error = "cannot rename into '" + file.relative + "': " + errno_text();
      discard(file);
      continue;
    }
    folders.insert(file.dir_fd);
  }
  // Then the renames themselves are made durable.
  if (small) {
    for (int fd : folders)
      if (::fsync(fd) != 0 && error.empty())
        error = "cannot sync a folder of '" + root_ + "' to disk: " + errno_text();
  } else if (::syncfs(root_fd_) != 0 && error.empty()) {
    error = "cannot sync '" + root_ + "' to disk: " + errno_text();
  }
  finished_.clear();
  close_folders();
  return error;
}

void batch_writer::discard(pending_file& file) {
  if (file.fd >= 0) {
    ::close(file.fd);
    file.fd = -1;
  }
  if (file.dir_fd >= 0) {
    ::unlinkat(file.dir_fd, file.temporary.c_str(), 0);
    file.dir_fd = -1;
  }
}

void batch_writer::cancel_current() {
  if (current_fd_ >= 0) {
    ::close(current_fd_);
    current_fd_ = -1;
    discard(current_);
  }
}

std::string batch_writer::remove(const std::string& relative) {
  if (auto reason = check_relative_path(relative); !reason.empty())
    return "unsafe path '" + relative + "': " + reason;
  int dir_fd = -1;
  std::string name;
  if (auto error = open_parent(relative, dir_fd, name, false); !error.empty())
    return errno == ENOENT ? std::string{} : error;
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT)
    return "cannot remove '" + relative + "': " + errno_text();
  // Drop parent folders that are empty now. rmdir fails on the first one
  // that still contains something, which ends the walk.
  auto parent = relative;
  for (auto slash = parent.rfind('/'); slash != std::string::npos; slash = parent.rfind('/')) {
    parent.resize(slash);
    if (::unlinkat(root_fd_, parent.c_str(), AT_REMOVEDIR) != 0)
      break;
    forget_folder(parent);
  }
  return {};
}

std::string batch_writer::set_mode(const std::string& relative, uint32_t mode, int64_t uid,
                                   int64_t gid) {
  if (auto reason = check_relative_path(relative); !reason.empty())
    return "unsafe path '" + relative + "': " + reason;
  int dir_fd = -1;
  std::string name;
  if (auto error = open_parent(relative, dir_fd, name, false); !error.empty())
    return error;
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  std::string error;
  if (fd >= 0 && (uid >= 0 || gid >= 0) &&
      ::fchown(fd, static_cast<uid_t>(uid), static_cast<gid_t>(gid)) != 0)
    error = "cannot change the owner of '" + relative + "': " + errno_text();
  else if (fd < 0 || ::fchmod(fd, mode & 07777) != 0)
    error = "cannot change the mode of '" + relative + "': " + errno_text();
  if (fd >= 0)
    ::close(fd);
  return error;
}

std::vector<std::pair<std::string, bool>> batch_writer::take_replaced() {
  return std::exchange(replaced_, {});
}

std::string batch_writer::sync() {
  if (::syncfs(root_fd_) != 0)
    return "cannot sync '" + root_ + "' to disk: " + errno_text();
  return {};
}

void batch_writer::abort() {
  if (current_fd_ >= 0) {
    ::close(current_fd_);
    current_fd_ = -1;
    discard(current_);
  }
  for (auto& file : finished_)
    discard(file);
  finished_.clear();
  close_folders();
}

} // namespace mc
