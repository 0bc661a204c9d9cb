// Every atom mailcluster uses, in one place. Atoms name local timers and
// registry keys; messages that cross a node boundary are structs in
// messages/ instead.
#pragma once

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

/// Actor registry key of the running membership actor.
constexpr caf::atom_value membership_key = caf::atom("mc_member");

} // namespace mc
