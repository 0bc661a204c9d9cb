// Helpers that both replication actors share: the exclusion rules of a
// node, list comparison, the text of `mailclusterctl config list`, and
// reading one file of the managed directory without following links.
#pragma once

#include <string>

#include "runtime/config.hpp"
#include "runtime/file_list.hpp"

namespace mc {

/// Default exclusions plus the node's replication.exclude and
/// replication.exclude-suffix, and its state and log folders when they lie
/// inside the managed directory.
exclusion_rules node_exclusions(const node_config& config);

/// True if both lists hold the same paths with the same size, SHA-256 and
/// attributes (see same_attributes(); modification times are not
/// compared).
bool same_content(const file_list& x, const file_list& y);

/// One line per file: mode (octal), size, modification time (ISO 8601)
/// and path.
std::string format_listing(const file_list& list);

/// Reads the file at `relative` below `root` into `out`, refusing unsafe
/// paths and symbolic links anywhere on the way. Returns "" or the reason.
std::string read_managed_file(const std::string& root, const std::string& relative,
                              std::string& out, uint64_t max_size);

/// Opens the file at `relative` below `root` for reading without following
/// symbolic links. Returns the descriptor or -1 with errno set.
int open_managed_file(const std::string& root, const std::string& relative);

/// Returns the local user id of `owner` and group id of `group` (names, or
/// numeric ids), or -1 for an empty or unknown name.
int64_t local_uid(const std::string& owner);
int64_t local_gid(const std::string& group);

/// Creates `dir` and its parents if missing. Returns "" or the reason.
std::string ensure_directory(const std::string& dir);

} // namespace mc
