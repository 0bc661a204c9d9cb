// The replication file list of a managed configuration directory: every
// regular file with its relative path, size, mode, modification time and
// SHA-256, walked with Boost.Filesystem. The primary builds it; secondaries
// compare it with their own to find what to fetch and what to delete.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mc {

/// One regular file of the managed directory.
struct file_entry {
  /// Path relative to the managed directory, '/'-separated.
  std::string path;
  uint64_t size = 0;
  /// Permission bits (st_mode & 07777).
  uint32_t mode = 0;
  /// Modification time, nanoseconds since the Unix epoch.
  int64_t mtime_ns = 0;
  /// Lower-case hex SHA-256 of the content.
  std::string sha256;
  /// Owner and group names (numeric ids where the name is unknown). Empty
  /// on a secondary means "any": the name does not exist there, or the
  /// node cannot change owners.
  std::string owner;
  std::string group;
};

/// True if the mode matches and the owner and group match or either side
/// is empty ("any").
bool same_attributes(const file_entry& x, const file_entry& y);

/// Files of a scan, sorted by path.
using file_list = std::vector<file_entry>;

/// Paths that are never replicated.
struct exclusion_rules {
  /// Names of top-level entries (files or folders) that are skipped whole,
  /// e.g. "Users" or "Public Folders".
  std::vector<std::string> top_level;
  /// File name suffixes that are skipped anywhere, e.g. ".lock".
  std::vector<std::string> suffixes;
  /// Absolute paths inside the tree that are skipped (the node's own state
  /// and log directories when they live there).
  std::vector<std::string> absolute;
};

/// Returns the default rules: the shared folders (Users, Public Folders,
/// LockFiles, PEM, Archives, Digests, Gateways, Queues) and lock files.
exclusion_rules default_exclusions();

/// Result of scan_tree().
struct scan_result {
  file_list files;
  uint64_t bytes = 0;
  /// Files that could not be read, each with the reason; they are left out
  /// of `files` so that the rest still replicates.
  std::vector<std::string> errors;
};

/// Walks `root` and returns its file list. Files whose size and mtime equal
/// those in `previous` keep their old hash instead of being read again.
/// Symbolic links and special files are skipped.
scan_result scan_tree(const std::string& root, const exclusion_rules& rules,
                      const file_list& previous = {});

/// Returns true if `relative` (a '/'-separated path below the managed
/// directory) is excluded by `rules`, or is a temporary file of a batch.
bool is_excluded(const exclusion_rules& rules, const std::string& root,
                 const std::string& relative);

/// Updates `list` (sorted by path) for the paths in `dirty`, which are
/// relative paths of files or folders that changed: each is stat'ed again
/// (and folders walked), and entries that are gone are dropped. Hashes are
/// reused as in scan_tree(). Returns the errors, as scan_tree() does.
std::vector<std::string> rescan_paths(const std::string& root, const exclusion_rules& rules,
                                      file_list& list, const std::vector<std::string>& dirty);

/// Removes the temporary files (".mc-tmp.*") that a batch left behind when
/// its process was killed. Does not follow symbolic links. Returns how many
/// were removed.
size_t remove_temporary_files(const std::string& root);

/// Reads files of `list` from index `cursor` on (wrapping at the end)
/// while their sizes fit in `credit` bytes, takes their sizes from
/// `credit` and advances `cursor`. Returns the paths whose content no
/// longer matches their SHA-256 although size and modification time do.
/// Called on every tick with credit added in proportion to the tree's
/// size, it reads every file once per rescan interval without reading the
/// whole tree at once. A file larger than one tick's credit waits until
/// enough credit has built up.
std::vector<std::string> rehash_slice(const std::string& root, const file_list& list,
                                      size_t& cursor, uint64_t& credit);

/// Total size of the files in `list`.
uint64_t total_bytes(const file_list& list);

/// Writes `list` with its generation to `file` atomically and durably.
/// Returns "" or the reason.
std::string save_file_list(const std::string& file, uint64_t generation, const file_list& list);

/// Reads what save_file_list() wrote. Returns "" or the reason; a missing
/// file is not an error and gives generation 0 and an empty list.
std::string load_file_list(const std::string& file, uint64_t& generation, file_list& list);

/// Differences between a local list and the primary's list.
struct file_list_diff {
  /// Paths whose content differs or that are missing locally.
  std::vector<std::string> fetch;
  /// Paths whose content matches but whose mode, owner or group differs.
  std::vector<std::string> change_mode;
  /// Local paths that the primary does not have.
  std::vector<std::string> remove;
};

/// Compares two lists sorted by path (as scan_tree() returns them).
file_list_diff diff_file_lists(const file_list& local, const file_list& primary);

/// Checks a relative path received from a peer before it is used: returns
/// "" if safe, else the reason. Rejects empty and absolute paths, "." and
/// ".." components, empty components, NUL bytes, backslashes, components
/// over 255 bytes and paths over 4096 bytes.
std::string check_relative_path(const std::string& path);

} // namespace mc
