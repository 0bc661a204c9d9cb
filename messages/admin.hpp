// Messages between mailclusterctl and a node's admin endpoint. They cross
// a process boundary (over TLS on loopback), so they live here with the
// cluster messages.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "caf/meta/type_name.hpp"

#include "messages/replication.hpp"

namespace mc {

/// mailclusterctl -> node: a request for a node_status.
struct status_request {
  /// Unused; CAF cannot serialize an empty struct in 0.17.
  uint8_t reserved = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, status_request& x) {
  return f(caf::meta::type_name("status_request"), x.reserved);
}

/// One peer in this node's view of the cluster.
struct peer_status {
  std::string node;
  /// "primary" or "secondary".
  std::string role;
  /// "online" or "offline".
  std::string state;
  /// Wall-clock time of the last state change, milliseconds since the Unix
  /// epoch; 0 if the peer was never seen.
  int64_t since_ms = 0;
  /// Milliseconds since the last heartbeat from the peer; -1 if none was
  /// received by this node (peers that only the primary talks to).
  int64_t last_heartbeat_ms = -1;
  /// Node that reported this state: this node, or the primary for other
  /// secondaries.
  std::string observed_by;
  /// Reason the peer is offline or rejected, empty otherwise.
  std::string detail;
  /// The peer's replication state as last reported to the primary.
  replication_status replication;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_status& x) {
  return f(caf::meta::type_name("peer_status"), x.node, x.role, x.state, x.since_ms,
           x.last_heartbeat_ms, x.observed_by, x.detail, x.replication);
}

/// node -> mailclusterctl: the node's view of the cluster.
struct node_status {
  std::string cluster;
  std::string node;
  std::string role;
  std::string version;
  uint64_t incarnation = 0;
  /// Secondary: "joined", "connecting" or "rejected". Primary: "serving".
  std::string join_state;
  /// Secondary: why the last join attempt failed, empty when joined.
  std::string join_error;
  /// Primary's name and cluster address (as configured on a secondary).
  std::string primary_node;
  std::string primary_address;
  std::vector<peer_status> peers;
  /// Names on the primary's list of registered servers (primary only).
  std::vector<std::string> registered;
  /// Absolute path of the node's managed configuration directory.
  std::string config_dir;
  /// This node's own replication state.
  replication_status replication;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, node_status& x) {
  return f(caf::meta::type_name("node_status"), x.cluster, x.node, x.role, x.version, x.incarnation,
           x.join_state, x.join_error, x.primary_node, x.primary_address, x.peers, x.registered,
           x.config_dir, x.replication);
}

/// mailclusterctl -> node: a command that may change cluster state, such
/// as add-server. The node replies with an admin_result.
struct admin_command {
  std::string verb;
  std::vector<std::string> args;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_command& x) {
  return f(caf::meta::type_name("admin_command"), x.verb, x.args);
}

/// node -> mailclusterctl: the outcome of an admin_command.
struct admin_result {
  /// Process exit code for mailclusterctl: 0 done, 1 rejected or failed.
  int32_t exit_code = 0;
  /// Sentence for the operator.
  std::string message;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, admin_result& x) {
  return f(caf::meta::type_name("admin_result"), x.exit_code, x.message);
}

} // namespace mc
