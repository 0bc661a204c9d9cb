// Helpers that both replication actors share: the exclusion rules of a
// node, list comparison, the text of `mailclusterctl config list`, and
// reading one file of the managed directory without following links.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "caf/actor.hpp"
#include "caf/fwd.hpp"

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

/// Period of the ticker that drives the timers of both replication actors
/// (see actors/ticker.hpp for why these detached actors use no
/// delayed_send).
constexpr std::chrono::milliseconds replication_tick{250};

/// Returns the steady clock in milliseconds.
int64_t steady_ms();

/// Adds one tick's share of the tree's bytes to the rolling rehash's
/// credit (see rehash_slice()), so that every byte is read once per
/// rescan interval. The credit is capped at one interval's worth.
void add_rehash_credit(uint64_t& credit, uint64_t tree_bytes, int64_t interval_ms);

/// Makes `next` the peer in `current`: stops monitoring the old one and
/// monitors the new one. Does nothing if they are the same actor.
void follow_peer(caf::scheduled_actor* self, caf::actor& current, const caf::actor& next);

/// Returns the local user id of `owner` and group id of `group` (names, or
/// numeric ids), or -1 for an empty or unknown name.
int64_t local_uid(const std::string& owner);
int64_t local_gid(const std::string& group);

/// Creates `dir` and its parents if missing. Returns "" or the reason.
std::string ensure_directory(const std::string& dir);

} // namespace mc
