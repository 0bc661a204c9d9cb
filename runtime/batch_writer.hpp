// Atomic, durable writes of a batch of files below one root directory.
//
// Each file is written to a temporary file in its target directory. When
// the batch is committed, its data is synced, each temporary file is
// renamed over its target, and the renames are synced. A reader therefore
// sees every file either wholly old or wholly new.
//
// A large batch uses one syncfs() for each of the two steps. On the 2-core
// test VM, 256 fdatasync calls took about 1 s and one syncfs about 20 ms.
// A batch of at most small_batch files syncs its own files and folders
// instead, because syncfs() also waits for other processes' dirty data.
//
// Paths come from peers, so every directory below the root is opened with
// O_NOFOLLOW: a symbolic link planted in the tree cannot redirect a write
// outside it. begin() replaces such a link (or a file) by a folder.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace mc {

class batch_writer {
public:
  /// Writes below `root`, which must exist.
  explicit batch_writer(std::string root);

  /// Removes the temporary files of an uncommitted batch.
  ~batch_writer();

  batch_writer(const batch_writer&) = delete;
  batch_writer& operator=(const batch_writer&) = delete;

  /// Starts a file at `relative` (checked with check_relative_path()),
  /// creating missing parent directories. Returns "" or the reason.
  /// The file gets `uid` and `gid` unless they are negative.
  std::string begin(const std::string& relative, uint32_t mode, int64_t uid = -1, int64_t gid = -1);

  /// Appends to the file begun last. Returns "" or the reason (e.g. ENOSPC).
  std::string append(const char* data, size_t size);

  /// Closes the file begun last and checks its SHA-256 against
  /// `expected_sha256` (lower-case hex). Sets the modification time to
  /// `mtime_ns` (nanoseconds since the epoch) unless it is negative.
  /// Returns "" or the reason; on a mismatch the temporary file is removed.
  std::string finish(const std::string& expected_sha256, int64_t mtime_ns = -1);

  /// Drops the file begun last, if any, and removes its temporary file.
  void cancel_current();

  /// True while a file is begun and not finished.
  bool writing() const { return current_fd_ >= 0; }

  /// Removes the file at `relative`, then each parent folder that became
  /// empty, up to the root. A missing file is not an error. Never follows
  /// a symbolic link. Returns "" or the reason. Call sync() after a series
  /// of removals to make them durable.
  std::string remove(const std::string& relative);

  /// Sets the permission bits of the file at `relative`, and its owner and
  /// group unless `uid` or `gid` is negative, without following symbolic
  /// links. Returns "" or the reason.
  std::string set_mode(const std::string& relative, uint32_t mode, int64_t uid = -1,
                       int64_t gid = -1);

  /// Syncs the data of every finished file, renames each over its target
  /// and syncs the directories. Returns "" or the reason; files renamed
  /// before a failure stay renamed, the rest are removed.
  std::string commit();

  /// Returns and clears the paths where begin() found a symbolic link
  /// (true) or a file (false) in place of a folder and replaced it by a
  /// folder. Nothing is ever written through such a link.
  std::vector<std::pair<std::string, bool>> take_replaced();

  /// Makes removals and mode changes durable (one syncfs). Returns "" or
  /// the reason.
  std::string sync();

  /// Removes the temporary files of the batch.
  void abort();

  /// Number of finished files waiting for commit().
  size_t pending() const { return finished_.size(); }

  /// Batches of at most this many files sync each file and folder instead
  /// of the whole file system.
  static constexpr size_t small_batch = 8;

private:
  struct pending_file {
    std::string relative;
    std::string temporary;
    /// Borrowed from folders_.
    int dir_fd = -1;
    /// The temporary file, kept open for fdatasync in a small batch.
    int fd = -1;
    std::string name;
  };

  /// Returns in `dir_fd` an open descriptor of the parent folder of
  /// `relative` (owned by folders_) and in `name` the last component.
  std::string open_parent(const std::string& relative, int& dir_fd, std::string& name,
                          bool create = true);
  void discard(pending_file& file);
  void close_folders();
  void forget_folder(const std::string& relative);

  /// Open folders by relative path ("" = root), kept until commit() or
  /// abort() so that files of one folder share one descriptor.
  std::map<std::string, int> folders_;
  std::vector<std::pair<std::string, bool>> replaced_;

  std::string root_;
  int root_fd_ = -1;
  /// The file being written, if any.
  int current_fd_ = -1;
  pending_file current_;
  struct digest_state;
  std::unique_ptr<digest_state> digest_;
  std::vector<pending_file> finished_;
};

} // namespace mc
