// Every atom mailcluster uses, in one place. Atoms name local timers and
// registry keys; messages that cross a node boundary are structs in
// messages/ instead.
#pragma once

#include <string>

#include "caf/atom.hpp"

namespace mc {

/// Periodic timer of the membership actors: send heartbeats, check silence.
using tick_atom = caf::atom_constant<caf::atom("mc_tick")>;

/// Timer of a secondary: try to reach and join the primary now.
using join_atom = caf::atom_constant<caf::atom("mc_join")>;

/// Request to a detached helper actor: probe a TLS handshake with a peer.
using probe_atom = caf::atom_constant<caf::atom("mc_probe")>;

/// Timer of the supervisor: restart the named child now.
using restart_atom = caf::atom_constant<caf::atom("mc_restart")>;

/// Request to a secondary's membership actor: the primary's membership
/// actor and name, if joined.
using primary_atom = caf::atom_constant<caf::atom("mc_prim")>;

/// From a tree watcher to a replication actor: these paths changed.
using dirty_atom = caf::atom_constant<caf::atom("mc_dirty")>;

/// Request to a replication actor: fill in the replication fields of a
/// node_status.
using fill_status_atom = caf::atom_constant<caf::atom("mc_fillst")>;

/// Actor registry keys of the running service actors.
constexpr caf::atom_value replication_key = caf::atom("mc_repl");
constexpr caf::atom_value relay_key = caf::atom("mc_relay");

/// Returns the registry key of a service named in a service_hello
/// ("replication" or "relay"), or caf::atom("") for an unknown name.
inline caf::atom_value service_key(const std::string& service) {
  if (service == "replication")
    return replication_key;
  if (service == "relay")
    return relay_key;
  return caf::atom("");
}

/// Actor registry key of the running membership actor.
constexpr caf::atom_value membership_key = caf::atom("mc_member");

} // namespace mc
