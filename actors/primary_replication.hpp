// Replication actor of the primary. It keeps the file list of the managed
// configuration directory current, with inotify plus a debounce and a
// periodic rescan, and numbers each change with a generation that survives
// restarts.
//
// It signals every secondary that sent a hello, serves their
// fetch_requests, collects their reports for status, and runs the `config`
// admin commands. The supervisor spawns it as a detached actor, because
// scanning and reading files block.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>

#include "caf/actor.hpp"
#include "caf/behavior.hpp"
#include "caf/stateful_actor.hpp"

#include "messages/replication.hpp"
#include "runtime/file_list.hpp"
#include "runtime/node_context.hpp"
#include "runtime/tree_watcher.hpp"

namespace mc {

/// A secondary in the primary's replication table.
struct replica_entry {
  caf::actor handle;
  /// Last report of the secondary.
  replication_status status;
  /// Generation of the last signal sent to it; a change signal is based
  /// on it.
  uint64_t signalled = 0;
};

struct primary_replication_state {
  node_context_ptr context;
  std::string root;
  exclusion_rules rules;
  file_list files;
  /// Index of `files` by path, for checking fetch requests.
  std::unordered_map<std::string, size_t> index;
  uint64_t generation = 0;
  int64_t built_ms = 0;
  /// When each recent generation was built, for the lag in status.
  std::map<uint64_t, int64_t> built_at;
  std::map<std::string, replica_entry> replicas;
  /// Paths whose read errors were logged already, so each is logged once.
  std::set<std::string> logged_errors;
  std::unique_ptr<tree_watcher> watcher;
  /// Steady-clock time (ms) of the next full rescan.
  int64_t next_rescan_ms = 0;
  /// The saved file list is older than `files`; saved by the tick.
  bool list_dirty = false;
  /// The directory was empty at startup although the saved list was not;
  /// nothing is signalled until files appear.
  bool paused_empty = false;
  /// Next index of `files` that the rolling rehash reads.
  size_t rehash_cursor = 0;
  /// Bytes the rolling rehash may read before the next tick's share.
  uint64_t rehash_credit = 0;
  int64_t last_list_save_ms = 0;
  /// Writes the file list in the background, so that a saved list trails
  /// the generation by milliseconds without delaying fetches.
  std::thread saver;
  /// Open descriptor of <state-dir>/replication/generation.
  int generation_fd = -1;
  static inline const char* name = "primary_replication";

  /// Saves a list newer than the saved one (on a clean stop) and closes
  /// the generation file.
  ~primary_replication_state();
};

/// Files of at most this size are transferred by `config get` and `put`.
constexpr uint64_t max_admin_file_size = 16 * 1024 * 1024;

caf::behavior primary_replication(caf::stateful_actor<primary_replication_state>* self,
                                  node_context_ptr context);

} // namespace mc
