// Local membership events. Other actors of the same node join the group
// membership_events() to learn when peers come and go; these messages
// never leave the node.
#pragma once

#include <string>

#include "caf/fwd.hpp"
#include "caf/group.hpp"
#include "caf/meta/type_name.hpp"

namespace mc {

/// A peer changed state, as seen by this node.
struct peer_event_msg {
  std::string node;
  /// "primary" or "secondary".
  std::string role;
  bool online = false;
  /// Reason for the change, e.g. "connection lost" or "no heartbeat for 1003 ms".
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_event_msg& x) {
  return f(caf::meta::type_name("peer_event_msg"), x.node, x.role, x.online, x.reason);
}

/// Returns the node-local group that carries peer_event_msg.
caf::group membership_events(caf::actor_system& system);

} // namespace mc
