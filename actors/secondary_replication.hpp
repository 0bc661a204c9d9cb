// Replication actor of a secondary. It says hello to the primary when the
// node joins, takes each replication_signal, compares the primary's file
// list with its own, pulls what differs in bounded chunks with a few
// requests in flight, verifies and writes files in durable batches, applies
// modes and deletions, and reports progress. Local edits (inotify plus a
// periodic rescan) are overwritten with the primary's copy, with a warning.
// Spawned detached by the supervisor: writing and hashing block.
//
//   idle --signal / local edit--> syncing --all files written--> idle
//                                    |  ^
//              disk full, primary lost v  | retry timer, new signal
//                                  error / waiting
#pragma once

#include <deque>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>

#include "caf/actor.hpp"
#include "caf/behavior.hpp"
#include "caf/group.hpp"
#include "caf/stateful_actor.hpp"

#include "messages/replication.hpp"
#include "runtime/batch_writer.hpp"
#include "runtime/file_list.hpp"
#include "runtime/node_context.hpp"
#include "runtime/tree_watcher.hpp"

namespace mc {

/// One transfer from the primary's list of one generation.
struct replication_job {
  uint64_t generation = 0;
  /// Files to fetch, in order, and the next byte to ask for.
  std::vector<file_entry> fetch;
  size_t next_file = 0;
  uint64_t next_offset = 0;
  /// Fetch requests sent and without a reply yet.
  int in_flight = 0;
  /// Finished files not committed yet, and their bytes.
  std::vector<file_entry> uncommitted;
  uint64_t uncommitted_bytes = 0;
  int64_t last_commit_ms = 0;
  uint64_t files_done = 0;
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;
  /// Files that failed (changed on the primary meanwhile, unreadable);
  /// the job then does not count as applied.
  uint64_t failed = 0;
  /// Local files deleted before the fetch.
  uint64_t removed = 0;
  int64_t started_ms = 0;
  int64_t last_progress_ms = 0;
  int64_t last_report_ms = 0;
  /// Time the last fetch was sent or got its reply.
  int64_t last_reply_ms = 0;
};

struct secondary_replication_state {
  node_context_ptr context;
  std::string root;
  exclusion_rules rules;
  /// Files on disk, as of the last scan or write.
  file_list local;
  /// The primary's list of the last applied generation.
  file_list applied;
  uint64_t applied_generation = 0;
  /// The primary's newest list, from the last signal.
  replication_signal target;
  bool have_target = false;
  caf::actor primary;
  std::string primary_node;
  std::unique_ptr<batch_writer> writer;
  std::unique_ptr<replication_job> job;
  /// Changed paths reported by the watcher and not yet rescanned.
  std::vector<std::string> dirty;
  /// Next index of `local` that the rolling rehash reads.
  size_t rehash_cursor = 0;
  /// Bytes the rolling rehash may read before the next tick's share.
  uint64_t rehash_credit = 0;
  uint64_t unsafe_refused = 0;
  /// Users and groups of the primary unknown here, each logged once.
  std::set<std::string> unknown_names;
  int64_t last_job_ms = -1;
  std::string error;
  /// Steady-clock times (ms) of the next retry (0 = none) and full rescan.
  int64_t retry_at_ms = 0;
  int64_t next_rescan_ms = 0;
  /// The saved applied list is older than `applied`; saved by the tick.
  bool applied_dirty = false;
  int64_t last_applied_save_ms = 0;
  std::unique_ptr<tree_watcher> watcher;
  caf::group events;
  static inline const char* name = "secondary_replication";

  /// Saves an applied list newer than the saved one (on a clean stop).
  ~secondary_replication_state();
};

caf::behavior secondary_replication(caf::stateful_actor<secondary_replication_state>* self,
                                    node_context_ptr context);

} // namespace mc
