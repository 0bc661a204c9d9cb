#include "runtime/batch_writer.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
  int fd = ::dup(root_fd_);
  size_t start = 0;
  for (;;) {
    auto slash = relative.find('/', start);
    if (slash == std::string::npos)
      break;
    auto component = relative.substr(start, slash - start);
    if (create && ::mkdirat(fd, component.c_str(), 0755) != 0 && errno != EEXIST) {
      auto error = "cannot create directory '" + relative.substr(0, slash) + "': " + errno_text();
      ::close(fd);
      return error;
    }
    int next = ::openat(fd, component.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (next < 0) {
      auto error =
        "cannot open directory '" + relative.substr(0, slash) + "': " + errno_text() +
        (errno == ELOOP || errno == ENOTDIR ? " (a symbolic link or a file is in the way)" : "");
      ::close(fd);
      return error;
    }
    ::close(fd);
    fd = next;
    start = slash + 1;
  }
  dir_fd = fd;
  name = relative.substr(start);
  return {};
}

std::string batch_writer::begin(const std::string& relative, uint32_t mode) {
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
  if (current_fd_ < 0) {
    auto error = "cannot create a temporary file for '" + relative + "': " + errno_text();
    ::close(file.dir_fd);
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
  auto closed = ::close(current_fd_);
  current_fd_ = -1;
  if (closed != 0) {
    auto error = "cannot close '" + current_.relative + "': " + errno_text();
    discard(current_);
    return error;
  }
  if (hex != expected_sha256) {
    discard(current_);
    return "SHA-256 of '" + current_.relative + "' is " + hex + ", expected " + expected_sha256;
  }
  finished_.push_back(std::move(current_));
  current_ = pending_file{};
  return {};
}

std::string batch_writer::commit() {
  if (finished_.empty())
    return {};
  // One barrier for the whole batch: the data of every temporary file is on
  // disk before any rename makes it visible.
  if (::syncfs(root_fd_) != 0) {
    auto error = "cannot sync '" + root_ + "' to disk: " + errno_text();
    abort();
    return error;
  }
  std::set<int> directories;
  std::string error;
  for (auto& file : finished_) {
    if (!error.empty()) {
      discard(file);
      continue;
    }
    if (::renameat(file.dir_fd, file.temporary.c_str(), file.dir_fd, file.name.c_str()) != 0) {
      error = "cannot rename into '" + file.relative + "': " + errno_text();
      discard(file);
      continue;
    }
    directories.insert(file.dir_fd);
  }
  for (int fd : directories)
    ::fsync(fd);
  for (auto& file : finished_)
    if (file.dir_fd >= 0)
      ::close(file.dir_fd);
  finished_.clear();
  return error;
}

void batch_writer::discard(pending_file& file) {
  if (file.dir_fd >= 0) {
    ::unlinkat(file.dir_fd, file.temporary.c_str(), 0);
    ::close(file.dir_fd);
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
  if (::unlinkat(dir_fd, name.c_str(), 0) != 0 && errno != ENOENT) {
    auto error = "cannot remove '" + relative + "': " + errno_text();
    ::close(dir_fd);
    return error;
  }
  ::fsync(dir_fd);
  ::close(dir_fd);
  // Drop parent folders that are empty now; rmdir fails on the first one
  // that still holds something, which ends the walk.
  auto parent = relative;
  for (auto slash = parent.rfind('/'); slash != std::string::npos; slash = parent.rfind('/')) {
    parent.resize(slash);
    if (::unlinkat(root_fd_, parent.c_str(), AT_REMOVEDIR) != 0)
      break;
  }
  return {};
}

std::string batch_writer::set_mode(const std::string& relative, uint32_t mode) {
  if (auto reason = check_relative_path(relative); !reason.empty())
    return "unsafe path '" + relative + "': " + reason;
  int dir_fd = -1;
  std::string name;
  if (auto error = open_parent(relative, dir_fd, name, false); !error.empty())
    return error;
  int fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  std::string error;
  if (fd < 0 || ::fchmod(fd, mode & 07777) != 0)
    error = "cannot change the mode of '" + relative + "': " + errno_text();
  if (fd >= 0)
    ::close(fd);
  ::close(dir_fd);
  return error;
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
}

} // namespace mc
