// Messages of configuration replication and of service discovery between
// the primary and its secondaries. See docs/protocol.md, "Configuration
// replication".
//
// Discovery: a service actor of a secondary (replication, mail relay) sends
// service_hello to the primary's membership actor. The primary checks that
// the sender sits on the connection of a joined member and hands the
// sender's handle to its own service of that name as a service_peer.
//
// Replication: the primary sends each secondary a replication_signal with
// its file list, whole or as the changes since the last one. The secondary
// pulls what differs with fetch_requests (a few in flight, each of bounded
// size), writes the files, and sends a replication_report after each step.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/meta/type_name.hpp"

#include "runtime/file_list.hpp"

namespace mc {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, file_entry& x) {
  return f(caf::meta::type_name("file_entry"), x.path, x.size, x.mode, x.mtime_ns, x.sha256,
           x.owner, x.group);
}

/// secondary service -> primary membership: "this is my <service> actor".
struct service_hello {
  std::string node;
  uint64_t incarnation = 0;
  /// "replication" or "relay".
  std::string service;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_hello& x) {
  return f(caf::meta::type_name("service_hello"), x.node, x.incarnation, x.service);
}

/// primary membership -> local service (never leaves the node): a joined
/// secondary's actor for this service.
struct service_peer {
  std::string node;
  caf::actor handle;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_peer& x) {
  return f(caf::meta::type_name("service_peer"), x.node, x.handle);
}

/// local service -> primary membership: the service_peer of every online
/// member that said hello for `service` (used after a service restarts).
struct service_peers_request {
  std::string service;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, service_peers_request& x) {
  return f(caf::meta::type_name("service_peers_request"), x.service);
}

/// primary replication -> secondary replication: the current file list,
/// whole or as the changes since the generation the secondary last got.
struct replication_signal {
  std::string primary_node;
  uint64_t generation = 0;
  /// Wall-clock time the list was built, milliseconds since the epoch.
  int64_t built_ms = 0;
  /// Generation the change list is based on. With 0, `files` is the whole
  /// list. Otherwise `files` contains the entries added or changed since
  /// `base_generation` and `removed` the paths dropped since then. A
  /// secondary without that generation replies with a full_list_request.
  uint64_t base_generation = 0;
  file_list files;
  std::vector<std::string> removed;
  /// The primary's replication.exclude and replication.exclude-suffix: a
  /// secondary leaves its own files there alone instead of deleting them.
  std::vector<std::string> exclude;
  std::vector<std::string> exclude_suffix;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replication_signal& x) {
  return f(caf::meta::type_name("replication_signal"), x.primary_node, x.generation, x.built_ms,
           x.base_generation, x.files, x.removed, x.exclude, x.exclude_suffix);
}

/// secondary -> primary replication: send the whole list (the secondary
/// missed the base of a change signal).
struct full_list_request {
  std::string node;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, full_list_request& x) {
  return f(caf::meta::type_name("full_list_request"), x.node);
}

/// secondary -> primary replication: these files did not match their
/// listed SHA-256; read them again (an edit that kept size and
/// modification time is invisible to the primary's stat-based check).
struct rehash_request {
  std::string node;
  std::vector<std::string> paths;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rehash_request& x) {
  return f(caf::meta::type_name("rehash_request"), x.node, x.paths);
}

/// One byte range of one file.
struct fetch_item {
  std::string path;
  uint64_t offset = 0;
  uint32_t length = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fetch_item& x) {
  return f(caf::meta::type_name("fetch_item"), x.path, x.offset, x.length);
}

/// secondary -> primary replication: a request for these ranges. The reply
/// is a fetch_reply with one chunk per item, in the same order.
struct fetch_request {
  uint64_t generation = 0;
  std::vector<fetch_item> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fetch_request& x) {
  return f(caf::meta::type_name("fetch_request"), x.generation, x.items);
}

struct file_chunk {
  std::string path;
  uint64_t offset = 0;
  std::string data;
  /// Reason the range could not be read (file gone, unreadable), or empty.
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, file_chunk& x) {
  return f(caf::meta::type_name("file_chunk"), x.path, x.offset, x.data, x.error);
}

struct fetch_reply {
  std::vector<file_chunk> chunks;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, fetch_reply& x) {
  return f(caf::meta::type_name("fetch_reply"), x.chunks);
}

/// Replication state of one node, as shown by status.
struct replication_status {
  /// Primary: current generation. Secondary: last applied generation.
  uint64_t applied_generation = 0;
  /// Newest generation of the primary that reached the node.
  uint64_t primary_generation = 0;
  /// Generations behind the primary, and for how long, in milliseconds
  /// (0 when current).
  uint64_t lag_generations = 0;
  int64_t lag_ms = 0;
  uint64_t pending_files = 0;
  uint64_t pending_bytes = 0;
  int64_t last_job_ms = -1;
  uint64_t files = 0;
  uint64_t bytes = 0;
  /// Paths from a peer that were refused as unsafe, since the node started.
  uint64_t unsafe_paths_refused = 0;
  /// "idle", "syncing", "waiting" (for the primary), "error", or "busy"
  /// (set by the admin endpoint when the replication actor did not reply
  /// in time).
  std::string state;
  /// Last error, e.g. a full disk; empty if none.
  std::string error;
  /// False when no report reached the primary yet.
  bool known = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replication_status& x) {
  return f(caf::meta::type_name("replication_status"), x.applied_generation, x.primary_generation,
           x.lag_generations, x.lag_ms, x.pending_files, x.pending_bytes, x.last_job_ms, x.files,
           x.bytes, x.unsafe_paths_refused, x.state, x.error, x.known);
}

/// secondary -> primary replication: progress or completion of a job.
struct replication_report {
  std::string node;
  replication_status status;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, replication_report& x) {
  return f(caf::meta::type_name("replication_report"), x.node, x.status);
}

} // namespace mc
